"""CIFAR-10 decoding/caching and on-device augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax import data as data_lib
from crimp_jax.data import cifar10 as cifar_mod


def test_decode_shapes_dtypes_and_balance(cifar10):
    train, test = cifar10["train"], cifar10["test"]
    assert train.images.shape == (50000, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 32, 32, 3) and test.images.dtype == np.uint8
    assert train.labels.dtype == np.int32 and test.labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), [1000] * 10)
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=10), [5000] * 10)
    # Real images, not blanks: pixel statistics near the CIFAR-10 means.
    mean = test.images.reshape(-1, 3).mean(0)
    assert np.all(np.abs(mean - np.array([125, 123, 114])) < 6), mean


def test_decode_is_cached(cifar10, monkeypatch):
    # A second load must come from the uint8 cache, never decode JPEGs again.
    monkeypatch.setattr(cifar_mod, "_decode_split", lambda *a: pytest.fail("decoded twice"))
    again = data_lib.load_cifar10()
    np.testing.assert_array_equal(again["test"].labels, cifar10["test"].labels)
    np.testing.assert_array_equal(again["test"].images[:5], cifar10["test"].images[:5])


def test_balanced_subset(cifar10):
    sub = data_lib.balanced_subset(cifar10["test"], 7, seed=1)
    np.testing.assert_array_equal(np.bincount(sub.labels, minlength=10), [7] * 10)
    with pytest.raises(ValueError, match="per_class=2000"):
        data_lib.balanced_subset(cifar10["test"], 2000)


def test_missing_data_names_both_ways(tmp_path, monkeypatch):
    monkeypatch.delenv("CRIMP_DATA_DIR", raising=False)

    def no_tfds():
        raise ConnectionError("no internet")

    monkeypatch.setattr(cifar_mod, "load_tfds", no_tfds)
    with pytest.raises(data_lib.DataError) as e:
        data_lib.load_cifar10(None, "auto")
    msg = str(e.value)
    assert "CRIMP_DATA_DIR" in msg and "tensorflow-datasets" in msg and "no internet" in msg
    with pytest.raises(data_lib.DataError, match="data_dir="):
        data_lib.load_cifar10(str(tmp_path), "auto")
    with pytest.raises(ValueError, match="data.source='ftp'"):
        data_lib.load_cifar10(None, "ftp")


def _padded_windows(img, pad=4):
    p = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
    h, w = img.shape[:2]
    return [p[i:i + h, j:j + w] for i in range(2 * pad + 1) for j in range(2 * pad + 1)]


def test_augmentation_is_crop_of_padded_or_its_flip():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (64, 8, 8, 3), dtype=np.uint8)  # no zeros: padding is visible
    out = np.asarray(jax.jit(data_lib.random_crop_flip)(jnp.asarray(images), jax.random.key(3)))
    assert out.shape == images.shape and out.dtype == np.uint8
    flips = 0
    for img, o in zip(images, out):
        windows = _padded_windows(img)
        plain = any(np.array_equal(o, w) for w in windows)
        flipped = any(np.array_equal(o[:, ::-1], w) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 16 <= flips <= 48  # about half flipped
    # Same key -> same batch; another key -> another batch.
    again = data_lib.random_crop_flip(jnp.asarray(images), jax.random.key(3))
    np.testing.assert_array_equal(out, np.asarray(again))
    other = data_lib.random_crop_flip(jnp.asarray(images), jax.random.key(4))
    assert not np.array_equal(out, np.asarray(other))


def test_epoch_permutation_is_deterministic_per_epoch():
    k = jax.random.key(0)
    p0 = np.asarray(data_lib.epoch_permutation(k, 100, 0))
    assert sorted(p0) == list(range(100))
    np.testing.assert_array_equal(p0, data_lib.epoch_permutation(k, 100, 0))
    assert not np.array_equal(p0, data_lib.epoch_permutation(k, 100, 1))


def test_validation_split_is_held_out_and_leaves_the_training_subset_unchanged(monkeypatch):
    """data.val_per_class: a class-balanced split disjoint from the training images; with a
    training subset the subset is the one drawn without validation, with the whole split the
    validation images are taken out of it. Image i of the stand-in split carries i."""
    from crimp_jax.data import source
    from crimp_jax.data.config import DataSpec
    n = 300
    ids = np.arange(n)
    split = cifar_mod.Split(ids.reshape(n, 1, 1, 1), (ids % 10).astype(np.int32))
    monkeypatch.setattr(source, "load_cifar10", lambda *a: {"train": split, "test": split})

    def ids_of(s):
        return {int(i) for i in s.images[:, 0, 0, 0]}

    plain = source.load_splits(DataSpec(source="npz", train_per_class=10))
    with_val = source.load_splits(DataSpec(source="npz", train_per_class=10, val_per_class=5))
    assert plain.val is None
    np.testing.assert_array_equal(with_val.train.images, plain.train.images)
    assert np.bincount(with_val.val.labels).tolist() == [5] * 10
    assert not ids_of(with_val.val) & ids_of(with_val.train)
    whole = source.load_splits(DataSpec(source="npz", val_per_class=5))
    assert len(whole.train.labels) == n - 50 and not ids_of(whole.val) & ids_of(whole.train)
    assert ids_of(whole.val) | ids_of(whole.train) == set(range(n))
