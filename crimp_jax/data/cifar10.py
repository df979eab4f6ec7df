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
import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

NPZ_NAME = "cifar10_jpeg_q75.npz"
ARCHIVE_SHA256 = "816040ca4dcf577df78fb3d83e918c2c1cbb347e5dccf966fe9507b91daaf554"
SPLITS = ("train", "test")
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


def _decode_split(archive, split: str, path: Path) -> Split:
    """One split of the JPEG archive, every array read whole and checked (dtype, shape,
    offsets inside the blob, labels 0-9, each JPEG a 32x32 image); a `DataError` names what is
    wrong."""
    from PIL import Image

    blob = archive[f"{split}_jpeg"]
    offsets = archive[f"{split}_offsets"]
    labels = archive[f"{split}_labels"]
    n = len(labels)
    if blob.dtype != np.uint8 or blob.ndim != 1 or labels.ndim != 1:
        raise _bad_archive(path, f"{split}_jpeg is {blob.dtype} {blob.shape} and {split}_labels "
                                 f"{labels.shape}; expected a uint8 byte string and (n,) labels")
    if (len(offsets) != n + 1 or not np.issubdtype(offsets.dtype, np.integer)
            or (n and (offsets[0] != 0 or offsets[-1] != len(blob)
                       or np.any(np.diff(offsets) <= 0)))):
        raise _bad_archive(path, f"{split}_offsets ({offsets.dtype}, {len(offsets)} entries) do "
                                 f"not cut {split}_jpeg ({len(blob)} bytes) into {n} images")
    if n and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise _bad_archive(path, f"{split}_labels in [{labels.min()}, {labels.max()}]; expected "
                                 f"0..{NUM_CLASSES - 1}")
    images = np.empty((n, 32, 32, 3), np.uint8)
    for i in range(n):
        try:
            with Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())) as im:
                images[i] = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as e:  # PIL: not a JPEG, truncated, or not 32x32
            raise _bad_archive(path, f"{split} image {i} does not decode to 32x32 RGB "
                                     f"({type(e).__name__}: {e})") from None
    return Split(images, labels.astype(np.int32))


def _bad_archive(path: Path, what: str) -> DataError:
    return DataError(f"{path}: {what}; replace it with an intact copy of {NPZ_NAME} "
                     f"(sha256 {ARCHIVE_SHA256[:16]}..., docs/data.md) or point data.data_dir / "
                     f"CRIMP_DATA_DIR at one")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_archive(path: Path) -> dict:
    """{'train': Split, 'test': Split} decoded from the archive at `path`, verified whole (the
    zip's CRC of every array, which `np.load` checks as it reads one, and `_decode_split`'s
    checks); any damage is one `DataError` naming the file and what to do. An archive that
    decodes but is not the reference copy (sha256) is used, with a warning: its numbers are
    not comparable with results on the reference copy."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = sorted({f"{s}_{f}" for s in SPLITS for f in ("jpeg", "offsets", "labels")}
                             - set(archive.files))
            if missing:
                raise _bad_archive(path, f"not a CIFAR-10 JPEG archive: no {missing} array(s)")
            splits = {s: _decode_split(archive, s, path) for s in SPLITS}
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - zipfile, numpy and the OS raise many types here
        raise _bad_archive(path, f"damaged or not an npz archive ({type(e).__name__}: "
                                 f"{' '.join(str(e).split())[:200]})") from None
    digest = _sha256(path)
    if digest != ARCHIVE_SHA256:
        log.warning("%s: sha256 %s... is not the reference copy's (%s...); its numbers are not "
                    "comparable with results on the reference copy", path, digest[:16],
                    ARCHIVE_SHA256[:16])
    return splits


def _read_cache(cache: Path) -> dict | None:
    """The decoded splits from the cache file, every array read whole (the zip's CRC is
    checked as each is read) and its dtype and shape checked; None, logged, if it is damaged."""
    try:
        with np.load(cache, allow_pickle=False) as c:
            splits = {s: Split(c[f"{s}_images"], c[f"{s}_labels"]) for s in SPLITS}
        for s, sp in splits.items():
            if (sp.images.dtype != np.uint8 or sp.images.shape[1:] != (32, 32, 3)
                    or sp.labels.shape != sp.images.shape[:1]):
                raise ValueError(f"{s} arrays are {sp.images.dtype} {sp.images.shape} and "
                                 f"{sp.labels.shape}")
        return splits
    except Exception as e:  # noqa: BLE001 - any damage means: decode again
        log.warning("decoded-data cache %s is damaged (%s: %s); decoding the archive again and "
                    "replacing it", cache, type(e).__name__, " ".join(str(e).split())[:200])
        return None


def load_npz(path: Path) -> dict:
    """Decodes the JPEG archive once; later calls read the uint8 cache. Both are verified
    whole when read: a damaged cache is decoded again and replaced (one log line); a damaged,
    truncated or wrong archive is a `DataError` naming the file and what to do."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    cache = _cache_dir() / f"cifar10_decoded_{key[:16]}.npz"
    if cache.is_file():
        splits = _read_cache(cache)
        if splits is not None:
            return splits
    splits = _read_archive(path)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **{f"{s}_{f}": getattr(sp, f) for s, sp in splits.items()
                         for f in ("images", "labels")})
        os.replace(tmp, cache)
    except OSError as e:  # a read-only or full cache folder costs a decode next time, no more
        log.warning("could not write the decoded-data cache %s (%s); set CRIMP_CACHE_DIR to a "
                    "writable folder to decode once", cache, e)
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
