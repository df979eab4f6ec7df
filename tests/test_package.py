"""crimp_jax is a package (pyproject.toml): its wheel holds the library and its data files and
nothing of the clone, and imports outside the repository. The wheel is built once, offline,
with the setuptools the dev extra installs (`pip wheel --no-build-isolation`: no download),
unpacked as `pip install` would place it, and imported from another folder."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_the_library_and_imports_outside_the_repository(tmp_path):
    # Built from a copy of what the sdist holds, so setuptools writes nothing into the clone.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "crimp_jax", src / "crimp_jax",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("crimp_jax-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        z.extractall(tmp_path / "site")
    assert "crimp_jax/__init__.py" in names and "crimp_jax/api.py" in names
    assert "crimp_jax/train/pipeline.py" in names  # every subpackage, data files too
    assert "crimp_jax/cost/components.json" in names
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"tests", "experiments", "examples", "launch", "results", "docs"}, tops
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [ln for ln in (tmp_path / "site" / meta).read_text().splitlines()
                if ln.startswith("Requires-Dist:")]
    assert any(r.startswith("Requires-Dist: jax>=") for r in requires)
    # Imported from an empty folder with only the unpacked wheel on the path: the library,
    # its config and its data file (the cost model's component table).
    code = ("import crimp_jax, crimp_jax.api as cj; from crimp_jax.cost.components import "
            "load_table; load_table(); cj.base_config(); print(crimp_jax.__file__)")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={"PYTHONPATH": str(tmp_path / "site"),
                                                      "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str(tmp_path / "site" / "crimp_jax" / "__init__.py")
