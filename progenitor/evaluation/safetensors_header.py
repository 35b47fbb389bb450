"""The parameter count of a candidate's weights, read from the safetensors header alone.

A guard on ``params`` is only as good as the count behind it. The count is taken here, by
trusted code on the host, from the file the scoring sandbox hands the candidate's predict
function (nothing else of its outputs reaches that sandbox, so weights it does not count
cannot be used). No code runs and no library is needed: a safetensors file is an 8-byte
little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
and the raw bytes. Everything about it is the candidate's, so everything is bounded and
checked: the header's size, the number of tensors, each shape against its byte range, and
the byte ranges against the file (contiguous, in bounds, no overlap, no hole: bytes no tensor
claims are bytes no count sees). The free-form ``__metadata__`` is held to a few KiB, and the
scoring sandbox gets a copy without it (``tensors_only_copy``): what its predict function can
load is the tensors, and the tensors are what is counted.

A tensor counts its elements, except that each 4 bytes of data count as at least one
parameter: a float32 model packed into float64 (or int64) elements counts the same as itself.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

from pydantic import BaseModel

from progenitor.errors import CandidateError

__all__ = ["DTYPE_BYTES", "MAX_HEADER_BYTES", "MAX_METADATA_BYTES", "WeightsInfo", "read_header", "tensors_only_copy",
           "weights_info"]

MAX_HEADER_BYTES = 16 << 20
"""Largest JSON header read (a million tensors' worth; the reference library's own cap is larger)."""
MAX_TENSORS = 100_000
MAX_METADATA_BYTES = 4096
"""``__metadata__`` beyond this is refused: weights belong in tensors, where they are counted."""
MAX_DIMS = 16
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
               "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}
"""The dtypes of the safetensors format and the bytes of one element."""


class WeightsInfo(BaseModel):
    """What the headers of a candidate's weight files say, checked against the files."""

    params: int = 0
    """Elements of every tensor (each 4 bytes of data at least one)."""
    weights_bytes: int = 0
    """Bytes of tensor data."""
    tensors: int = 0


def read_header(path: Path) -> tuple[dict, int]:
    """(the JSON header, the size of the data section) of one safetensors file; a file that
    is not one is a ``CandidateError`` in one sentence."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        raw = f.read(8)
        if len(raw) < 8:
            raise CandidateError(f"{path.name} is not a safetensors file (shorter than its 8-byte header length)")
        (length,) = struct.unpack("<Q", raw)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise CandidateError(f"{path.name}: its header claims {length} bytes (the file has {size - 8} after the "
                                 f"length; at most {MAX_HEADER_BYTES} read)")
        text = f.read(length)
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CandidateError(f"{path.name}: its header is not JSON") from None
    if not isinstance(header, dict):
        raise CandidateError(f"{path.name}: its header is not a JSON object")
    return header, size - 8 - length


def _tensor(path: Path, name: str, entry: object) -> tuple[int, int, int, int]:
    """(elements, bytes, begin, end) of one header entry, checked."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise CandidateError(f"{path.name}: tensor {name[:80]!r} must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:  # a list is unhashable: a TypeError, once
        raise CandidateError(f"{path.name}: tensor {name[:80]!r} has unknown dtype {str(dtype)[:20]!r}")
    ints = lambda xs: isinstance(xs, list) and all(type(x) is int and x >= 0 for x in xs)  # noqa: E721
    if not ints(shape) or len(shape) > MAX_DIMS or not ints(offsets) or len(offsets) != 2:
        raise CandidateError(f"{path.name}: tensor {name[:80]!r} has a malformed shape or data_offsets")
    elements = math.prod(shape)
    begin, end = offsets
    if end - begin != elements * DTYPE_BYTES[dtype]:
        raise CandidateError(f"{path.name}: tensor {name[:80]!r} claims {end - begin} bytes for shape {shape} of {dtype}")
    return elements, end - begin, begin, end


def file_info(path: Path) -> WeightsInfo:
    """The checked count of one safetensors file."""
    header, data_bytes = read_header(path)
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise CandidateError(f"{path.name}: __metadata__ must map strings to strings")
        if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
            raise CandidateError(f"{path.name}: __metadata__ is larger than {MAX_METADATA_BYTES} bytes; weights belong "
                                 "in tensors, where they are counted")
    if len(header) > MAX_TENSORS:
        raise CandidateError(f"{path.name}: more than {MAX_TENSORS} tensors")
    info, ranges = WeightsInfo(tensors=len(header)), []
    for name, entry in header.items():
        elements, nbytes, begin, end = _tensor(path, name, entry)
        info.params += max(elements, nbytes // 4)
        info.weights_bytes += nbytes
        ranges.append((begin, end))
    at = 0
    for begin, end in sorted(ranges):
        if begin != at:
            raise CandidateError(f"{path.name}: its tensors' bytes overlap or leave a hole at byte {min(at, begin)}")
        at = end
    if at != data_bytes:
        raise CandidateError(f"{path.name}: {data_bytes - at} bytes of data belong to no tensor")
    return info


def weights_info(paths: list[Path]) -> WeightsInfo:
    """The count over every weight file of a candidate."""
    total = WeightsInfo()
    for path in paths:
        one = file_info(path)
        total = WeightsInfo(params=total.params + one.params, weights_bytes=total.weights_bytes + one.weights_bytes,
                            tensors=total.tensors + one.tensors)
    return total


def tensors_only_copy(source: Path, target: Path) -> None:
    """Copy a checked safetensors file without its ``__metadata__`` (the counted tensors only)."""
    file_info(source)  # refuses what does not hold together
    header, data_bytes = read_header(source)
    header.pop("__metadata__", None)
    text = json.dumps(header, separators=(",", ":")).encode()
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as src, open(target, "xb") as dst:
        (length,) = struct.unpack("<Q", src.read(8))
        src.seek(8 + length)
        dst.write(struct.pack("<Q", len(text)) + text)
        left = data_bytes
        while left:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                raise CandidateError(f"{source.name} changed while it was copied")
            dst.write(chunk)
            left -= len(chunk)
