"""Artifact file: save/load round trip; truncated, tampered or foreign files are refused."""

import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crimp_jax.graph import fold_params
from crimp_jax.integer import convert, load_artifact, make_engine, save_artifact
from crimp_jax.integer.artifact import HEADER_KEY
from crimp_jax.models import build_network
from crimp_jax.quant import init_quant_state
from crimp_jax.utils.paths import flatten, unflatten

CFG = dict(weight_bits=4, act_bits=4)


@pytest.fixture(scope="module")
def artifact_file(tmp_path_factory):
    net = build_network("tiny_cnn")
    model = net.graph
    x = jnp.asarray(np.random.RandomState(0).randint(0, 256, (4, 32, 32, 3)), jnp.uint8)
    rng = np.random.RandomState(0)
    shapes = flatten(jax.eval_shape(lambda v: fold_params(model, v["params"], v["batch_stats"]),
                                    net.abstract_variables()))
    params = unflatten({p: jnp.asarray(0.1 * rng.randn(*a.shape), jnp.float32)
                        for p, a in shapes.items()})
    q = init_quant_state(model, params, x, CFG)
    art = convert(model, params, q, CFG, model_name="tiny_cnn")
    path = str(tmp_path_factory.mktemp("art") / "tiny.npz")
    save_artifact(art, path)
    return art, path, x


def test_round_trip(artifact_file):
    art, path, x = artifact_file
    loaded = load_artifact(path)
    assert loaded.header == json.loads(json.dumps(art.header))
    assert loaded.header["format"] == "crimp_jax.integer-artifact" and loaded.header["version"] == 2
    assert sorted(loaded.arrays) == sorted(art.arrays)
    for name, a in art.arrays.items():
        assert loaded.arrays[name].dtype == a.dtype
        np.testing.assert_array_equal(loaded.arrays[name], a)
    weights = [op["w"] for op in loaded.ops if op["op"] in ("conv", "dense")]
    assert {loaded.arrays[w].dtype for w in weights} == {np.dtype(np.int8)}
    assert {loaded.arrays[op["b"]].dtype for op in loaded.ops if "b" in op} == {np.dtype(np.int32)}
    np.testing.assert_array_equal(make_engine(loaded)(x), make_engine(art)(x))


def test_truncated_file_refused(artifact_file, tmp_path):
    _, path, _ = artifact_file
    data = open(path, "rb").read()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_artifact(str(bad))


def test_flipped_byte_refused(artifact_file, tmp_path):
    _, path, _ = artifact_file
    data = bytearray(open(path, "rb").read())
    data[len(data) // 3] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="artifact"):
        load_artifact(str(bad))


def _rewrite(path, out, header_fn=lambda h: h, arrays_fn=lambda a: a):
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(bytes(z[HEADER_KEY]).decode())
        arrays = {n: z[n] for n in z.files if n != HEADER_KEY}
    header, arrays = header_fn(header), arrays_fn(arrays)
    blob = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(out, **{HEADER_KEY: blob}, **arrays)
    return str(out)


def test_tampered_weights_refused(artifact_file, tmp_path):
    _, path, _ = artifact_file

    def tamper(arrays):
        w = next(n for n in sorted(arrays) if n.endswith(".w"))
        arrays[w] = arrays[w].copy()
        arrays[w].flat[0] += 1
        return arrays

    bad = _rewrite(path, tmp_path / "tampered.npz", arrays_fn=tamper)
    with pytest.raises(ValueError, match="SHA-256 .* does not match"):
        load_artifact(bad)
    # the untouched rewrite loads: the refusal above is due to the tampering
    load_artifact(_rewrite(path, tmp_path / "same.npz"))


def test_foreign_format_and_version_refused(artifact_file, tmp_path):
    _, path, _ = artifact_file
    for version in (1, 3):  # 1: the format before steps read lists of inputs
        bad = _rewrite(path, tmp_path / f"v{version}.npz",
                       header_fn=lambda h: dict(h, version=version))
        with pytest.raises(ValueError, match=f"version {version}"):
            load_artifact(bad)
    bad = _rewrite(path, tmp_path / "other.npz", header_fn=lambda h: dict(h, format="other"))
    with pytest.raises(ValueError, match="format 'other'"):
        load_artifact(bad)
    with zipfile.ZipFile(tmp_path / "noheader.npz", "w") as z:
        z.writestr("a.npy", b"")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_artifact(str(tmp_path / "noheader.npz"))
