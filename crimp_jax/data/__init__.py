"""Image classification data: CIFAR-10 (offline npz or tensorflow-datasets) or any other
tensorflow-datasets dataset by name (`data.dataset`), a synthetic stand-in of the known ones,
their statistics (`DataInfo`), on-device augmentation, and the `data` config block."""

from crimp_jax.data.augment import epoch_permutation, random_crop_flip
from crimp_jax.data.cifar10 import (
    CLASS_NAMES,
    NPZ_NAME,
    NUM_CLASSES,
    DataError,
    Split,
    balanced_subset,
    calibration_sample,
    find_npz,
    load_cifar10,
    load_tfds,
)
from crimp_jax.data.config import KNOWN, SOURCES, DataSpec, Known, known
from crimp_jax.data.source import (
    DataInfo,
    Splits,
    channel_stats,
    dataset_info,
    load_splits,
    splits_from_arrays,
)
from crimp_jax.data.synthetic import synthetic_split

__all__ = ["epoch_permutation", "random_crop_flip", "CLASS_NAMES", "NPZ_NAME", "NUM_CLASSES",
           "DataError", "Split", "balanced_subset", "calibration_sample", "find_npz",
           "load_cifar10", "load_tfds", "KNOWN", "SOURCES", "DataSpec", "Known", "known",
           "DataInfo", "Splits", "channel_stats", "dataset_info", "load_splits", "splits_from_arrays", "synthetic_split"]
