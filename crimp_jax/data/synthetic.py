"""A synthetic stand-in for a dataset (`data.source='synthetic'`): no download, no decode.

In the spirit of tensorflow-datasets' `mock_data`: seeded uint8 images of the dataset's shape
(CIFAR-10: (32, 32, 3); MNIST: (28, 28, 1); `crimp_jax.data.config.KNOWN`) and int32 labels
0..num_classes-1, class-balanced, generated in a fraction of a second. Unlike pure noise, each
class has its own smooth template (a random 4x4xC grid, each cell blown up to a patch of
ceil(H/4) x ceil(W/4) pixels, cut to H x W; 8x8 for CIFAR-10, 7x7 for MNIST), to which every
image adds uniform pixel noise, so a network can learn the classes: an end-to-end test then
exercises a model that has learned something. Numbers measured on it say nothing about the
real dataset.

Images of class c in split s are a pure function of (seed, s, c, shape): the same seed gives
the same data on every machine.
"""

from __future__ import annotations

import numpy as np

from crimp_jax.data.cifar10 import NUM_CLASSES, Split

TEMPLATE_AMPLITUDE = 64  # template pixels in 128 +/- 64
NOISE_AMPLITUDE = 32     # per-pixel uniform noise in +/- 32
GRID = 4                 # template cells per side
CIFAR10_SHAPE = (32, 32, 3)
_SPLITS = {"train": 0, "test": 1}


def class_templates(seed: int, shape=CIFAR10_SHAPE, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(num_classes, H, W, C) int16 templates around 128 (shared by both splits)."""
    h, w, c = _check_shape(shape)
    rng = np.random.default_rng([seed, 0x5EED])
    grid = rng.integers(-TEMPLATE_AMPLITUDE, TEMPLATE_AMPLITUDE + 1, (num_classes, GRID, GRID, c))
    up = np.repeat(np.repeat(grid, -(-h // GRID), axis=1), -(-w // GRID), axis=2)[:, :h, :w]
    return (128 + up).astype(np.int16)


def synthetic_split(split: str, per_class: int, seed: int = 0, shape=CIFAR10_SHAPE,
                    num_classes: int = NUM_CLASSES) -> Split:
    """`per_class` images of shape `shape` (H, W, C) of each of `num_classes` classes, labels
    sorted by class (like the offline npz)."""
    if split not in _SPLITS:
        raise ValueError(f"split={split!r}: expected one of {tuple(_SPLITS)}")
    if per_class < 1:
        raise ValueError(f"per_class={per_class!r}: expected >= 1")
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r}: expected >= 1")
    shape = _check_shape(shape)
    templates = class_templates(seed, shape, num_classes)
    images = np.empty((num_classes * per_class, *shape), np.uint8)
    for c in range(num_classes):
        rng = np.random.default_rng([seed, _SPLITS[split], c])
        noise = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, (per_class, *shape),
                             dtype=np.int16)
        images[c * per_class:(c + 1) * per_class] = np.clip(templates[c] + noise, 0, 255)
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
    return Split(images, labels)


def _check_shape(shape) -> tuple:
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape):
        raise ValueError(f"shape={shape!r}: expected (H, W, C) of positive ints")
    return tuple(int(s) for s in shape)
