"""CIFAR-10 decoding/caching, datasets by tensorflow-datasets name (through a fake tfds
module), the synthetic source, channel statistics, and on-device augmentation."""

import hashlib
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax import data as data_lib
from crimp_jax.data import cifar10 as cifar_mod
from crimp_jax.data import source
from crimp_jax.data.config import DataSpec
from crimp_jax.data.synthetic import class_templates
from crimp_jax.utils.blocks import ConfigError


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


def test_calibration_sample_spans_a_class_ordered_split():
    """Archives are ordered by class: a calibration pass takes a seeded random sample, not the
    first n images (which here would all be class 0)."""
    labels = np.repeat(np.arange(10), 200)  # the quickstart's 2,000, in archive order
    images = np.arange(2000)  # image i is its index
    picked = data_lib.calibration_sample(images, 128, seed=0)
    assert len(picked) == 128 and len(np.unique(picked)) == 128
    assert np.all(np.diff(picked) > 0)  # index order
    counts = np.bincount(labels[picked], minlength=10)
    assert counts.min() >= 5, counts  # every class (12.8 expected each)
    np.testing.assert_array_equal(data_lib.calibration_sample(images, 128, seed=0), picked)
    assert not np.array_equal(data_lib.calibration_sample(images, 128, seed=1), picked)
    assert data_lib.calibration_sample(images, 5000) is images  # fewer images than asked: all
    jax_images = jnp.asarray(images)  # device arrays too (the bench's)
    np.testing.assert_array_equal(data_lib.calibration_sample(jax_images, 128, seed=0), picked)


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


# --- damaged files: the archive and the decoded cache ----------------------------------------

def _small_archive(path, per_split=(12, 8), seed=0):
    """A CIFAR-10-format JPEG archive (docs/data.md) of a few random images, written here with
    Pillow; returns the decoded uint8 images of each split as the reference."""
    import io as io_lib

    from PIL import Image

    rng = np.random.default_rng(seed)
    arrays, ref = {}, {}
    for split, n in zip(("train", "test"), per_split):
        blobs, decoded = [], []
        for _ in range(n):
            buf = io_lib.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                buf, format="JPEG", quality=75)
            blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
            decoded.append(np.asarray(Image.open(io_lib.BytesIO(buf.getvalue())).convert("RGB")))
        arrays[f"{split}_jpeg"] = np.concatenate(blobs)
        arrays[f"{split}_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
        arrays[f"{split}_labels"] = (np.arange(n) % 10).astype(np.uint8)
        ref[split] = np.stack(decoded)
    np.savez(path, **arrays)
    return ref


def _flip_bytes(path, where: float, n: int = 64):
    """Inverts `n` bytes of the file at the fraction `where` of its length (its size and
    zip directory stay as they were)."""
    raw = bytearray(path.read_bytes())
    at = int(len(raw) * where)
    raw[at:at + n] = bytes(255 - b for b in raw[at:at + n])
    path.write_bytes(bytes(raw))


@pytest.fixture
def small_archive(tmp_path, monkeypatch):
    """(archive path, reference images per split) with a private decoded-data cache."""
    monkeypatch.setenv("CRIMP_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "data" / cifar_mod.NPZ_NAME
    path.parent.mkdir()
    return path, _small_archive(path)


def test_damaged_cache_is_decoded_again_and_replaced(small_archive, caplog):
    """A cache file damaged on disk (bad CRC inside an array, not only in the zip directory)
    is found when read, decoded again from the archive with one log line, and replaced: the
    next load reads the new cache silently."""
    path, ref = small_archive
    first = cifar_mod.load_npz(path)
    np.testing.assert_array_equal(first["train"].images, ref["train"])
    (cache,) = (path.parents[1] / "cache").glob("cifar10_decoded_*.npz")
    _flip_bytes(cache, 0.3)  # inside train_images
    caplog.set_level("WARNING")
    healed = cifar_mod.load_npz(path)
    warnings = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(warnings) == 1 and str(cache) in warnings[0]
    for split in ("train", "test"):
        np.testing.assert_array_equal(healed[split].images, ref[split])
        np.testing.assert_array_equal(healed[split].labels, np.arange(len(ref[split])) % 10)
    caplog.clear()
    again = cifar_mod.load_npz(path)  # the replaced cache is intact
    assert not caplog.records  # read from the cache: no decode, no warning
    np.testing.assert_array_equal(again["test"].images, ref["test"])


def _damage_truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _damage_bytes(path):
    _flip_bytes(path, 0.2)


def _damage_wrong_archive(path):
    np.savez(path, images=np.zeros((3, 32, 32, 3), np.uint8), labels=np.zeros(3, np.uint8))


def _damage_not_jpeg(path):
    with np.load(path) as a:
        arrays = dict(a)
    arrays["test_jpeg"] = np.zeros_like(arrays["test_jpeg"])  # same length, no JPEG inside
    np.savez(path, **arrays)


def _damage_offsets(path):
    with np.load(path) as a:
        arrays = dict(a)
    arrays["train_offsets"] = arrays["train_offsets"][::-1].copy()
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage, what", [
    (_damage_truncate, "damaged or not an npz archive"),
    (_damage_bytes, "damaged or not an npz archive"),
    (_damage_wrong_archive, "not a CIFAR-10 JPEG archive: no ['test_jpeg'"),
    (_damage_not_jpeg, "test image 0 does not decode"),
    (_damage_offsets, "train_offsets"),
])
def test_damaged_archive_is_one_error_naming_the_file_and_what_to_do(small_archive, damage,
                                                                     what):
    path, _ = small_archive
    damage(path)
    size = path.stat().st_size
    with pytest.raises(data_lib.DataError) as e:
        cifar_mod.load_npz(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and what in msg, msg
    assert "replace it with an intact copy" in msg and "sha256" in msg
    assert path.stat().st_size == size  # the file is left as it was
    assert not list((path.parents[1] / "cache").glob("*.npz"))  # nothing cached from it


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
    assert whole.info.num_classes == 10 and whole.info.class_names == data_lib.CLASS_NAMES
    assert whole.info.image_shape == (1, 1, 1)


def test_real_cifar10_info(cifar10):
    info = data_lib.dataset_info("cifar10", cifar10["train"], 10)
    print(f"\nreal CIFAR-10 (npz) DataInfo: mean_int={info.mean_int} std={info.std}")
    assert info.image_shape == (32, 32, 3)
    # The archive's statistics (its sha256 is in docs/data.md): the integer mean is the
    # original CIFAR-10's (crimp_jax.models.layers), the std is lower than the original's
    # (62.99, 62.09, 66.70): JPEG at quality 75 smooths the images.
    assert (info.mean_int, info.std) == ((125, 123, 114), (62.53, 61.91, 66.46))


# --- channel statistics ---------------------------------------------------------------------

def test_channel_stats_hand_computed(monkeypatch):
    # Channel 0: 0, 10, 20, 30 -> mean 15, std sqrt((225 + 25 + 25 + 225) / 4) = 11.1803.
    # Channel 1: 1, 2, 3, 5 -> mean 2.75 -> 3, std sqrt(8.75 / 4) = 1.4790.
    # Channel 2: 0, 1, 0, 1 -> mean 0.5 -> 1 (half up), std 0.5.
    images = np.array([[[[0, 1, 0], [10, 2, 1]]], [[[20, 3, 0], [30, 5, 1]]]], np.uint8)
    assert images.shape == (2, 1, 2, 3)
    assert data_lib.channel_stats(images) == ((15, 3, 1), (11.18, 1.48, 0.5))
    monkeypatch.setattr(source, "STATS_CHUNK_PIXELS", 1)  # one image per chunk: same answer
    assert data_lib.channel_stats(images) == ((15, 3, 1), (11.18, 1.48, 0.5))


def test_channel_stats_chunked_equals_numpy(monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (37, 5, 6, 3), dtype=np.uint8)
    flat = images.reshape(-1, 3).astype(np.float64)
    monkeypatch.setattr(source, "STATS_CHUNK_PIXELS", 64)  # 2 images per chunk, last one short
    mean_int, std = data_lib.channel_stats(images)
    assert mean_int == tuple(int(np.floor(m + 0.5)) for m in flat.mean(0))
    assert std == tuple(round(float(s), 2) for s in flat.std(0))


# --- the synthetic source -------------------------------------------------------------------

def _sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def test_synthetic_cifar10_is_unchanged():
    """Pinned from the implementation before data.dataset existed: CIFAR-10 synthetic data
    (and so every result measured on it) must stay bit-identical."""
    for split, per_class, seed, sha, first, last in [
            ("train", 3, 0, "8e3adc72b270d80f", [66, 158, 164], [97, 196, 151]),
            ("test", 2, 0, "e1e2cf86f03f2e4d", [38, 136, 164], [58, 154, 166]),
            ("train", 5, 7, "43354a32d31fb2b7", [89, 190, 95], [209, 126, 150])]:
        s = data_lib.synthetic_split(split, per_class, seed)
        assert s.images.shape == (10 * per_class, 32, 32, 3) and s.images.dtype == np.uint8
        assert _sha(s.images) == sha
        assert s.images[0, 0, 0].tolist() == first and s.images[-1, 31, 31].tolist() == last
    splits = data_lib.load_splits(DataSpec(source="synthetic", train_per_class=3,
                                           test_per_class=2))
    assert _sha(splits.train.images) == "8e3adc72b270d80f"
    assert _sha(splits.test.images) == "e1e2cf86f03f2e4d"
    info = splits.info
    assert (info.name, info.num_classes, info.image_shape) == ("cifar10", 10, (32, 32, 3))
    assert info.class_names == data_lib.CLASS_NAMES
    assert info.mean_int == data_lib.channel_stats(splits.train.images)[0]


@pytest.mark.parametrize("dataset,shape,classes", [("mnist", (28, 28, 1), 10),
                                                   ("fashion_mnist", (28, 28, 1), 10),
                                                   ("cifar100", (32, 32, 3), 100)])
def test_synthetic_other_datasets_shapes_and_balance(dataset, shape, classes):
    spec = DataSpec(dataset=dataset, source="synthetic", train_per_class=3, test_per_class=2,
                    val_per_class=1)
    train, test, val, info = data_lib.load_splits(spec)
    assert train.images.shape == (3 * classes, *shape) and train.images.dtype == np.uint8
    assert test.images.shape == (2 * classes, *shape) and val.images.shape == (classes, *shape)
    assert train.labels.dtype == np.int32
    for split, per_class in ((train, 3), (test, 2), (val, 1)):
        assert np.bincount(split.labels).tolist() == [per_class] * classes
    assert (info.name, info.num_classes, info.image_shape) == (dataset, classes, shape)
    assert len(info.mean_int) == len(info.std) == shape[-1] and info.class_names == ()
    # Templates: a 4x4 grid, each cell a constant ceil(H/4) x ceil(W/4) patch.
    t = class_templates(0, shape, classes)
    cell = -(-shape[0] // 4)
    assert t.shape == (classes, *shape)
    np.testing.assert_array_equal(t, np.repeat(np.repeat(t[:, ::cell, ::cell], cell, 1), cell, 2))
    assert len({_sha(x) for x in t}) == classes  # one template per class


# --- datasets by tensorflow-datasets name (a fake tfds module runs the real code path) ------

def _fake_tfds(monkeypatch, datasets, calls=None):
    """Installs a fake `tensorflow_datasets` module serving {name: {split: (images, labels)},
    and 'names': label names}."""
    fake = types.ModuleType("tensorflow_datasets")

    def load(name, split, batch_size, with_info=False):
        if calls is not None:
            calls.append((name, split, batch_size))
        if name not in datasets:
            raise ConnectionError(f"no internet to download {name}")
        images, labels = datasets[name][split]
        ds = {"image": images, "label": labels}
        info = types.SimpleNamespace(features={
            "label": types.SimpleNamespace(names=datasets[name].get("names", []))})
        return (ds, info) if with_info else ds

    fake.load, fake.as_numpy = load, lambda ds: {k: np.asarray(v) for k, v in ds.items()}
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)


def _const_images(values, shape):
    """One image per value, every pixel of it that value."""
    return np.stack([np.full(shape, v, np.uint8) for v in values])


@pytest.mark.parametrize("channel_axis", [True, False])
def test_tfds_dataset_by_name(monkeypatch, channel_axis):
    # 20 training images, 2 per class: images 0-9 all 0, images 10-19 all 100 -> mean 50,
    # std 50 over all pixels; 10 test images of 7.
    shape = (28, 28, 1) if channel_axis else (28, 28)
    train = (_const_images([0] * 10 + [100] * 10, shape), np.arange(20, dtype=np.int64) % 10)
    test = (_const_images([7] * 10, shape), np.arange(10, dtype=np.int64))
    calls = []
    _fake_tfds(monkeypatch, {"mnist": {"train": train, "test": test, "names": list("0123456789")}},
               calls)
    splits = data_lib.load_splits(DataSpec(dataset="mnist"))  # 'auto' -> tfds for non-cifar10
    assert calls == [("mnist", "train", -1), ("mnist", "test", -1)]
    assert splits.train.images.shape == (20, 28, 28, 1) and splits.train.images.dtype == np.uint8
    assert splits.train.labels.dtype == np.int32 and splits.test.labels.dtype == np.int32
    assert splits.val is None and len(splits.test.labels) == 10
    assert splits.info == data_lib.DataInfo("mnist", 10, (28, 28, 1), (50,), (50.0,),
                                            tuple("0123456789"))
    sub = data_lib.load_splits(DataSpec(dataset="mnist", source="tfds", train_per_class=1,
                                        val_per_class=1, test_per_class=1))
    assert [len(s.labels) for s in sub[:3]] == [10, 10, 10]
    assert sub.info == splits.info  # statistics of the full training split, not the subset


def test_tfds_unknown_dataset_and_cifar10(monkeypatch):
    # Unknown to KNOWN: num_classes = max label + 1 of the training split; shape from the data.
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 8, 6, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4] * 2 + [4, 4])
    cifar = (np.zeros((10, 32, 32, 3), np.uint8), np.arange(10))
    _fake_tfds(monkeypatch, {"my_shapes": {"train": (images, labels), "test": (images, labels)},
                             "cifar10": {"train": cifar, "test": cifar,
                                         "names": list(data_lib.CLASS_NAMES)}})
    info = data_lib.load_splits(DataSpec(dataset="my_shapes", source="tfds")).info
    assert (info.num_classes, info.image_shape, info.class_names) == (5, (8, 6, 3), ())
    assert (info.mean_int, info.std) == data_lib.channel_stats(images)
    # CIFAR-10 through tfds takes the same path.
    c = data_lib.load_splits(DataSpec(source="tfds"))
    assert c.info == data_lib.DataInfo("cifar10", 10, (32, 32, 3), (0, 0, 0), (0.0, 0.0, 0.0),
                                       data_lib.CLASS_NAMES)


def test_tfds_errors(monkeypatch):
    # Class 0 has 2 training images and 1 test image.
    train = (_const_images([1] * 20, (4, 4, 1)), np.arange(20) % 10)
    test = (_const_images([1] * 10, (4, 4, 1)), np.arange(10))
    bad = (np.zeros((10, 4, 4, 1), np.float32), np.arange(10))
    _fake_tfds(monkeypatch, {"mnist": {"train": train, "test": test},
                             "floats": {"train": bad, "test": bad}})
    with pytest.raises(data_lib.DataError, match=r"^data.train_per_class=3: class 0 of mnist's "
                                                 r"training split has only 2 images$"):
        data_lib.load_splits(DataSpec(dataset="mnist", train_per_class=3))
    with pytest.raises(data_lib.DataError, match=r"^data.test_per_class=2: class 0 of mnist's "
                                                 r"test split has only 1 image$"):
        data_lib.load_splits(DataSpec(dataset="mnist", test_per_class=2))
    with pytest.raises(data_lib.DataError, match=r"^data.val_per_class=2: class 0 of mnist's "
                       r"training split has only 1 image left after data.train_per_class=1$"):
        data_lib.load_splits(DataSpec(dataset="mnist", train_per_class=1, val_per_class=2))
    with pytest.raises(data_lib.DataError, match=r"^data.val_per_class=2: .* only 2 images "
                                                 r"\(at least one must stay for training\)$"):
        data_lib.load_splits(DataSpec(dataset="mnist", val_per_class=2))
    with pytest.raises(data_lib.DataError, match="data.dataset='floats': train images are "
                                                 "float32"):
        data_lib.load_splits(DataSpec(dataset="floats"))
    with pytest.raises(data_lib.DataError, match="data.dataset='nope': tensorflow-datasets could "
                                                 "not load it .*no internet"):
        data_lib.load_splits(DataSpec(dataset="nope"))


# --- config ---------------------------------------------------------------------------------

def test_dataset_config_errors():
    with pytest.raises(ConfigError, match=r"^data.dataset='mnist': expected 'cifar10' with "
                                          r"data.source='npz'.*'auto', 'tfds' or 'synthetic'$"):
        DataSpec(dataset="mnist", source="npz")
    with pytest.raises(ConfigError, match=r"^data.dataset='imagenet2012': expected one of "
                                          r"\('cifar10', 'cifar100', 'svhn_cropped', 'mnist', "
                                          r"'fashion_mnist'\) with data.source='synthetic'"):
        DataSpec(dataset="imagenet2012", source="synthetic")
    with pytest.raises(ConfigError, match="data.dataset='MNIST data': expected a "
                                          "tensorflow-datasets name"):
        DataSpec(dataset="MNIST data")
    DataSpec(dataset="imagenette/160px:1.0.0", source="tfds")  # config and version are fine
    # Per-class bounds from KNOWN; CIFAR-10's messages as before.
    with pytest.raises(ConfigError, match=r"^data.train_per_class=5001: expected an int in "
                                          r"\[0, 5000\]$"):
        DataSpec(train_per_class=5001)
    with pytest.raises(ConfigError, match=r"^data.train_per_class=4995: expected <= 4990 \(5000 "
                                          r"per class minus data.val_per_class=10 held out"):
        DataSpec(train_per_class=4995, val_per_class=10)
    with pytest.raises(ConfigError, match=r"^data.test_per_class=101: expected an int in "
                                          r"\[0, 100\]$"):
        DataSpec(dataset="cifar100", test_per_class=101)
    DataSpec(dataset="mnist", train_per_class=9000)  # unbalanced: checked when loaded
    with pytest.raises(ConfigError, match=r"data.train_per_class=5001: expected an int in "
                                          r"\[0, 5000\]"):  # synthetic: what it generates
        DataSpec(dataset="mnist", source="synthetic", train_per_class=5001)


def test_train_size():
    assert DataSpec().train_size() == 50000
    assert DataSpec(val_per_class=10).train_size() == 49900
    assert DataSpec(train_per_class=20, val_per_class=5).train_size() == 200
    assert DataSpec(dataset="cifar100", val_per_class=100).train_size() == 40000
    assert DataSpec(dataset="mnist").train_size() is None  # unbalanced: known once loaded
    assert DataSpec(dataset="mnist", train_per_class=7).train_size() == 70
    assert DataSpec(dataset="mnist", source="synthetic").train_size() == 50000
    assert DataSpec(dataset="my_shapes", train_per_class=7).train_size() is None


def test_a_callers_arrays_are_taken_as_nhwc_uint8_or_refused_in_one_line():
    """`splits_from_arrays` (the library API): grey (N, H, W) images get their channel axis;
    what a researcher commonly hands over wrong is one `DataError` saying what to pass."""
    r = np.random.RandomState(0)
    x, y = r.randint(0, 256, (12, 8, 8, 3)).astype(np.uint8), np.arange(12) % 4
    s = source.splits_from_arrays((x[..., 0], y), (x[:4, ..., 0], y[:4]), name="grey")
    assert s.info.image_shape == (8, 8, 1) and s.info.num_classes == 4
    bad = [
        (((x / 255.0, y), (x, y)), r"train images: dtype float64, expected uint8 pixels 0\.\.255 "
                                   r"\(floats in \[0, 1\]: pass \(images \* 255\)"),
        (((x.transpose(0, 3, 1, 2), y), (x, y)), r"train images \(12, 3, 8, 8\) look "
                                                 r"channels-first.*np\.transpose\(images, "
                                                 r"\(0, 2, 3, 1\)\)"),
        (((x, np.eye(4)[y]), (x, y)), r"train: images \(12, 8, 8, 3\) and labels \(12, 4\)"),
        (((x, y), (x, y), (x[:, :4], y)), r"val images \(4, 8, 3\) differ from train images"),
        (((x, y), (x, y + 1)), r"test labels: 4 with num_classes=4; expected labels 0\.\.3"),
    ]
    for args, want in bad:
        with pytest.raises(data_lib.DataError, match=want):
            source.splits_from_arrays(*args, num_classes=4)
