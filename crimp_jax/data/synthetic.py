"""A synthetic stand-in for CIFAR-10 (`data.source='synthetic'`): no download, no decode.

In the spirit of tensorflow-datasets' `mock_data`: seeded uint8 images of CIFAR-10's shape
(32, 32, 3) and int32 labels 0-9, class-balanced, generated in a fraction of a second. Unlike
pure noise, each class has its own smooth colour template (a random 4x4x3 grid, upsampled 8x),
to which every image adds uniform pixel noise, so a network can learn the classes: an
end-to-end test then exercises a model that has learned something. Numbers measured on it say
nothing about CIFAR-10.

Images of class c in split s are a pure function of (seed, s, c): the same seed gives the same
data on every machine.
"""

from __future__ import annotations

import numpy as np

from crimp_jax.data.cifar10 import NUM_CLASSES, Split

TEMPLATE_AMPLITUDE = 64  # template pixels in 128 +/- 64
NOISE_AMPLITUDE = 32     # per-pixel uniform noise in +/- 32
_SPLITS = {"train": 0, "test": 1}


def class_templates(seed: int) -> np.ndarray:
    """(NUM_CLASSES, 32, 32, 3) int16 templates around 128 (shared by both splits)."""
    rng = np.random.default_rng([seed, 0x5EED])
    grid = rng.integers(-TEMPLATE_AMPLITUDE, TEMPLATE_AMPLITUDE + 1, (NUM_CLASSES, 4, 4, 3))
    return (128 + np.repeat(np.repeat(grid, 8, axis=1), 8, axis=2)).astype(np.int16)


def synthetic_split(split: str, per_class: int, seed: int = 0) -> Split:
    """`per_class` images of every class, labels sorted by class (like the offline npz)."""
    if split not in _SPLITS:
        raise ValueError(f"split={split!r}: expected one of {tuple(_SPLITS)}")
    if per_class < 1:
        raise ValueError(f"per_class={per_class!r}: expected >= 1")
    templates = class_templates(seed)
    images = np.empty((NUM_CLASSES * per_class, 32, 32, 3), np.uint8)
    for c in range(NUM_CLASSES):
        rng = np.random.default_rng([seed, _SPLITS[split], c])
        noise = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, (per_class, 32, 32, 3),
                             dtype=np.int16)
        images[c * per_class:(c + 1) * per_class] = np.clip(templates[c] + noise, 0, 255)
    labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.int32), per_class)
    return Split(images, labels)
