"""CIFAR-10 loading (offline npz or tensorflow-datasets) and on-device augmentation."""

from crimp_jax.data.augment import epoch_permutation, random_crop_flip
from crimp_jax.data.cifar10 import (CLASS_NAMES, NPZ_NAME, NUM_CLASSES, DataError, Split,
                                    balanced_subset, find_npz, load_cifar10)

__all__ = ["epoch_permutation", "random_crop_flip", "CLASS_NAMES", "NPZ_NAME", "NUM_CLASSES",
           "DataError", "Split", "balanced_subset", "find_npz", "load_cifar10"]
