"""Monte Carlo evaluator: implementations agree, chips are independent of chunking and device count."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from crimp_jax.evaluate import (
    accuracy_summary,
    benchmark_mc_impls,
    chip_mesh,
    evaluate_chips,
    plain_accuracy,
    plot_accuracy_vs_sigma,
    sweep_sigmas,
)

REPO = Path(__file__).resolve().parents[1]

# A linear classifier stored as an 8-bit crossbar layer: 600 random points, 4 classes.
SETUP = """
import jax, jax.numpy as jnp, numpy as np
from crimp_jax.variation import VariationSpec, perturb, replace_kernels
from crimp_jax.xbar import XbarSpec
rng = np.random.default_rng(0)
q = jnp.asarray(rng.integers(-127, 128, size=(20, 4)), jnp.float32)
params = {"fc": {"kernel": q * 2.0 ** -6, "bias": jnp.zeros(4)}}
qe = {"fc/kernel": (q, jnp.float32(-6))}
images = jnp.asarray(rng.normal(size=(600, 20)), jnp.float32)
labels = jnp.argmax(images @ params["fc"]["kernel"], -1)
def apply_fn(p, x):
    return x @ p["fc"]["kernel"] + p["fc"]["bias"]
VSPEC, XSPEC = VariationSpec(sigma=0.5), XbarSpec(rows=8, cols=4)
def chip_params(key, p, qe, masks, sigma=None):
    return replace_kernels(p, perturb(qe, key, VSPEC, XSPEC, 8, masks,
                                          knobs=None if sigma is None else {"sigma": sigma}))
args = (params, qe, None)
"""
exec(SETUP)  # noqa: S102  (defines the names above for the in-process tests)


def _eval(**kw):
    kw = {"n_chips": 6, "batch_size": 128, "seed": 3, **kw}
    return evaluate_chips(apply_fn, chip_params, images, labels, chip_args=args, **kw)  # noqa: F821


def test_vmap_and_loop_agree_and_chips_do_not_depend_on_chunking():
    loop = _eval(impl="loop")
    assert loop.shape == (6,) and 0.4 < loop.mean() < 1.0 and loop.std() > 0
    np.testing.assert_array_equal(_eval(impl="vmap", chip_chunk=4), loop)
    np.testing.assert_array_equal(_eval(impl="vmap", chip_chunk=1, batch_size=600), loop)
    np.testing.assert_array_equal(_eval(impl="loop", n_chips=3), loop[:3])
    other_seed = _eval(impl="loop", seed=4)
    assert not np.array_equal(other_seed, loop)


def test_sigma_zero_sweep_equals_plain_inference():
    plain = plain_accuracy(apply_fn, params, images, labels)  # noqa: F821
    assert plain == 1.0
    out = sweep_sigmas(apply_fn, chip_params, images, labels, [0.0, 0.5], chip_args=args,  # noqa
                       n_chips=4, impl="loop")
    assert list(out) == ["0", "0.5"]
    assert out["0"]["mean"] == 1.0 and out["0"]["min"] == 1.0
    assert out["0.5"]["mean"] < 1.0
    json.dumps(out)


def test_ideal_at_zero_evaluates_one_chip_and_matches_the_full_sweep(monkeypatch):
    from crimp_jax.evaluate import sweep as sweep_mod
    full = sweep_sigmas(apply_fn, chip_params, images, labels, [0.0, 0.5], chip_args=args,  # noqa
                        n_chips=5, impl="loop", seed=3)
    calls = []
    real = sweep_mod.evaluate_chips
    monkeypatch.setattr(sweep_mod, "evaluate_chips",
                        lambda *a, **kw: calls.append(kw["n_chips"]) or real(*a, **kw))
    fast = sweep_sigmas(apply_fn, chip_params, images, labels, [0.0, 0.5], chip_args=args,  # noqa
                        n_chips=5, impl="loop", seed=3, ideal_at_zero=True)
    assert calls == [1, 5]  # sigma 0: one chip; sigma 0.5: all five
    assert fast == full and fast["0"]["n_chips"] == 5


def test_summary_golden_values():
    s = accuracy_summary([0.5, 0.7, 0.9, 0.8])
    assert s["mean"] == pytest.approx(0.725) and s["min"] == 0.5 and s["max"] == 0.9
    assert s["std"] == pytest.approx(np.std([0.5, 0.7, 0.9, 0.8]))
    assert s["p5"] == pytest.approx(0.5 + 0.15 * 0.2)  # linear interpolation, 5% of 3 gaps
    with pytest.raises(ValueError, match="expected a non-empty 1-D array"):
        accuracy_summary([])


def test_bad_inputs_give_clear_errors():
    n = jax.device_count()
    with pytest.raises(ValueError, match=rf"chip mesh of {n + 3} devices was requested but only "
                                         rf"{n} .* device\(s\) exist"):
        chip_mesh(n + 3)
    with pytest.raises(ValueError, match=rf"{n + 1} devices was requested"):
        _eval(impl="vmap", num_devices=n + 1)
    with pytest.raises(ValueError, match=r"impl='pmap': expected one of \('auto', 'vmap'"):
        _eval(impl="pmap")
    with pytest.raises(ValueError, match="n_chips=0: expected a positive int"):
        _eval(n_chips=0)


def test_plot_and_benchmark_smoke(tmp_path):
    per_sigma = {0.0: accuracy_summary([0.9, 0.92]), 0.3: accuracy_summary([0.7, 0.8])}
    results = {name: per_sigma for name in ("neither", "adaptation", "compensation", "both")}
    path = plot_accuracy_vs_sigma([(None, results, 0.93, 2)], tmp_path / "acc.png",
                                  headline_sigma=0.3)
    assert Path(path).stat().st_size > 10_000
    with pytest.raises(ValueError, match="no Monte Carlo curves"):
        plot_accuracy_vs_sigma([("a", {}, 0.9, 2)], tmp_path / "none.png")
    bench = benchmark_mc_impls(apply_fn, params, chip_params, images, labels,  # noqa: F821
                              chip_args=args, n_chips=4, batch_size=300)  # noqa: F821
    json.dumps(bench)
    assert bench["plain_images_per_s"] > 0 and bench["vmap_speedup_over_loop"] > 0


def test_one_and_four_devices_give_identical_chips():
    script = SETUP + textwrap.dedent("""
        from crimp_jax.evaluate import evaluate_chips
        assert jax.device_count() == 4, jax.devices()
        run = lambda **kw: evaluate_chips(apply_fn, chip_params, images, labels, chip_args=args,
                                          n_chips=10, batch_size=128, seed=3, chip_chunk=2, **kw)
        one, four = run(impl="vmap", num_devices=1), run(impl="vmap", num_devices=4)
        loop = run(impl="loop")
        print(one.tolist(), four.tolist())
        assert np.array_equal(one, four) and np.array_equal(one, loop)
        print("OK")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
