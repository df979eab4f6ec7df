"""The deployable artifact: integer arrays + a JSON header, in one .npz file (no pickle).

File layout: an npz (zip) holding the integer arrays (int8 weights, int32 biases and shift
amounts, int32 input mean; with a periphery, int8 cell levels and programmed-cell masks of the
crossbar-faithful layers, `crimp_jax.integer.convert`) plus `__header__`, the UTF-8 JSON header as a uint8 array. The header
names the format and version, the engine program (`ops`), per-layer facts (bits, exponents,
accumulator widths) and the SHA-256 of the arrays (names, dtypes, shapes and bytes in sorted
order). `load_artifact` refuses a truncated, corrupt or tampered file with a ValueError.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "crimp_jax.integer-artifact"
VERSION = 2  # 2: steps read a list of inputs (`in`), ops of crimp_jax.graph.ops
HEADER_KEY = "__header__"
ALLOWED_DTYPES = (np.int8, np.int16, np.int32)


@dataclasses.dataclass
class Artifact:
    """header: JSON-able dict (see module docstring); arrays: {name: integer np.ndarray}."""

    header: dict
    arrays: dict

    @property
    def ops(self) -> list:
        return self.header["ops"]

    @property
    def output_exponent(self) -> int:
        """Logits = int32 engine output * 2^output_exponent."""
        return int(self.header["output_exponent"])


def arrays_digest(arrays: dict) -> str:
    """SHA-256 over (name, dtype, shape, bytes) of every array, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(a.dtype.str.encode())
        h.update(repr(tuple(a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _check_arrays(arrays: dict, where: str) -> None:
    for name, a in arrays.items():
        if name == HEADER_KEY or not isinstance(a, np.ndarray):
            raise ValueError(f"{where}: bad array entry {name!r}")
        if a.dtype.type not in ALLOWED_DTYPES:
            raise ValueError(f"{where}: array {name!r} has dtype {a.dtype}; integer artifacts "
                             f"hold only {[np.dtype(d).name for d in ALLOWED_DTYPES]}")


def save_artifact(artifact: Artifact, path: str) -> str:
    """Writes `artifact` to `path` (atomically, via a temporary file); returns the path."""
    _check_arrays(artifact.arrays, "save_artifact")
    header = dict(artifact.header, format=FORMAT, version=VERSION,
                  arrays_sha256=arrays_digest(artifact.arrays))
    blob = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{HEADER_KEY: blob}, **artifact.arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    artifact.header = header
    return path


def load_artifact(path: str) -> Artifact:
    """Reads and verifies an artifact; raises ValueError if it is truncated, corrupt, of another
    format or version, or if its arrays do not match the recorded SHA-256."""
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if HEADER_KEY not in names:
                raise ValueError("no header")
            header = json.loads(bytes(z[HEADER_KEY]).decode("utf-8"))
            arrays = {n: z[n] for n in names if n != HEADER_KEY}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError,
            UnicodeDecodeError) as e:
        raise ValueError(f"artifact {path}: unreadable (truncated or corrupt file): {e}") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"artifact {path}: format {header.get('format')!r}, expected {FORMAT!r}")
    if header.get("version") != VERSION:
        raise ValueError(f"artifact {path}: version {header.get('version')!r}; this engine "
                         f"reads version {VERSION}")
    _check_arrays(arrays, f"artifact {path}")
    digest = arrays_digest(arrays)
    if digest != header.get("arrays_sha256"):
        raise ValueError(f"artifact {path}: arrays SHA-256 {digest} does not match the header's "
                         f"{header.get('arrays_sha256')} (tampered or corrupt)")
    return Artifact(header, arrays)
