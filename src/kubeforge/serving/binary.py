"""Raw tensor bytes of the Open Inference Protocol, shared by REST and gRPC.

The binary tensor data extension (REST) and gRPC's `raw_input_contents`/`raw_output_contents`
carry a tensor the same way: its elements in row-major order, little-endian, without padding;
BOOL as one byte (0 or 1); BYTES as a 4-byte little-endian length followed by that many bytes,
per element. This module turns such bytes into the arrays the JSON path builds (so both paths
predict the very same values) and arrays back into bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from kubeforge.errors import InputError

NUMERIC_DTYPES: dict[str, np.dtype[np.generic]] = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "BOOL": np.dtype("u1"),
}
_LENGTH = struct.Struct("<I")
_JSON_DTYPES = {"FP32": np.float64, "FP64": np.float64, "INT32": np.int64, "INT64": np.int64}


@dataclass(frozen=True)
class OutputTensor:
    """One output of an infer response: its name, datatype, shape and values (strings for BYTES)."""

    name: str
    datatype: str
    shape: list[int]
    values: np.ndarray


def decode_tensor(raw: bytes | memoryview, datatype: str, rows: int, path: str) -> np.ndarray:
    """The column a raw tensor of `rows` elements holds, typed as the JSON path types it.

    Floating point becomes float64, integers int64, BOOL and BYTES object arrays of bool and str;
    FP64 and INT64 are read-only views over `raw` (on a little-endian machine), not copies.
    """
    if datatype == "BYTES":
        return np.asarray(_decode_strings(raw, rows, path), dtype=object)
    dtype = NUMERIC_DTYPES[datatype]
    if len(raw) != rows * dtype.itemsize:
        raise InputError(
            f"{path}: {datatype} needs {dtype.itemsize} bytes per value, {rows * dtype.itemsize} for {rows} row(s), "
            f"but {len(raw)} bytes came; make the shape and the binary data agree"
        )
    values = np.frombuffer(raw, dtype=dtype)
    if datatype == "BOOL":
        if values.size and values.max() > 1:
            raise InputError(f"{path}: BOOL values must be bytes 0 or 1")
        return values.astype(bool).astype(object)
    return values.astype(_JSON_DTYPES[datatype], copy=False)  # FP64 and INT64: a read-only view, no copy


def _decode_strings(raw: bytes | memoryview, rows: int, path: str) -> list[str]:
    """Each element decoded once per distinct value (a categorical column repeats a few levels)."""
    data = bytes(raw)
    end = len(data)
    strings: list[str] = []
    decoded: dict[bytes, str] = {}
    unpack, append = _LENGTH.unpack_from, strings.append
    offset = 0
    while offset < end:
        if offset + 4 > end:
            raise InputError(f"{path}: BYTES element {len(strings)} is cut short in its 4-byte length prefix")
        (size,) = unpack(data, offset)
        start, offset = offset + 4, offset + 4 + size
        if offset > end:
            raise InputError(f"{path}: BYTES element {len(strings)} declares {size} bytes past the end of the data")
        piece = data[start:offset]
        text = decoded.get(piece)
        if text is None:
            try:
                text = decoded[piece] = piece.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{path}: BYTES element {len(strings)} is not valid UTF-8 text") from None
        append(text)
    if len(strings) != rows:
        raise InputError(f"{path}: the shape declares {rows} value(s) but the binary data holds {len(strings)}")
    return strings


def encode_tensor(tensor: OutputTensor) -> bytes:
    """The raw bytes of an output tensor."""
    if tensor.datatype == "BYTES":
        texts = list(map(str, tensor.values.ravel().tolist()))
        prefixed = {text: _prefixed(text.encode()) for text in set(texts)}  # each distinct value encoded once
        return b"".join(map(prefixed.__getitem__, texts))
    return np.ascontiguousarray(tensor.values, dtype=NUMERIC_DTYPES[tensor.datatype]).tobytes()


def _prefixed(item: bytes) -> bytes:
    return _LENGTH.pack(len(item)) + item


def json_values(tensor: OutputTensor) -> list[object]:
    """The flat list of an output tensor's values, as JSON carries them."""
    if tensor.datatype == "BYTES":
        return [str(value) for value in tensor.values]
    return list(tensor.values.ravel().tolist())


__all__ = ["NUMERIC_DTYPES", "OutputTensor", "decode_tensor", "encode_tensor", "json_values"]
