"""The narrow channel out of the scoring sandbox: one raw ``.npy`` array, read by trusted code.

The file is the candidate's (its code ran in the process that wrote it), so it is read the
careful way: opened without following a link, its header parsed by the boundary's reader
(``boundary.arrays.read_header``: numpy's, bounded, no pickle, real numbers only), the shape
and size checked against what the host expects *before* any data is read, the file's length
held to exactly that, and then the values checked for NaN and infinities. A wrong file is a ``CandidateError`` in one sentence.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Optional

import numpy as np

from progenitor.boundary.arrays import read_header
from progenitor.errors import CandidateDataError, CandidateError

__all__ = ["read_outputs"]


def _header(f, name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    try:
        shape, fortran, dtype = read_header(f)  # the boundary's one reader: any bytes, a reason
    except CandidateDataError as exc:
        raise CandidateError(f"{name} is not a plain .npy array: {exc}") from None
    if fortran:
        raise CandidateError(f"{name} is in Fortran order; write a C-ordered array")
    return shape, dtype, f.tell()


def read_outputs(path: Path, rows: int, ndim: tuple[int, ...], max_bytes: int, name: str = "the outputs",
                 width: Optional[int] = None) -> np.ndarray:
    """The array at ``path``: ``rows`` first, one of ``ndim`` dimensions, numeric, finite, at most
    ``max_bytes``; ``width``: the size its second axis must have (a window's positions)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise CandidateError(f"the harness wrote no outputs ({name})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise CandidateError(f"{name} is not a regular file")
        shape, dtype, offset = _header(f, name)
        if len(shape) not in ndim or shape[0] != rows:
            raise CandidateError(f"{name} have shape {shape}; expected {rows} rows and {' or '.join(map(str, ndim))} "
                                 "dimensions")
        if width is not None and shape[1] != width:
            raise CandidateError(f"{name} have shape {shape}; expected {width} positions per window")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > max_bytes:
            raise CandidateError(f"{name} are {nbytes} bytes, more than the {max_bytes} allowed")
        if os.fstat(f.fileno()).st_size != offset + nbytes:
            raise CandidateError(f"{name}: the file's length does not match its header")
        array = np.frombuffer(f.read(nbytes), dtype=dtype).reshape(shape)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise CandidateError(f"{name} contain {bad} NaN or infinite values")
    return array
