"""Monte Carlo robustness: accuracy of N programmed chips on the whole test set.

Contract:
  chip_params(key, *chip_args) -> params       one programmed chip (e.g. `perturb` + kernels)
  apply_fn(params, images) -> logits            plain inference
  apply_fn(params, images, b) -> logits         with per_batch=True: b is the index of the
                                                batch, for draws made per read (read noise)
  chip i uses key fold_in(seed_key, i): its accuracy depends on (seed, i) only, not on the
  number of chips, the chunking, the implementation or the device count.

Large arrays (trained params, quantized kernels, masks, a traced sigma) go in `chip_args`, which
become arguments of the compiled program instead of constants baked into it, and a sigma sweep
then compiles once.

Two implementations (`impl`), same numbers:
  'vmap'  one jitted program: chips sharded over a mesh axis 'chips' (`shard_map`), on each
          device `lax.map` over chunks of `chip_chunk` chips, `vmap` over the chips of a chunk,
          `lax.scan` over image batches inside: memory is bounded by chip_chunk x batch_size.
  'loop'  one jitted program per chip (compiled once), called in a Python loop.
'auto' picks 'loop' on CPU (measured 4-5x faster on a 2-core CPU) and 'vmap' elsewhere.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

MC_IMPLS = ("auto", "vmap", "loop")
DEFAULT_CHIPS = 100
AXIS = "chips"


def chip_mesh(num_devices: int | None = None):
    """A 1-D mesh with axis 'chips' over the first `num_devices` devices (default: all)."""
    available = jax.device_count()
    n = available if num_devices is None else num_devices
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"num_devices={num_devices!r}: expected a positive int")
    if n > available:
        raise ValueError(
            f"a chip mesh of {n} devices was requested but only {available} "
            f"{jax.default_backend()} device(s) exist; use num_devices <= {available} (on CPU, "
            f"set XLA_FLAGS=--xla_force_host_platform_device_count={n} before importing jax)")
    return jax.make_mesh((n,), (AXIS,), devices=jax.devices()[:n])


def resolve_mc_impl(impl: str) -> str:
    """'auto' -> 'loop' on CPU, 'vmap' on GPU/TPU; validates the name."""
    if impl not in MC_IMPLS:
        raise ValueError(f"impl={impl!r}: expected one of {MC_IMPLS}")
    if impl == "auto":
        return "loop" if jax.default_backend() == "cpu" else "vmap"
    return impl


def batch_dataset(images, labels, batch_size: int):
    """(N, ...) -> (num_batches, batch_size, ...) images, labels and a validity mask (padding)."""
    n = int(images.shape[0])
    if labels.shape[0] != n:
        raise ValueError(f"{n} images but {labels.shape[0]} labels")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive int")
    batch_size = min(batch_size, n)
    nb = math.ceil(n / batch_size)
    pad = nb * batch_size - n
    valid = jnp.arange(nb * batch_size) < n
    if pad:
        images = jnp.concatenate([images, jnp.zeros((pad,) + images.shape[1:], images.dtype)])
        labels = jnp.concatenate([labels, jnp.zeros((pad,), labels.dtype)])
    shape = (nb, batch_size)
    return (images.reshape(shape + images.shape[1:]), labels.reshape(shape),
            valid.reshape(shape))


def _batches(xb, yb, vb):
    """Scan inputs: the batches with their index b (for per-read draws)."""
    return (xb, yb, vb, jnp.arange(xb.shape[0], dtype=jnp.int32))


def count_correct(apply_fn, params, xb, yb, vb, per_batch: bool = False):
    """Correct predictions of one model over batched data (scan over batches)."""
    def body(total, batch):
        x, y, v, b = batch
        logits = apply_fn(params, x, b) if per_batch else apply_fn(params, x)
        pred = jnp.argmax(logits, axis=-1)
        return total + jnp.sum((pred == y) & v, dtype=jnp.int32), None
    return jax.lax.scan(body, jnp.zeros((), jnp.int32), _batches(xb, yb, vb))[0]


def _count_correct_chunk(apply_fn, params, xb, yb, vb, per_batch: bool = False):
    """Like `count_correct` for params with a leading chip axis: vmap inside every batch."""
    def body(total, batch):
        x, y, v, b = batch
        if per_batch:
            logits = jax.vmap(apply_fn, in_axes=(0, None, None))(params, x, b)
        else:
            logits = jax.vmap(apply_fn, in_axes=(0, None))(params, x)  # (chip, batch, class)
        hit = (jnp.argmax(logits, axis=-1) == y[None]) & v[None]
        return total + jnp.sum(hit, axis=-1, dtype=jnp.int32), None
    chips = jax.tree_util.tree_leaves(params)[0].shape[0]
    return jax.lax.scan(body, jnp.zeros((chips,), jnp.int32), _batches(xb, yb, vb))[0]


@functools.lru_cache(maxsize=32)
def _vmap_program(apply_fn, chip_params, chip_chunk: int, mesh, per_batch: bool = False):
    def per_device(indices, seed_key, xb, yb, vb, chip_args):
        def chunk(idx):
            keys = jax.vmap(lambda i: jax.random.fold_in(seed_key, i))(idx)
            params = jax.vmap(lambda k: chip_params(k, *chip_args))(keys)
            return _count_correct_chunk(apply_fn, params, xb, yb, vb, per_batch)
        return jax.lax.map(chunk, indices.reshape(-1, chip_chunk)).reshape(-1)

    sharded = jax.shard_map(per_device, mesh=mesh, in_specs=(P(AXIS), P(), P(), P(), P(), P()),
                            out_specs=P(AXIS), check_vma=False)
    return jax.jit(sharded)


@functools.lru_cache(maxsize=32)
def _loop_program(apply_fn, chip_params, per_batch: bool = False):
    def one_chip(index, seed_key, xb, yb, vb, chip_args):
        params = chip_params(jax.random.fold_in(seed_key, index), *chip_args)
        return count_correct(apply_fn, params, xb, yb, vb, per_batch)
    return jax.jit(one_chip)


def _seed_key(seed):
    if isinstance(seed, int):
        return jax.random.PRNGKey(seed)
    return seed


def evaluate_chips(apply_fn, chip_params, images, labels, *, seed=0,
                   n_chips: int = DEFAULT_CHIPS,
                   chip_args: tuple = (), chip_chunk: int = 4, batch_size: int = 1000,
                   impl: str = "auto", num_devices: int | None = None,
                   per_batch: bool = False) -> np.ndarray:
    """Accuracy (float64 numpy, (n_chips,)) of chips 0..n_chips-1 on the whole test set.

    Args:
      apply_fn: apply_fn(params, images) -> logits; hashable (the same object reuses the
        compiled program).
      chip_params: chip_params(key, *chip_args) -> params of one programmed chip.
      images, labels: the whole test set (device arrays).
      seed: int or PRNG key; chip i uses fold_in(key, i).
      chip_args: pytrees passed to chip_params as traced arguments (replicated on every device).
      chip_chunk: chips per vmap chunk ('vmap'); n_chips is padded to a multiple of
        chip_chunk x devices (the extra chips are computed and dropped).
      batch_size: images per batch (the last batch is zero-padded and masked).
      impl: 'auto' | 'vmap' | 'loop' (see module docstring).
      num_devices: devices of the 'chips' mesh ('vmap'; default all). 'loop' uses one device.
      per_batch: call apply_fn(params, images, b) with the batch index b, so draws made per
        read (read noise) differ between batches; they then depend on batch_size, the chips'
        write draws do not.
    """
    if not isinstance(n_chips, int) or n_chips < 1:
        raise ValueError(f"n_chips={n_chips!r}: expected a positive int")
    if not isinstance(chip_chunk, int) or chip_chunk < 1:
        raise ValueError(f"chip_chunk={chip_chunk!r}: expected a positive int")
    impl = resolve_mc_impl(impl)
    seed_key = _seed_key(seed)
    xb, yb, vb = batch_dataset(images, labels, batch_size)
    n_images = int(images.shape[0])
    chip_args = tuple(chip_args)
    if impl == "loop":
        program = _loop_program(apply_fn, chip_params, bool(per_batch))
        counts = [program(jnp.int32(i), seed_key, xb, yb, vb, chip_args) for i in range(n_chips)]
        counts = np.asarray(jax.device_get(jnp.stack(counts)))
    else:
        mesh = chip_mesh(num_devices)
        per_round = chip_chunk * mesh.size
        total = math.ceil(n_chips / per_round) * per_round
        indices = jax.device_put(jnp.arange(total, dtype=jnp.int32),
                                 NamedSharding(mesh, P(AXIS)))
        program = _vmap_program(apply_fn, chip_params, chip_chunk, mesh, bool(per_batch))
        counts = np.asarray(jax.device_get(program(indices, seed_key, xb, yb, vb, chip_args)))
        counts = counts[:n_chips]
    return counts.astype(np.float64) / n_images


def plain_accuracy(apply_fn, params, images, labels, *, batch_size: int = 1000) -> float:
    """Accuracy of one (unperturbed) model with the same batching as the evaluator."""
    xb, yb, vb = batch_dataset(images, labels, batch_size)
    count = _plain_program(apply_fn)(params, xb, yb, vb)
    return float(count) / int(images.shape[0])


@functools.lru_cache(maxsize=32)
def _plain_program(apply_fn):
    return jax.jit(lambda params, xb, yb, vb: count_correct(apply_fn, params, xb, yb, vb))
