"""A candidate's predictions file, read as the contract says: one ``.npy`` array of real numbers.

``np.load`` decides what a file is from its bytes, not its name: a zip archive under the
``.npy`` name came back as an ``NpzFile`` (read outside the check's ``try``), and one with
millions of entries grew the driver to 1.5 GB while it listed them. Here the file is opened
without following a link and must be a regular file under ``MAX_BYTES``; its first bytes must be
the ``.npy`` magic (version 1 or 2), its header at most ``MAX_HEADER`` bytes; its dtype a plain
real number (bool, integer or float: no complex, timedelta, datetime, object, void, string or
structured dtype); and its size exactly what the header promises. Only then is it mapped (read
only, never loaded whole, never unpickled). Anything else is a ``CandidateDataError`` saying why.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from progenitor.errors import CandidateDataError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MAX_BYTES", "MAX_HEADER", "REAL_KINDS", "chunks", "read_array", "read_header"]

MAX_BYTES = 4 << 30
"""Largest predictions file mapped (the output cap is usually far smaller)."""
MAX_HEADER = 10_000
"""Longest ``.npy`` header read (numpy's own default)."""
REAL_KINDS = "biuf"
"""dtype kinds a prediction may have: bool, signed and unsigned integers, floats."""
_ZIP = b"PK\x03\x04"


def read_array(path: Path, max_bytes: int = MAX_BYTES) -> "np.ndarray":
    """The array in the ``.npy`` file at ``path``, memory-mapped read-only (see the module docstring)."""
    import numpy as np

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CandidateDataError(f"it cannot be opened ({exc.strerror or exc}; a link is never followed)") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise CandidateDataError("it is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if st.st_size > max_bytes:
            raise CandidateDataError(f"it is {st.st_size} bytes, over {max_bytes}")
        shape, fortran, dtype = read_header(handle)
        count = 1
        for n in shape:
            count *= n
        expected = count * dtype.itemsize
        offset = handle.tell()
        if st.st_size - offset != expected:
            raise CandidateDataError(f"its header promises {expected} bytes of data for shape {shape}, "
                                     f"the file holds {st.st_size - offset}")
        if count == 0:
            return np.empty(shape, dtype=dtype)
        return np.memmap(handle, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def read_header(handle) -> tuple[tuple[int, ...], bool, "np.dtype"]:
    """(shape, fortran order, dtype) from a ``.npy`` header, checked: ``CandidateDataError``
    whatever the bytes (numpy's reader alone raises four kinds of error, and more on a deep header)."""
    import numpy as np

    fmt = np.lib.format
    start = handle.read(len(fmt.MAGIC_PREFIX) + 2)
    if start.startswith(_ZIP):
        raise CandidateDataError("it is a zip archive (an .npz, say), not one .npy array")
    if not start.startswith(fmt.MAGIC_PREFIX) or len(start) < len(fmt.MAGIC_PREFIX) + 2:
        raise CandidateDataError("it is not a .npy array file (its first bytes are not numpy's magic)")
    version = (start[-2], start[-1])
    if version not in ((1, 0), (2, 0)):
        raise CandidateDataError(f"it is .npy format version {version[0]}.{version[1]} (1.0 and 2.0 are read)")
    reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    try:
        shape, fortran, dtype = reader(handle, max_header_size=MAX_HEADER)
    except Exception as exc:  # noqa: BLE001 - numpy's reader raises ValueError, SyntaxError, tokenize's TokenError...
        raise CandidateDataError(f"its .npy header cannot be read: {type(exc).__name__}: {str(exc)[:200]}") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in REAL_KINDS:
        raise CandidateDataError(f"its dtype {str(dtype)[:80]} is not a real number (bool, integer or float)")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise CandidateDataError(f"its shape {str(shape)[:80]} is not a shape")
    return tuple(shape), bool(fortran), dtype


def chunks(array: "np.ndarray", size: int = 1 << 20) -> Iterator["np.ndarray"]:
    """The array's values, flat, in pieces of ``size``: a check over a mapped file holds one piece
    in memory at a time."""
    flat = array.ravel(order="K")
    for start in range(0, flat.size, size):
        yield flat[start:start + size]
