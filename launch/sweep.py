"""Sweep runner: many configs of one experiment, sequentially or several at once, one table.

  python -m launch.sweep --config=experiments/configs/quickstart.py \
      --grid="variation.sigma=0.1,0.3 prune.target_sparsity=0.5,0.8" --root=runs/sweep \
      [--reuse_fp=runs/quickstart] [--parallel=4 --gpus_per_run=1] [--shard=0/2] [--dry_run]

Each point of the grid (the cartesian product of the `key=v1,v2` items) runs as its own
`python -m experiments.run` process in `ROOT/<key=value,...>`; rerunning the sweep resumes
unfinished points and skips finished ones. `--parallel=N` runs N points at once on one host;
with `--gpus_per_run`, each process sees its own GPUs (CUDA_VISIBLE_DEVICES). `--shard=i/n`
runs every n-th point starting at i, so n hosts (e.g. SLURM tasks) split one sweep; see
launch/README.md. `--reuse_fp=DIR` copies DIR's finished float-stage checkpoints into every
point, so ablations of the quantized stage share one float model. At the end (or with
`--aggregate_only`) every `summary.json` under ROOT is collected into ROOT/sweep.json and a
markdown table ROOT/sweep.md. No training logic lives here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from crimp_jax.summary import Summary, SummaryError, read_summary


def parse_grid(text: str) -> list:
    """'a.b=1,2 c=x' -> [{'a.b': '1', 'c': 'x'}, {'a.b': '2', 'c': 'x'}]."""
    axes = []
    for item in text.split():
        if "=" not in item:
            raise ValueError(f"--grid item {item!r}: expected key=v1,v2,...")
        key, values = item.split("=", 1)
        vals = [v for v in values.split(",") if v != ""]
        if not vals:
            raise ValueError(f"--grid item {item!r}: no values")
        axes.append([(key, v) for v in vals])
    return [dict(point) for point in itertools.product(*axes)] if axes else [{}]


def point_name(point: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items()) or "base"


def command(config: str, workdir: Path, point: dict, extra: list) -> list:
    return ([sys.executable, "-m", "experiments.run", f"--config={config}",
             f"--workdir={workdir}"] + [f"--config.{k}={v}" for k, v in point.items()] + extra)


def finished(workdir: Path) -> bool:
    try:
        return not read_summary(workdir).partial
    except SummaryError:
        return False


def seed_float_stage(src: Path, workdir: Path) -> None:
    """Copies the float stage's checkpoints of a finished run into a new point's workdir."""
    ckpt = src / "checkpoints" / "fp"
    if not ckpt.is_dir():
        raise FileNotFoundError(f"--reuse_fp={src}: no checkpoints/fp in it")
    dst = workdir / "checkpoints" / "fp"
    if not dst.exists():
        shutil.copytree(ckpt, dst)


def row(name: str, s: Summary) -> dict:
    h = s.headline_sigma
    mc_head = {c: (s.mc(c, h) or {}).get("mean") for c in s.curves()} if h is not None else {}
    xbars = s.crossbars()
    return {"point": name, "model": s.model, "method": s.method,
            "fp": s.fp_accuracy, "deployed": s.deployed_accuracy,
            "engine": s.engine_accuracy, "sparsity": s.sparsity,
            "crossbars": xbars[1] if xbars else None,
            "mc_headline": mc_head, "power_x": s.reduction("power"),
            "area_x": s.reduction("area"), "device": s.get("device.kind"),
            "date": s.get("date")}


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items()) or "-"
    return str(v)


def aggregate(root: Path) -> list:
    rows = []
    for path in sorted(root.glob("*/summary.json")):
        rows.append(row(path.parent.name, read_summary(path)))
    (root / "sweep.json").write_text(json.dumps(rows, indent=1))
    if rows:
        cols = list(rows[0])
        lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
        (root / "sweep.md").write_text("\n".join(lines) + "\n")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--grid", default="")
    ap.add_argument("--root", required=True)
    ap.add_argument("--reuse_fp", default="")
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--gpus_per_run", type=int, default=0)
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--dry_run", action="store_true")
    ap.add_argument("--aggregate_only", action="store_true")
    ap.add_argument("extra", nargs="*", help="more flags for experiments.run (after --)")
    a = ap.parse_args(argv)
    root = Path(a.root)
    root.mkdir(parents=True, exist_ok=True)
    if not a.aggregate_only:
        try:
            index, count = (int(x) for x in a.shard.split("/"))
            assert 0 <= index < count
        except (ValueError, AssertionError):
            print(f"error: --shard={a.shard!r}: expected i/n with 0 <= i < n", file=sys.stderr)
            return 2
        try:
            points = parse_grid(a.grid)[index::count]
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        pending = []
        for point in points:
            workdir = root / point_name(point)
            if finished(workdir):
                print(f"done     {workdir}")
                continue
            if a.reuse_fp and not a.dry_run:
                seed_float_stage(Path(a.reuse_fp), workdir)
            pending.append((workdir, command(a.config, workdir, point, a.extra)))
        running = []
        slots = list(range(max(1, a.parallel)))
        failures = 0
        while pending or running:
            while pending and slots:
                workdir, cmd = pending.pop(0)
                slot = slots.pop(0)
                print("run      " + " ".join(cmd), flush=True)
                if a.dry_run:
                    slots.append(slot)
                    continue
                env = dict(os.environ)
                if a.gpus_per_run:
                    first = slot * a.gpus_per_run
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(
                        str(first + g) for g in range(a.gpus_per_run))
                workdir.mkdir(parents=True, exist_ok=True)
                log = open(workdir / "run.log", "a")
                running.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=log), slot,
                                workdir, log))
            for proc, slot, workdir, log in list(running):
                if proc.poll() is not None:
                    running.remove((proc, slot, workdir, log))
                    log.close()
                    slots.append(slot)
                    print(f"rc={proc.returncode:<4} {workdir}", flush=True)
                    failures += proc.returncode != 0
            if running:
                time.sleep(1.0)
        if failures:
            print(f"{failures} point(s) failed: see their run.log", file=sys.stderr)
    rows = aggregate(root)
    print(f"aggregated {len(rows)} run(s) into {root / 'sweep.md'}")
    return 1 if not a.aggregate_only and failures else 0


if __name__ == "__main__":
    sys.exit(main())
