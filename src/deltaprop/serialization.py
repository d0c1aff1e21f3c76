"""Model files: safetensors tensors plus JSON metadata; never pickle, never code.

The metadata key ``deltaprop`` holds {"format_version", "kind", "network": {sizes,
activations, output, dtype}, ...}; tensors are ``weights.<h>`` (out × in) and ``biases.<h>``.
Objects other than a bare Network provide ``_model_file_payload()`` → (network, metadata)
and are rebuilt by the loader registered for their ``kind``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import ConfigError, DeltapropError, ModelFileError
from .network import Network

FORMAT_VERSION = 1
METADATA_KEY = "deltaprop"
CHECKSUM_KEY = "tensor_sha256"  # in the metadata: tensor_digest of the file's tensors
CHECKPOINT_KIND = "checkpoint"  # written by deltaprop.checkpoint; not a model file
MAX_HEADER = 100_000_000  # bytes; safetensors' own limit
PICKLE_PROTOCOLS = {bytes([p]) for p in range(2, 6)}
_LOADERS: dict[str, Callable[[Network, dict], object]] = {
    "network": lambda network, metadata: network
}


def register_kind(kind: str, loader: Callable[[Network, dict], object]) -> None:
    """Teach ``load`` to rebuild objects saved with metadata ``kind``."""
    _LOADERS[kind] = loader


def _safetensors():
    try:
        from safetensors import numpy as st_numpy
    except ImportError:
        raise ConfigError(
            "model files need the safetensors package; pip install 'deltaprop[files]'"
        ) from None
    return st_numpy


def save(model, path: str | os.PathLike, *, preprocessing: dict | None = None) -> Path:
    """Write ``model`` (a Network or a fitted estimator) to ``path`` atomically."""
    if isinstance(model, Network):
        network, metadata = model, {"kind": "network"}
    elif hasattr(model, "_model_file_payload"):
        network, metadata = model._model_file_payload()
    else:
        raise ConfigError(f"cannot save a {type(model).__name__}; save a Network or an estimator")
    metadata = {
        "format_version": FORMAT_VERSION,
        **metadata,
        "network": {
            "sizes": network.sizes,
            "activations": [a.name for a in network.activations],
            "output": network.output.name,
            "dtype": network.dtype.name,
        },
    }
    if preprocessing is not None:
        metadata["preprocessing"] = preprocessing
    tensors = {}
    for h, (W, b) in enumerate(zip(network.weights, network.biases)):
        tensors[f"weights.{h}"] = np.ascontiguousarray(W)
        tensors[f"biases.{h}"] = np.ascontiguousarray(b)
    path = Path(path)
    write_atomically(path, file_bytes(tensors, metadata))
    return path


def file_bytes(tensors: dict[str, np.ndarray], metadata: dict) -> bytes:
    """The safetensors file: the tensors, and the metadata with their SHA-256 added. Each
    tensor is made C-ordered little-endian first, as safetensors stores it, so the digest
    is of the bytes written (safetensors writes other layouts' raw memory)."""
    tensors = {
        name: np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        for name, array in tensors.items()
    }
    metadata = {**metadata, CHECKSUM_KEY: tensor_digest(tensors)}
    encoded = json.dumps(metadata, default=_plain)
    return _safetensors().save(tensors, metadata={METADATA_KEY: encoded})


def tensor_digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _plain(value):
    """NumPy scalars and arrays as plain JSON values."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} cannot be stored in model file metadata")


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it into place: readers see the
    old file or the new one, never a half-written one. The file keeps an existing file's
    permissions (new files get rw-r--r--, not mkstemp's private 0600)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    mode = path.stat().st_mode & 0o777 if path.is_file() else 0o644
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.chmod(temporary, mode)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike):
    """Read a model file written by ``save``; returns the Network or estimator."""
    return load_with_metadata(path)[0]


def load_with_metadata(path: str | os.PathLike) -> tuple[object, dict]:
    """The saved object and its metadata (architecture, preprocessing, training summary).

    Any defect of the file raises ``ModelFileError`` before anything is built from it.
    """
    tensors, metadata = _read(Path(path))
    if metadata.get("kind") == CHECKPOINT_KIND:
        raise CheckpointGiven(
            f"{path}: this is a training checkpoint, not a model file; use the model file "
            f"written by --out, or continue training with deltaprop train --resume {path}"
        )
    network = _build_network(tensors, metadata)
    kind = metadata.get("kind")
    if kind not in _LOADERS and kind in ("mlp_classifier", "mlp_regressor"):
        try:
            from . import estimators  # noqa: F401  (registers the estimator kinds)
        except ImportError as err:
            raise ConfigError(f"{path}: loading a {kind} needs {err}") from None
    if not isinstance(kind, str) or kind not in _LOADERS:
        raise ModelFileError(f"{path}: unknown model kind {kind!r}; is deltaprop up to date?")
    try:
        return _LOADERS[kind](network, metadata), metadata
    except ModelFileError as err:
        raise ModelFileError(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        problem = f"missing entry {err}" if isinstance(err, KeyError) else str(err)
        raise ModelFileError(
            f"{path}: metadata for a {kind} is incomplete or mangled ({problem})"
        ) from None


class CheckpointGiven(ModelFileError):
    """A training checkpoint was given where a model file is needed."""


def _read(path: Path) -> tuple[dict, dict]:
    st_numpy = _safetensors()
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    data = path.read_bytes()
    if len(data) < 8:
        raise ModelFileError(f"{path}: file is empty or truncated ({len(data)} bytes)")
    header_length = int.from_bytes(data[:8], "little")
    claimed_fits = header_length <= min(len(data) - 8, MAX_HEADER)
    safetensors = claimed_fits and data[8:9] == b"{"
    if not safetensors and data[:1] == b"\x80" and data[1:2] in PICKLE_PROTOCOLS:
        # a safetensors header length can start with these bytes too: only a file that
        # is no safetensors file is called a pickle
        raise ModelFileError(
            f"{path}: this is a pickle, not a deltaprop model file; deltaprop never loads "
            "pickles (they can run code). Save the model with deltaprop.save"
        )
    if not claimed_fits:
        raise ModelFileError(
            f"{path}: header claims {header_length} bytes but the file has {len(data)}; "
            "the file is truncated or not a deltaprop model file"
        )
    try:
        header = json.loads(data[8 : 8 + header_length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(
            f"{path}: the header is not valid JSON; not a deltaprop model file"
        ) from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the header is not a JSON object; not a model file")
    try:
        tensors = st_numpy.load(data)
    except Exception as err:  # safetensors raises its own error types for malformed files
        raise ModelFileError(f"{path}: tensor data is corrupted or truncated ({err})") from None
    strings = header.get("__metadata__")
    raw = strings.get(METADATA_KEY) if isinstance(strings, dict) else None
    if raw is None:
        raise ModelFileError(f"{path}: safetensors file without deltaprop metadata")
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: deltaprop metadata is not valid JSON") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: deltaprop metadata must be a JSON object")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: missing or invalid format_version in the metadata")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {version} is newer than this deltaprop reads "
            f"({FORMAT_VERSION}); upgrade deltaprop"
        )
    stored = metadata.pop(CHECKSUM_KEY, None)  # files written before 2026-12-04 have none
    if stored is not None and stored != tensor_digest(tensors):
        raise ModelFileError(
            f"{path}: the tensor data do not match the checksum stored with them; the file "
            "is damaged (changed or corrupted bytes): use another copy"
        )
    metadata["_path"] = str(path)
    return tensors, metadata


def _build_network(tensors: dict, metadata: dict) -> Network:
    """The network, built only after every stored tensor matched the architecture, so a
    mangled ``sizes`` can never make it allocate more than the file holds."""
    path = metadata.pop("_path")
    spec = metadata.get("network")
    if not isinstance(spec, dict) or not {"sizes", "activations", "output", "dtype"} <= set(spec):
        raise ModelFileError(
            f"{path}: the metadata lacks the architecture (sizes, activations, output, dtype)"
        )
    sizes = spec["sizes"]
    if not (
        isinstance(sizes, list)
        and len(sizes) >= 2
        and all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in sizes)
    ):
        raise ModelFileError(f"{path}: the architecture's sizes {sizes!r} are invalid")
    expected = {}
    for h, (fan_out, fan_in) in enumerate(zip(sizes[1:], sizes[:-1])):
        expected[f"weights.{h}"] = (fan_out, fan_in)
        expected[f"biases.{h}"] = (fan_out,)
    if set(tensors) != set(expected):
        raise ModelFileError(
            f"{path}: tensors {sorted(tensors)} do not match the architecture {sizes}"
        )
    for name, shape in expected.items():
        stored = tensors[name]
        if stored.shape != shape or stored.dtype.name != spec["dtype"]:
            raise ModelFileError(
                f"{path}: tensor {name} has shape {stored.shape} ({stored.dtype}) but the "
                f"architecture {sizes} needs {shape} ({spec['dtype']})"
            )
    try:
        network = Network(
            sizes, activation=spec["activations"], output=spec["output"], dtype=spec["dtype"]
        )
    except (TypeError, DeltapropError) as err:
        raise ModelFileError(
            f"{path}: the architecture in the metadata is invalid ({err})"
        ) from None
    for h, (W, b) in enumerate(zip(network.weights, network.biases)):
        W[...] = tensors[f"weights.{h}"]
        b[...] = tensors[f"biases.{h}"]
    if not np.isfinite(network.params).all():
        raise ModelFileError(f"{path}: the stored parameters contain NaN or infinity")
    return network
