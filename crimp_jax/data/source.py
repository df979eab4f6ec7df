"""The train, test and validation splits a run uses, from the `data` block (`DataSpec`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from crimp_jax.data.cifar10 import (
    Split,
    balanced_subset,
    balanced_subset_indices,
    load_cifar10,
)
from crimp_jax.data.config import TEST_PER_CLASS, TRAIN_PER_CLASS, DataSpec
from crimp_jax.data.synthetic import synthetic_split

VAL_SEED_OFFSET = 7919  # the validation draw's seed: data.seed + this (not the subsets' draw)


class Splits(NamedTuple):
    train: Split
    test: Split
    val: Split | None  # None unless data.val_per_class > 0


def load_splits(spec: DataSpec) -> Splits:
    """The host splits of a run: class-balanced subsets where `*_per_class` > 0. The
    validation split (`data.val_per_class`) is drawn, with its own seed, from the training
    images the training subset does not use; when training uses the whole split, the
    validation images are taken out of it. So adding a validation split never changes a
    training subset."""
    tpc, vpc = spec.train_per_class, spec.val_per_class
    if spec.source == "synthetic":
        full = synthetic_split("train", (tpc or TRAIN_PER_CLASS - vpc) + vpc, spec.seed)
        test = synthetic_split("test", spec.test_per_class or TEST_PER_CLASS, spec.seed)
    else:
        splits = load_cifar10(spec.data_dir or None, spec.source)
        full, test = splits["train"], balanced_subset(splits["test"], spec.test_per_class,
                                                      spec.seed)
    everything = np.arange(len(full.labels))
    train_idx = balanced_subset_indices(full.labels, tpc, spec.seed) if tpc else everything
    val = None
    if vpc:
        pool = np.setdiff1d(everything, train_idx) if tpc else everything
        val_idx = pool[balanced_subset_indices(full.labels[pool], vpc,
                                               spec.seed + VAL_SEED_OFFSET)]
        if not tpc:
            train_idx = np.setdiff1d(everything, val_idx)
        val = _take(full, val_idx)
    return Splits(_take(full, train_idx), test, val)


def _take(split: Split, idx) -> Split:
    return Split(split.images[idx], split.labels[idx])
