"""Accuracy statistics over chips, and a sweep over sigma, as JSON-able dicts."""

from __future__ import annotations

import logging
import time

import jax.numpy as jnp
import numpy as np

from crimp_jax.evaluate.montecarlo import DEFAULT_CHIPS, evaluate_chips
from crimp_jax.summary import sigma_key

log = logging.getLogger(__name__)


def accuracy_summary(accuracies) -> dict:
    """{n_chips, mean, std, min, p5, median, max, accuracies}: plain floats (JSON-able)."""
    acc = np.asarray(accuracies, np.float64)
    if acc.ndim != 1 or acc.size == 0:
        raise ValueError(f"accuracies of shape {acc.shape}: expected a non-empty 1-D array")
    return {
        "n_chips": int(acc.size),
        "mean": float(acc.mean()),
        "std": float(acc.std()),
        "min": float(acc.min()),
        "p5": float(np.percentile(acc, 5)),
        "median": float(np.median(acc)),
        "max": float(acc.max()),
        "accuracies": [float(a) for a in acc],
    }


def sweep_points(apply_fn, chip_params, images, labels, points: dict, *, chip_args: tuple = (),
                 identical=lambda knobs: False, **kwargs) -> dict:
    """{name: accuracy_summary} for each point {name: knobs}; chip_params(key, *chip_args, knobs).

    A point's knobs ({'sigma': 0.3, 'read_time': 3600.0, 'adc_bits': 6}, ...) are passed as a
    dict of traced float32 scalars, so every point of one knob set compiles once (sigma, read
    time and ADC bits sweeps alike). `identical(knobs)`: the caller states that every chip of
    this point is the same (no random draw acts: an ideal chip, or only deterministic
    non-idealities such as IR drop): one chip is evaluated and stands for all n_chips. Keyword
    arguments go to `evaluate_chips`; the same seed gives the same chips at every point.
    """
    out = {}
    for name, knobs in points.items():
        t0 = time.perf_counter()
        args = tuple(chip_args) + ({k: jnp.float32(v) for k, v in knobs.items()},)
        if identical(knobs):
            n_chips = kwargs.get("n_chips", DEFAULT_CHIPS)
            one = evaluate_chips(apply_fn, chip_params, images, labels, chip_args=args,
                                 **(kwargs | {"n_chips": 1}))
            acc = np.full((n_chips,), one[0])
        else:
            acc = evaluate_chips(apply_fn, chip_params, images, labels, chip_args=args, **kwargs)
        out[name] = accuracy_summary(acc)
        log.info("%s: %.2f%% +/- %.2f over %d chips (%.0f s)", knobs, 100 * acc.mean(),
                 100 * acc.std(), acc.size, time.perf_counter() - t0)
    return out


def sweep_sigmas(apply_fn, chip_params, images, labels, sigmas, *, chip_args: tuple = (),
                 ideal_at_zero: bool = False, **kwargs) -> dict:
    """{sigma_key: accuracy_summary} for each sigma; chip_params(key, *chip_args, sigma).

    sigma is passed as a traced float32 scalar, so the whole sweep compiles once. Keyword
    arguments go to `evaluate_chips` (seed, n_chips, chip_chunk, batch_size, impl, ...); the
    same seed gives the same chips (same write draws z) at every sigma.

    ideal_at_zero: the caller states that at sigma 0 every chip is the intended model (no
    faults, read noise or finite on/off ratio): sigma 0 then evaluates chip 0 only and reports
    its accuracy for all n_chips chips (they are identical), instead of n_chips equal runs.
    """
    out = {}
    for sigma in sigmas:
        if not float(sigma) >= 0:
            raise ValueError(f"sigma={sigma!r}: expected >= 0")
        t0 = time.perf_counter()
        args = tuple(chip_args) + (jnp.float32(sigma),)
        if ideal_at_zero and float(sigma) == 0:
            n_chips = kwargs.get("n_chips", DEFAULT_CHIPS)
            one = evaluate_chips(apply_fn, chip_params, images, labels, chip_args=args,
                                 **(kwargs | {"n_chips": 1}))
            acc = np.full((n_chips,), one[0])
        else:
            acc = evaluate_chips(apply_fn, chip_params, images, labels, chip_args=args, **kwargs)
        out[sigma_key(sigma)] = accuracy_summary(acc)
        log.info("sigma %g: %.2f%% +/- %.2f over %d chips (%.0f s)", float(sigma),
                 100 * acc.mean(), 100 * acc.std(), acc.size, time.perf_counter() - t0)
    return out
