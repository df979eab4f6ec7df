"""CIFAR-10 as uint8 arrays: an offline JPEG npz (decoded once, cached) or tensorflow-datasets;
and any other tensorflow-datasets image classification dataset by name (`load_tfds`).

CIFAR-10's sources, in order:
1. `cifar10_jpeg_q75.npz` in `data_dir` (config field `data.data_dir`) or in the directory named
   by the environment variable `CRIMP_DATA_DIR`. Format and caveats: `docs/data.md`.
   The JPEGs are decoded with Pillow once and cached as plain uint8 arrays in
   `$CRIMP_CACHE_DIR` (default `~/.cache/crimp_jax`), keyed by the archive's size and mtime.
2. tensorflow-datasets `cifar10` (downloads on first use where the internet is reachable).
With neither available, one error names both ways.

Everything returned is a plain NumPy array (no pickle anywhere).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from pathlib import Path

import numpy as np

NPZ_NAME = "cifar10_jpeg_q75.npz"
NUM_CLASSES = 10
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")


class DataError(RuntimeError):
    """Dataset missing or malformed."""


@dataclasses.dataclass
class Split:
    images: np.ndarray  # (n, H, W, C) uint8; CIFAR-10: (n, 32, 32, 3)
    labels: np.ndarray  # (n,) int32


def _cache_dir() -> Path:
    return Path(os.environ.get("CRIMP_CACHE_DIR", Path.home() / ".cache" / "crimp_jax"))


def find_npz(data_dir: str | None) -> Path | None:
    """The offline archive from the config field, else from $CRIMP_DATA_DIR, else None."""
    for d in (data_dir, os.environ.get("CRIMP_DATA_DIR")):
        if d:
            path = Path(d).expanduser()
            path = path if path.suffix == ".npz" else path / NPZ_NAME
            if path.is_file():
                return path
            if d == data_dir:
                raise DataError(f"data.data_dir={data_dir!r}: no {NPZ_NAME} there")
    return None


def _decode_split(archive, split: str) -> Split:
    from PIL import Image

    blob = archive[f"{split}_jpeg"]
    offsets = archive[f"{split}_offsets"]
    labels = archive[f"{split}_labels"].astype(np.int32)
    n = len(labels)
    if len(offsets) != n + 1:
        raise DataError(f"{split}_offsets has {len(offsets)} entries, expected {n + 1}")
    images = np.empty((n, 32, 32, 3), np.uint8)
    for i in range(n):
        with Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())) as im:
            images[i] = np.asarray(im.convert("RGB"))
    return Split(images, labels)


def load_npz(path: Path) -> dict:
    """Decodes the JPEG archive once; later calls read the uint8 cache."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    cache = _cache_dir() / f"cifar10_decoded_{key[:16]}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as c:
                return {s: Split(c[f"{s}_images"], c[f"{s}_labels"]) for s in ("train", "test")}
        except (OSError, ValueError, KeyError):
            cache.unlink(missing_ok=True)  # corrupt cache: decode again
    try:
        with np.load(path, allow_pickle=False) as archive:
            splits = {s: _decode_split(archive, s) for s in ("train", "test")}
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path}: not a readable CIFAR-10 JPEG archive ({e})") from e
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"{s}_{f}": getattr(sp, f) for s, sp in splits.items()
                     for f in ("images", "labels")})
    os.replace(tmp, cache)
    return splits


def load_tfds(name: str = "cifar10") -> dict:
    """{'train': Split, 'test': Split, 'class_names': tuple} of the tensorflow-datasets dataset
    `name` (downloads on first use): its 'image' (uint8, HxWxC; an image without a channel
    axis gets one) and 'label' features. class_names: the label feature's names, or ()."""
    import tensorflow_datasets as tfds

    out = {}
    for split in ("train", "test"):
        ds, info = tfds.load(name, split=split, batch_size=-1, with_info=True)
        out[split] = tfds_split(name, split, tfds.as_numpy(ds))
    out["class_names"] = _class_names(info)
    return out


def _class_names(info) -> tuple:
    """The names of a tfds DatasetInfo's 'label' feature; () where it has none."""
    try:
        return tuple(str(n) for n in info.features["label"].names)
    except (AttributeError, KeyError, TypeError):
        return ()


def tfds_split(name: str, split: str, batch: dict) -> Split:
    """One split from a tensorflow-datasets batch {'image': (n, H, W[, C]) uint8, 'label': (n,)}
    with checked dtypes and shapes."""
    missing = [k for k in ("image", "label") if k not in batch]
    if missing:
        raise DataError(f"data.dataset={name!r}: the {split} split has no {missing} feature(s) "
                        f"(features: {sorted(batch)}); expected 'image' and 'label'")
    images, labels = np.asarray(batch["image"]), np.asarray(batch["label"])
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(f"data.dataset={name!r}: {split} images are {images.dtype} of shape "
                        f"{images.shape}; expected uint8 (n, H, W, C)")
    if labels.shape != images.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"data.dataset={name!r}: {split} labels are {labels.dtype} of shape "
                        f"{labels.shape}; expected integers of shape {images.shape[:1]}")
    return Split(images, labels.astype(np.int32))


def load_cifar10(data_dir: str | None = None, source: str = "auto") -> dict:
    """{'train': Split, 'test': Split} (from tensorflow-datasets also 'class_names').
    source: 'auto' | 'npz' | 'tfds' (the synthetic source is `crimp_jax.data.synthetic`)."""
    if source not in ("auto", "npz", "tfds"):
        raise ValueError(f"data.source={source!r}: expected 'auto', 'npz' or 'tfds'")
    path = find_npz(data_dir) if source in ("auto", "npz") else None
    if path is not None:
        return load_npz(path)
    if source == "npz":
        raise DataError(f"no {NPZ_NAME}: set data.data_dir or CRIMP_DATA_DIR to its folder")
    try:
        return load_tfds()
    except Exception as e:  # noqa: BLE001 - any tfds failure means 'not available here'
        raise DataError(
            f"CIFAR-10 not found: put {NPZ_NAME} in a folder named by --config.data.data_dir or "
            f"$CRIMP_DATA_DIR, or use tensorflow-datasets with internet access "
            f"(tfds failed: {type(e).__name__}: {str(e)[:200]})") from e


def balanced_subset(split: Split, per_class: int, seed: int = 0,
                    num_classes: int | None = None) -> Split:
    """The first `per_class` images of each class after a seeded shuffle (class-balanced).
    num_classes: classes 0..num_classes-1 (None: max label + 1)."""
    if per_class <= 0:
        return split
    idx = balanced_subset_indices(split.labels, per_class, seed, num_classes)
    return Split(split.images[idx], split.labels[idx])


def calibration_sample(images, n: int, seed: int = 0):
    """`n` of `images` for a calibration pass (activation thresholds, ADC full scales): a
    seeded random sample in index order, not the first n. Archives are ordered by class (the
    offline CIFAR-10: the first 500 training images are all airplanes; in the quickstart's
    2,000 the first 128 are too), so the first n would calibrate on one or a few classes. All
    of `images` when n >= their count."""
    total = len(images)
    if n >= total:
        return images
    idx = np.sort(np.random.default_rng(seed).permutation(total)[:n])
    return images[idx]


def balanced_subset_indices(labels, per_class: int, seed: int = 0,
                            num_classes: int | None = None) -> np.ndarray:
    """Sorted indices of `balanced_subset`."""
    labels = np.asarray(labels)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 1
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    picks = []
    for c in range(num_classes):
        idx = order[labels[order] == c][:per_class]
        if len(idx) < per_class:
            raise ValueError(f"per_class={per_class}: class {c} has only {len(idx)} images")
        picks.append(idx)
    return np.sort(np.concatenate(picks))
