"""The train and test splits a run uses, from the `data` block (`DataSpec`)."""

from __future__ import annotations

from crimp_jax.data.cifar10 import balanced_subset, load_cifar10
from crimp_jax.data.config import TEST_PER_CLASS, TRAIN_PER_CLASS, DataSpec
from crimp_jax.data.synthetic import synthetic_split


def load_splits(spec: DataSpec):
    """(train, test) host splits: class-balanced subsets where `*_per_class` > 0."""
    if spec.source == "synthetic":
        return (synthetic_split("train", spec.train_per_class or TRAIN_PER_CLASS, spec.seed),
                synthetic_split("test", spec.test_per_class or TEST_PER_CLASS, spec.seed))
    splits = load_cifar10(spec.data_dir or None, spec.source)
    return (balanced_subset(splits["train"], spec.train_per_class, spec.seed),
            balanced_subset(splits["test"], spec.test_per_class, spec.seed))
