"""The `data` block: which dataset a run uses, where it comes from, and which class-balanced
subsets of it."""

from __future__ import annotations

import dataclasses
import re
from typing import NamedTuple

from crimp_jax.utils.blocks import ConfigError, check_choice, check_int, check_str

SOURCES = ("auto", "npz", "tfds", "synthetic")


class Known(NamedTuple):
    """What the package knows about a dataset before loading it (`KNOWN`)."""

    image_shape: tuple  # (H, W, C)
    num_classes: int
    train_per_class: int | None  # images per class of the training split; None: unbalanced
    test_per_class: int | None   # images per class of the test split; None: unbalanced


# tensorflow-datasets names -> facts. Synthetic data needs an entry; config-time per-class
# bounds are checked where the entry has per-class counts; loaded data is checked against it.
KNOWN = {
    "cifar10": Known((32, 32, 3), 10, 5000, 1000),
    "cifar100": Known((32, 32, 3), 100, 500, 100),
    "svhn_cropped": Known((32, 32, 3), 10, None, None),
    "mnist": Known((28, 28, 1), 10, None, None),
    "fashion_mnist": Known((28, 28, 1), 10, 6000, 1000),
}
TRAIN_PER_CLASS, TEST_PER_CLASS = KNOWN["cifar10"][2:]  # CIFAR-10's split sizes per class
# Images per class the synthetic source generates for a dataset whose entry has no per-class
# counts, when data.train_per_class / data.test_per_class are 0: CIFAR-10's.
SYNTHETIC_PER_CLASS = (TRAIN_PER_CLASS, TEST_PER_CLASS)
# tensorflow-datasets names: 'name', 'name/config', either with ':version'.
_TFDS_NAME = re.compile(r"[a-z0-9_]+(/[A-Za-z0-9_.-]+)?(:[0-9.*]+)?")


def known(dataset: str) -> Known | None:
    """The `KNOWN` entry of a tensorflow-datasets name (a ':version' suffix is ignored)."""
    return KNOWN.get(dataset.split(":")[0])


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The `data` block.

    Attributes:
      dataset: a tensorflow-datasets name whose examples have an 'image' (uint8 HxWxC) and a
        'label' feature: 'cifar10' (default), 'cifar100', 'mnist', ... (`KNOWN` lists those
        the synthetic source can stand in for).
      data_dir: folder holding `cifar10_jpeg_q75.npz` ('' -> $CRIMP_DATA_DIR, then tfds);
        used for data.dataset='cifar10' only.
      source: 'auto' (for 'cifar10' the offline npz if found; else, and for every other
        dataset, tensorflow-datasets), 'npz' (cifar10 only), 'tfds', or 'synthetic' (seeded
        class-balanced uint8 images of the dataset's shape and class count, with a learnable
        class signal; no download, for tests and smoke runs: `crimp_jax.data.synthetic`).
      train_per_class: > 0: class-balanced training subset of that many images per class
        (at most the dataset's per-class count where `KNOWN` has it, e.g. 5,000 for
        CIFAR-10); 0: all.
      test_per_class: > 0: class-balanced test subset (at most 1,000 per class for
        CIFAR-10); 0: all.
      val_per_class: > 0: that many training images per class are held out of training as a
        validation split (model selection, `crimp.select_chips`); the training subset is drawn
        from the rest. 0: no validation split.
      seed: seed of the subsets (and of the synthetic images).
    """

    dataset: str = "cifar10"
    data_dir: str = ""
    source: str = "auto"
    train_per_class: int = 0
    test_per_class: int = 0
    val_per_class: int = 0
    seed: int = 0

    def __post_init__(self):
        check_dataset_name(self.dataset)
        check_str("data.data_dir", self.data_dir)
        check_choice("data.source", self.source, SOURCES)
        if self.source == "npz" and self.dataset != "cifar10":
            raise ConfigError(
                f"data.dataset={self.dataset!r}: expected 'cifar10' with data.source='npz' "
                f"(the offline archive holds CIFAR-10 only); other datasets need data.source "
                f"'auto', 'tfds' or 'synthetic'")
        if self.source == "synthetic" and known(self.dataset) is None:
            raise ConfigError(
                f"data.dataset={self.dataset!r}: expected one of {tuple(KNOWN)} with "
                f"data.source='synthetic' (it takes image shape and class count from "
                f"crimp_jax.data.config.KNOWN)")
        train_max, test_max = self.full_per_class()
        check_int("data.train_per_class", self.train_per_class, 0, train_max)
        check_int("data.test_per_class", self.test_per_class, 0, test_max)
        check_int("data.val_per_class", self.val_per_class, 0,
                  None if train_max is None else train_max - 1)
        if (self.val_per_class and train_max is not None
                and self.train_per_class > train_max - self.val_per_class):
            raise ConfigError(
                f"data.train_per_class={self.train_per_class}: expected <= "
                f"{train_max - self.val_per_class} ({train_max} per class minus "
                f"data.val_per_class={self.val_per_class} held out for validation)")
        check_int("data.seed", self.seed)

    def full_per_class(self) -> tuple:
        """(train, test) images per class of the full splits as far as the config knows: the
        `KNOWN` counts; for the synthetic source, where those are None, `SYNTHETIC_PER_CLASS`
        (what it generates). None: unknown before loading (an unbalanced or unknown dataset)."""
        entry = known(self.dataset)
        counts = (entry.train_per_class, entry.test_per_class) if entry else (None, None)
        if self.source == "synthetic":
            counts = tuple(c or s for c, s in zip(counts, SYNTHETIC_PER_CLASS))
        return counts

    def train_size(self) -> int | None:
        """How many images the training split of the run holds (after the subset and the
        validation hold-out), when the config alone tells; None: known only after loading."""
        entry = known(self.dataset)
        train_max = self.full_per_class()[0]
        if entry is None or not (self.train_per_class or train_max):
            return None
        return entry.num_classes * (self.train_per_class or train_max - self.val_per_class)


def check_dataset_name(name) -> str:
    """A tensorflow-datasets name ('name', 'name/config', either with ':version')."""
    if not (isinstance(name, str) and _TFDS_NAME.fullmatch(name)):
        raise ConfigError(f"data.dataset={name!r}: expected a tensorflow-datasets name such as "
                          f"'cifar10' or 'mnist' (known: {', '.join(KNOWN)})")
    return name
