"""Whether what a candidate may read holds what it must not: visible files compared with hidden
ones by their *contents*, never their names.

A name says nothing about what a file holds: ``train.bin`` may end with the holdout's bytes, a
``val.npy`` may be a copy of the labels. So each file is cut into fingerprints that survive a
shift: a polynomial hash of every 512-byte window (rolling, so every byte offset is a window),
of which the windows whose hash falls in 1/64 of its range are kept (content-defined anchors:
the same bytes give the same anchors wherever they sit in a file). A visible file identical to
a hidden one, or holding at least half of a hidden file's fingerprints (alone, or the visible
files together), is a leak. Of a hidden ``.npy`` file only the array's bytes are compared (its
header says shape and type, which a copy inside a larger array does not share).

Windows are long on purpose: 512 bytes of labels of two classes stored as bytes are 2^512
possible strings, so two honest label files never share a window by chance, while a copy of
any part of the holdout longer than a few windows does. So a hidden file is compared whole
(identical files) from 64 bytes on, looked for whole inside visible files from 256 bytes on,
and by its fingerprints from two windows on; smaller, it could agree with honest data by chance.
Bytes are compared as they lie on disk: a copy inside a compressed archive (``.gz``, an
``.npz`` written by ``savez_compressed``) is not found; one inside a plain ``.npz`` or ``.tar`` is.
Hashing read 100 MB in 10.6 s on a 2-core machine busy with other work (a load of 14); only
what ``data.prepare`` wrote is read, once per run start and once per ``progenitor check``.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

__all__ = ["MIN_BYTES", "SHARE", "WINDOW", "fingerprints", "leaks", "payload_offset"]

WINDOW = 512
"""Bytes per fingerprinted window."""
SHARE = 0.5
"""The share of a hidden file's fingerprints whose presence in what candidates see is a leak."""
MIN_BYTES = 64
"""Hidden files smaller than this are not compared at all."""
MIN_WHOLE = 256
"""Hidden contents shorter than this are only compared as whole files (identical or not)."""
_KEEP = 1 << 58
"""A window is an anchor when its hash is below this (1/64 of the range)."""
_CHUNK = 1 << 20
_R = np.uint64(0x100000001B3)
_R_INV = np.uint64(pow(int(_R), -1, 1 << 64))


@functools.lru_cache(maxsize=None)
def _powers(base: int) -> np.ndarray:
    """``base ** i`` (mod 2^64) for every offset of a block."""
    powers = np.full(_CHUNK + WINDOW, base, dtype=np.uint64)
    powers[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(powers, dtype=np.uint64)


def _mix(h: np.ndarray) -> np.ndarray:
    """A 64-bit finaliser: every input bit moves the high bits, which pick the anchors."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xFF51AFD7ED558CCD)
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xC4CEB9FE1A85EC53)
        return h ^ (h >> np.uint64(33))


def _window_hashes(block: bytes) -> np.ndarray:
    """The hash of every WINDOW-byte window of ``block`` (``len(block) - WINDOW + 1`` of them)."""
    b = np.frombuffer(block, dtype=np.uint8).astype(np.uint64)
    n = len(b)
    with np.errstate(over="ignore"):
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(b * _powers(int(_R))[:n], dtype=np.uint64, out=prefix[1:])
        starts = n - WINDOW + 1
        # sum_{j<W} b[i+j] R^j == (prefix[i+W] - prefix[i]) * R^-i  (mod 2^64)
        return (prefix[WINDOW:WINDOW + starts] - prefix[:starts]) * _powers(int(_R_INV))[:starts]


def payload_offset(path: Path) -> int:
    """Where the contents worth comparing begin: after a ``.npy`` header, else at 0."""
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or not head.startswith(b"\x93NUMPY"):
        return 0
    if head[6] == 1:
        return 10 + int.from_bytes(head[8:10], "little")
    return 12 + int.from_bytes(head[8:12], "little")


def fingerprints(path: Path, start: int = 0) -> np.ndarray:
    """The sorted distinct anchor hashes of a file from byte ``start`` on (empty for less than a window)."""
    kept = []
    with open(path, "rb") as f:
        f.seek(start)
        tail = b""
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            block = tail + chunk
            if len(block) >= WINDOW:
                h = _window_hashes(block)
                kept.append(_mix(h[h < np.uint64(_KEEP)]))  # the high bits hang on every byte of the window
            tail = block[-(WINDOW - 1):]
    return np.unique(np.concatenate(kept)) if kept else np.empty(0, dtype=np.uint64)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _contains(path: Path, needle: bytes) -> bool:
    with open(path, "rb") as f:
        tail = b""
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            if needle in tail + chunk:
                return True
            tail = (tail + chunk)[-(len(needle) - 1):]
    return False


def leaks(visible: dict[str, Path], hidden: dict[str, Path]) -> list[str]:
    """One sentence per hidden file whose contents a visible one holds (names relative to
    ``{data}`` map to their paths); nothing when none does."""
    hidden = {name: path for name, path in hidden.items() if path.stat().st_size >= MIN_BYTES}
    if not hidden or not visible:
        return []
    problems = []
    digests = {name: _digest(path) for name, path in visible.items()}
    seen_fp = {name: fingerprints(path) for name, path in visible.items()}
    together = np.unique(np.concatenate(list(seen_fp.values()))) if seen_fp else np.empty(0, dtype=np.uint64)
    for name, path in sorted(hidden.items()):
        problem = _leak_of(name, path, visible, digests, seen_fp, together)
        if problem:
            problems.append(problem)
    return problems


def _leak_of(name: str, path: Path, visible: dict[str, Path], digests: dict[str, str],
             seen_fp: dict[str, np.ndarray], together: np.ndarray) -> str:
    """Why the visible files hold hidden ``name``, or ``""``."""
    digest = _digest(path)
    same = [v for v, d in digests.items() if d == digest]
    if same:
        return f"visible {same[0]} is identical to hidden {name}"
    start = payload_offset(path)
    size = path.stat().st_size - start
    if size < MIN_WHOLE:
        return ""
    if size < 2 * WINDOW:
        with open(path, "rb") as f:
            f.seek(start)
            whole = f.read()
        holder = next((v for v, p in visible.items() if p.stat().st_size >= size and _contains(p, whole)), None)
        return f"visible {holder} contains the whole of hidden {name}" if holder else ""
    mine = fingerprints(path, start)
    if len(mine) == 0:
        return ""
    shares = {v: float(np.isin(mine, fp, assume_unique=True).mean()) for v, fp in seen_fp.items() if len(fp)}
    best = max(shares, key=shares.get, default=None)
    if best is not None and shares[best] >= SHARE:
        return f"visible {best} holds {shares[best]:.0%} of the blocks of hidden {name}"
    overall = float(np.isin(mine, together, assume_unique=True).mean()) if len(together) else 0.0
    if overall >= SHARE:
        return f"the visible files together hold {overall:.0%} of the blocks of hidden {name}"
    return ""
