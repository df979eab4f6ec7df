"""The `data` block: where CIFAR-10 comes from and which class-balanced subsets a run uses."""

from __future__ import annotations

import dataclasses

from crimp_jax.utils.blocks import ConfigError, check_choice, check_int, check_str

SOURCES = ("auto", "npz", "tfds", "synthetic")
TRAIN_PER_CLASS, TEST_PER_CLASS = 5000, 1000  # CIFAR-10's split sizes per class


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The `data` block.

    Attributes:
      data_dir: folder holding `cifar10_jpeg_q75.npz` ('' -> $CRIMP_DATA_DIR, then tfds).
      source: 'auto' (the npz if found, else tensorflow-datasets), 'npz', 'tfds', or
        'synthetic' (seeded class-balanced uint8 images of CIFAR-10's shapes with a learnable
        class signal; no download, for tests and smoke runs: `crimp_jax.data.synthetic`).
      train_per_class: > 0: class-balanced training subset of that many images per class
        (at most 5,000); 0: all.
      test_per_class: > 0: class-balanced test subset (at most 1,000 per class); 0: all.
      val_per_class: > 0: that many training images per class are held out of training as a
        validation split (model selection, `crimp.select_chips`); the training subset is drawn
        from the rest. 0: no validation split.
      seed: seed of the subsets (and of the synthetic images).
    """

    data_dir: str = ""
    source: str = "auto"
    train_per_class: int = 0
    test_per_class: int = 0
    val_per_class: int = 0
    seed: int = 0

    def __post_init__(self):
        check_str("data.data_dir", self.data_dir)
        check_choice("data.source", self.source, SOURCES)
        check_int("data.train_per_class", self.train_per_class, 0, TRAIN_PER_CLASS)
        check_int("data.test_per_class", self.test_per_class, 0, TEST_PER_CLASS)
        check_int("data.val_per_class", self.val_per_class, 0, TRAIN_PER_CLASS - 1)
        if self.val_per_class and self.train_per_class > TRAIN_PER_CLASS - self.val_per_class:
            raise ConfigError(
                f"data.train_per_class={self.train_per_class}: expected <= "
                f"{TRAIN_PER_CLASS - self.val_per_class} (5000 per class minus "
                f"data.val_per_class={self.val_per_class} held out for validation)")
        check_int("data.seed", self.seed)
