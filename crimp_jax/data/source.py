"""The train, test and validation splits a run uses, and what they are (`DataInfo`), from the
`data` block (`DataSpec`)."""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from crimp_jax.data.cifar10 import (
    CLASS_NAMES,
    DataError,
    Split,
    balanced_subset,
    balanced_subset_indices,
    load_cifar10,
    load_tfds,
)
from crimp_jax.data.config import DataSpec, known
from crimp_jax.data.synthetic import synthetic_split

VAL_SEED_OFFSET = 7919  # the validation draw's seed: data.seed + this (not the subsets' draw)
STATS_CHUNK_PIXELS = 1 << 20  # pixels per float64 chunk of `channel_stats` (24 MiB at C=3)


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a run's dataset is, from its data.

    Attributes:
      name: the tensorflow-datasets name (`data.dataset`).
      num_classes: labels are 0..num_classes-1 (`KNOWN`'s count, else max label + 1 of the
        training split).
      image_shape: (H, W, C) of one image.
      mean_int: per-channel mean of the full training split in pixel units (0..255), rounded
        to the nearest integer (`channel_stats`).
      std: per-channel standard deviation of the full training split over all its pixels,
        rounded to 2 decimals (`channel_stats`).
      class_names: the label names (index = label), or () where the source has none.
    """

    name: str
    num_classes: int
    image_shape: tuple
    mean_int: tuple
    std: tuple
    class_names: tuple = ()


class Splits(NamedTuple):
    train: Split
    test: Split
    val: Split | None  # None unless data.val_per_class > 0
    info: DataInfo


def channel_stats(images) -> tuple:
    """(mean_int, std) per channel (last axis) of `images` over all their pixels: the mean
    rounded half up to an int and the population standard deviation (ddof 0) rounded to 2
    decimals. Computed in float64, two passes over chunks of `STATS_CHUNK_PIXELS` pixels, so
    no float64 copy of the whole array is made."""
    images = np.asarray(images)
    if images.ndim < 2 or images.size == 0:
        raise ValueError(f"images of shape {images.shape}: expected (..., C) with pixels")
    channels = images.shape[-1]
    rows = images.reshape(-1, *images.shape[-3:]) if images.ndim >= 3 else images
    per_row = max(1, math.prod(rows.shape[1:]) // channels)
    step = max(1, STATS_CHUNK_PIXELS // per_row)
    chunks = [rows[i:i + step].reshape(-1, channels) for i in range(0, len(rows), step)]
    n = sum(len(c) for c in chunks)
    mean = sum(c.sum(0, dtype=np.float64) for c in chunks) / n
    var = sum(np.square(c - mean).sum(0) for c in chunks) / n  # c - mean: float64 per chunk
    mean_int = tuple(int(math.floor(m + 0.5)) for m in mean)
    return mean_int, tuple(round(float(s), 2) for s in np.sqrt(var))


def dataset_info(name: str, train: Split, num_classes: int, class_names=()) -> DataInfo:
    """The `DataInfo` of a dataset from its full training split."""
    mean_int, std = channel_stats(train.images)
    return DataInfo(name, int(num_classes), tuple(int(s) for s in train.images.shape[1:]),
                    mean_int, std, tuple(class_names))


def load_splits(spec: DataSpec) -> Splits:
    """The host splits of a run and their `DataInfo` (statistics of the full training split):
    class-balanced subsets where `*_per_class` > 0. The validation split (`data.val_per_class`)
    is drawn, with its own seed, from the training images the training subset does not use;
    when training uses the whole split, the validation images are taken out of it. So adding a
    validation split never changes a training subset. A class with fewer images than a
    `*_per_class` key asks for is a `DataError` naming the key."""
    tpc, vpc = spec.train_per_class, spec.val_per_class
    if spec.source == "synthetic":
        full, test = _synthetic_splits(spec)
        class_names = ()
    else:
        data = _load_real(spec)
        full, test, class_names = data["train"], data["test"], data.get("class_names", ())
    num_classes = _num_classes(spec.dataset, full, test)
    if spec.dataset == "cifar10" and not class_names:
        class_names = CLASS_NAMES
    if spec.source != "synthetic":
        _check_enough("data.test_per_class", spec.test_per_class, test.labels, num_classes,
                      f"{spec.dataset}'s test split")
        test = balanced_subset(test, spec.test_per_class, spec.seed, num_classes)
    _check_enough("data.train_per_class", tpc, full.labels, num_classes,
                  f"{spec.dataset}'s training split")
    everything = np.arange(len(full.labels))
    train_idx = (balanced_subset_indices(full.labels, tpc, spec.seed, num_classes) if tpc
                 else everything)
    val = None
    if vpc:
        pool = np.setdiff1d(everything, train_idx) if tpc else everything
        _check_enough("data.val_per_class", vpc + (0 if tpc else 1), full.labels[pool],
                      num_classes, f"{spec.dataset}'s training split",
                      f" left after data.train_per_class={tpc}" if tpc
                      else " (at least one must stay for training)", shown=vpc)
        val_idx = pool[balanced_subset_indices(full.labels[pool], vpc,
                                               spec.seed + VAL_SEED_OFFSET, num_classes)]
        if not tpc:
            train_idx = np.setdiff1d(everything, val_idx)
        val = _take(full, val_idx)
    info = dataset_info(spec.dataset, full, num_classes, class_names)
    return Splits(_take(full, train_idx), test, val, info)


def _synthetic_splits(spec: DataSpec) -> tuple:
    """(full training split, test split) of the synthetic stand-in of `spec.dataset`."""
    entry = known(spec.dataset)
    train_full, test_full = spec.full_per_class()
    tpc, vpc = spec.train_per_class, spec.val_per_class
    kw = dict(seed=spec.seed, shape=entry.image_shape, num_classes=entry.num_classes)
    return (synthetic_split("train", (tpc or train_full - vpc) + vpc, **kw),
            synthetic_split("test", spec.test_per_class or test_full, **kw))


def _load_real(spec: DataSpec) -> dict:
    """{'train', 'test'[, 'class_names']}: CIFAR-10 from the npz or tfds, any other dataset
    from tensorflow-datasets."""
    if spec.dataset == "cifar10":
        return load_cifar10(spec.data_dir or None, spec.source)
    try:
        return load_tfds(spec.dataset)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - any tfds failure means 'not available here'
        raise DataError(
            f"data.dataset={spec.dataset!r}: tensorflow-datasets could not load it "
            f"({type(e).__name__}: {str(e)[:200]}); expected a tensorflow-datasets name with "
            f"'image' and 'label' features, downloadable here or already downloaded") from e


def _num_classes(name: str, train: Split, test: Split) -> int:
    """`KNOWN`'s class count, else max label + 1 of the training split; every label of both
    splits must lie in 0..count-1."""
    entry = known(name)
    num_classes = entry.num_classes if entry else int(train.labels.max(initial=-1)) + 1
    for what, labels in (("training", train.labels), ("test", test.labels)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataError(f"data.dataset={name!r}: {what} labels in [{labels.min()}, "
                            f"{labels.max()}]; expected labels in [0, {num_classes - 1}]")
    return num_classes


def _check_enough(key: str, need: int, labels, num_classes: int, what: str, tail: str = "",
                  shown: int | None = None) -> None:
    """A DataError unless every class has >= `need` images among `labels` (need 0: no check);
    the message shows `key`=`shown` (default `need`)."""
    if need <= 0:
        return
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    c = int(np.argmin(counts))
    if counts[c] < need:
        n = int(counts[c])
        raise DataError(f"{key}={need if shown is None else shown}: class {c} of {what} has "
                        f"only {n} image{'' if n == 1 else 's'}{tail}")


def _take(split: Split, idx) -> Split:
    return Split(split.images[idx], split.labels[idx])


def splits_from_arrays(train, test, val=None, *, name: str = "arrays",
                       num_classes: int | None = None) -> Splits:
    """`Splits` of a caller's own arrays: each split an (images, labels) pair of uint8
    (N, H, W, C) images (a grey (N, H, W) gets its channel axis) and integer labels; the
    `DataInfo` statistics come from `train` (the library API, `crimp_jax.api`)."""
    def split(pair, what):
        if pair is None:
            return None
        images, labels = (np.asarray(a) for a in pair)
        if images.dtype != np.uint8:
            hint = (" (floats in [0, 1]: pass (images * 255).round().astype(np.uint8))"
                    if np.issubdtype(images.dtype, np.floating) else "")
            raise DataError(f"{what} images: dtype {images.dtype}, expected uint8 pixels "
                            f"0..255{hint}")
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or labels.shape != images.shape[:1]:
            raise DataError(f"{what}: images {images.shape} and labels {labels.shape}; expected "
                            "(N, H, W, C) images and (N,) labels")
        if images.shape[1] in (1, 3) and images.shape[3] > 4:
            raise DataError(f"{what} images {images.shape} look channels-first (N, C, H, W); "
                            f"crimp_jax takes (N, H, W, C): pass np.transpose(images, "
                            f"(0, 2, 3, 1))")
        if labels.size and (labels.min() < 0 or not np.issubdtype(labels.dtype, np.integer)):
            raise DataError(f"{what} labels: expected integers >= 0")
        if num_classes is not None and labels.size and labels.max() >= num_classes:
            raise DataError(f"{what} labels: {int(labels.max())} with num_classes="
                            f"{num_classes}; expected labels 0..{num_classes - 1}")
        return Split(images, labels.astype(np.int32))

    tr, te, va = split(train, "train"), split(test, "test"), split(val, "val")
    for what, other in (("test", te), ("val", va)):
        if other is not None and other.images.shape[1:] != tr.images.shape[1:]:
            raise DataError(f"{what} images {other.images.shape[1:]} differ from train images "
                            f"{tr.images.shape[1:]}")
    n = num_classes or int(max(tr.labels.max(), te.labels.max())) + 1
    return Splits(tr, te, va, dataset_info(name, tr, n))
