"""The IDX file format of MNIST and Fashion-MNIST: a reader and a writer.

An IDX file is a 4-byte magic number ``0 0 T D``, then ``D`` big-endian uint32 dimension
sizes, then the values in row-major order, big-endian, of the type coded by ``T``. Spec:
LeCun, Cortes and Burges, https://yann.lecun.com/exdb/mnist/ (bottom of the page). The files
are often gzip-compressed; :func:`read_idx` tells by the content, not by the file name.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

#: IDX type codes and the big-endian numpy dtypes they stand for.
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not, into an array of native byte order."""
    raw = Path(path).read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return parse_idx(raw, str(path))


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file; ``name`` goes into error messages."""
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{name} is not an IDX file (bad magic number {raw[:4]!r})")
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name} is truncated: its header needs {header} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{name} has {len(raw)} bytes but its header {shape} of {dtype} needs {expected}"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip it if ``compress`` (default: the name ends in .gz)."""
    path = Path(path)
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {list(codes)}")
    header = bytes([0, 0, codes[native], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(IDX_DTYPES[codes[native]]).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path
