"""CIFAR-10 loading (offline npz, tensorflow-datasets or a synthetic stand-in), on-device
augmentation, and the `data` config block."""

from crimp_jax.data.augment import epoch_permutation, random_crop_flip
from crimp_jax.data.cifar10 import (
                                    CLASS_NAMES,
                                    NPZ_NAME,
                                    NUM_CLASSES,
                                    DataError,
                                    Split,
                                    balanced_subset,
                                    find_npz,
                                    load_cifar10,
)
from crimp_jax.data.config import SOURCES, DataSpec
from crimp_jax.data.source import load_splits
from crimp_jax.data.synthetic import synthetic_split

__all__ = ["epoch_permutation", "random_crop_flip", "CLASS_NAMES", "NPZ_NAME", "NUM_CLASSES",
           "DataError", "Split", "balanced_subset", "find_npz", "load_cifar10", "SOURCES",
           "DataSpec", "load_splits", "synthetic_split"]
