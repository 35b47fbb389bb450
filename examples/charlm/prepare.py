"""Write the charlm task's data. Trusted: progenitor runs this file from the base commit.

The corpus is text every Python installation ships: the standard library's own ``.py``
sources (its ``test`` package, ``idlelib`` and installed third-party packages left out). No
download, so the sandbox can stay offline. Files, not characters, are split, so that no file
straddles two splits: a file's split is fixed by the SHA-256 of its path inside the library,
which does not depend on the machine, the order of a directory listing or the other files.

  train       80% of the files  -- what a candidate trains on
  validation  10%               -- what a candidate may measure itself on (its own objective)
  holdout      5%               -- selection scores every candidate on it (hidden: its own label)
  test         5%               -- scored only for the baseline and each champion (hidden)

Characters become ids through a fixed vocabulary: the 95 printable ASCII characters, newline
and tab, and one id for everything else (a non-ASCII letter in a docstring, say).

Writes into --out:
  train.npy, validation.npy   uint8 token ids, visible to candidates
  holdout.npy, test.npy       uint8 token ids, never shown to a candidate
  vocab.json                  {"chars": "...", "other": 97}: id -> character

Usage: python prepare.py --out DATA_DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import string
import sysconfig
from pathlib import Path

import numpy as np

CHARS = "\n\t" + "".join(c for c in string.printable if c.isprintable())  # 97 characters
OTHER = len(CHARS)  # the id of every character outside CHARS
SPLITS = (("train", 80), ("validation", 90), ("holdout", 95), ("test", 100))  # cumulative percent of files
# Caps in characters: enough text for a minute of training, and holdout and test small enough
# that scoring one candidate takes seconds (200k characters move bits/char by ~0.005 at most).
CAPS = {"train": 4_000_000, "validation": 200_000, "holdout": 200_000, "test": 200_000}
PER_FILE = 20_000  # characters kept of one file: a few long modules cannot make a whole split
LEFT_OUT = ("test", "idlelib", "site-packages", "dist-packages", "__pycache__")


def library_files(root: Path) -> list[Path]:
    files = [p for p in root.rglob("*.py") if not set(p.relative_to(root).parts) & set(LEFT_OUT)]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def split_of(relative: str) -> str:
    bucket = int(hashlib.sha256(relative.encode()).hexdigest(), 16) % 100
    return next(name for name, upto in SPLITS if bucket < upto)


def encode(text: str) -> np.ndarray:
    table = np.full(0x110000, OTHER, dtype=np.uint8)
    table[[ord(c) for c in CHARS]] = np.arange(len(CHARS), dtype=np.uint8)
    return table[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory to write the splits into")
    args = parser.parse_args()
    root = Path(sysconfig.get_paths()["stdlib"])
    texts: dict[str, list[str]] = {name: [] for name, _ in SPLITS}
    sizes = dict.fromkeys(texts, 0)
    for path in library_files(root):
        name = split_of(path.relative_to(root).as_posix())
        if sizes[name] >= CAPS[name]:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")[:PER_FILE]
        texts[name].append(text)
        sizes[name] += len(text)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, parts in texts.items():
        tokens = encode("\n".join(parts))[: CAPS[name]]
        np.save(args.out / f"{name}.npy", tokens)
        print(f"{name}: {len(tokens)} characters from {len(parts)} files")
    (args.out / "vocab.json").write_text(json.dumps({"chars": CHARS, "other": OTHER}))


if __name__ == "__main__":
    main()
