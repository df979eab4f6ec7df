"""Throughput of Monte Carlo evaluation ('vmap' and 'loop') against plain inference."""

from __future__ import annotations

import time

import jax

from crimp_jax.evaluate.montecarlo import evaluate_chips, plain_accuracy


def _timed(fn, repeats: int):
    fn()  # compile and warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def benchmark_mc_impls(apply_fn, params, chip_params, images, labels, *, chip_args: tuple = (),
                      n_chips: int = 8, chip_chunk: int = 4, batch_size: int = 1000,
                      impls=("vmap", "loop"), repeats: int = 1, num_devices=None,
                      per_batch: bool = False) -> dict:
    """JSON-able timings: images/s of plain inference, images x chips/s per implementation, ratios.

    Each implementation is timed after one warm-up call (compile excluded), best of `repeats`. The
    Monte Carlo time includes programming the chips (chip_params). 'ratio_to_plain' is
    (images x chips / s) / (images / s of plain inference of `params` on the same device).
    """
    n = int(images.shape[0])
    t_plain = _timed(lambda: plain_accuracy(apply_fn, params, images, labels,
                                            batch_size=batch_size), repeats)
    dev = jax.devices()[0]
    out = {"backend": jax.default_backend(), "device_kind": dev.device_kind,
           "device_count": jax.device_count(), "n_images": n, "n_chips": n_chips,
           "chip_chunk": chip_chunk, "batch_size": batch_size, "per_batch": per_batch,
           "plain_s": t_plain, "plain_images_per_s": n / t_plain}
    for impl in impls:
        t = _timed(lambda: evaluate_chips(
            apply_fn, chip_params, images, labels, chip_args=chip_args, n_chips=n_chips,
            chip_chunk=chip_chunk, batch_size=batch_size, impl=impl,
            num_devices=num_devices, per_batch=per_batch), repeats)
        out[f"{impl}_s"] = t
        out[f"{impl}_images_chips_per_s"] = n * n_chips / t
        out[f"{impl}_ratio_to_plain"] = (n * n_chips / t) / (n / t_plain)
    if "vmap" in impls and "loop" in impls:
        out["vmap_speedup_over_loop"] = out["loop_s"] / out["vmap_s"]
    return out
