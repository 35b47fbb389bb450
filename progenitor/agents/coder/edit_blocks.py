"""Search/replace edit blocks: how the LLM coder writes a change, parsed and applied here.

    path/to/file.py
    <<<<<<< SEARCH
    lines copied exactly from the file
    =======
    the lines that replace them
    >>>>>>> REPLACE

All blocks of a reply are applied in memory first (``plan``); the tree is written only when
every one applies, so a reply that fails half way changes nothing. A block that does not
apply raises ``ReplyError`` with the exact reason (not found, found more than once, a
protected or documentation file, a path outside the tree), which the coder sends back to the
model.

The SEARCH text is found the way a careful person would find it: exactly first; then line by
line with trailing whitespace ignored; then with its indentation shifted as a whole (a block
quoted at the wrong depth), the replacement shifted alike. At each step a text found more
than once is refused as ambiguous, never guessed.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from progenitor.agents.repo_view import is_documentation
from progenitor.boundary import tree_files
from progenitor.errors import UnsafePathError
from progenitor.llm.replies import ReplyError
from progenitor.task.patterns import matches
from progenitor.task.spec import TaskSpec

__all__ = ["Edit", "parse_blocks", "plan"]

_START = re.compile(r"^\s*<{5,9} ?SEARCH\s*$")
_MIDDLE = re.compile(r"^\s*={5,9}\s*$")
_END = re.compile(r"^\s*>{5,9} ?REPLACE\s*$")
MAX_FILE_BYTES = 4 << 20
"""Most bytes of one file an edit block may change (a model edits source, not blobs)."""


class Edit(BaseModel):
    path: str
    search: str
    """Empty: the block creates the file."""
    replace: str


def _path_before(lines: list[str], start: int) -> str:
    """The path on the last non-blank line before a block: bare, in backticks or bold, after a
    markdown heading (``### train.py``) or a ``File:`` label, a trailing colon dropped."""
    for line in reversed(lines[:start]):
        text = line.strip()
        if not text or text.startswith("```"):
            continue
        text = text.lstrip("#").strip().strip("`*'\" ")
        for label in ("FILE:", "File:", "file:", "Path:", "path:"):
            text = text.removeprefix(label).strip()
        return text.rstrip(":").strip().strip("`*'\" ")
    return ""


def parse_blocks(text: str) -> list[Edit]:
    lines = text.splitlines()
    edits, i = [], 0
    while i < len(lines):
        if not _START.match(lines[i]):
            i += 1
            continue
        path = _path_before(lines, i)
        n = len(edits) + 1
        if not path:
            raise ReplyError(f"edit block {n} names no file: put its path on the line before <<<<<<< SEARCH")
        middle = next((j for j in range(i + 1, len(lines)) if _MIDDLE.match(lines[j])), None)
        if middle is None:
            raise ReplyError(f"edit block {n} ({path}) has no ======= line between SEARCH and REPLACE")
        end = next((j for j in range(middle + 1, len(lines)) if _END.match(lines[j])), None)
        if end is None:
            raise ReplyError(f"edit block {n} ({path}) does not end with >>>>>>> REPLACE")
        edits.append(Edit(path=path, search="\n".join(lines[i + 1:middle]), replace="\n".join(lines[middle + 1:end])))
        i = end + 1
    if not edits:
        raise ReplyError("the reply holds no edit blocks; write each change as a path line, then <<<<<<< SEARCH, "
                         "the old lines, =======, the new lines, >>>>>>> REPLACE")
    return edits


def _target(tree: Path, raw: str, spec: TaskSpec, n: int) -> tuple[str, Optional[str]]:
    """(the path, its current text or None): checked and read like every host-side access to a
    candidate's tree (``tree_files``: no link followed, no ``..``, no ``.git`` in any spelling)."""
    try:
        path = "/".join(tree_files.parts(raw.replace("\\", "/")))
        kind = tree_files.kind(tree, path)
        if kind not in (None, "file"):
            raise UnsafePathError(f"{path!r} is a {'link' if kind == 'link' else kind}; edit a regular file")
        current = tree_files.read_text(tree, path, limit=MAX_FILE_BYTES) if kind == "file" else None
    except UnsafePathError as exc:
        raise ReplyError(f"edit {n}: {exc}") from None
    except UnicodeDecodeError:
        raise ReplyError(f"edit {n}: {raw!r} is not UTF-8 text") from None
    if matches(path, spec.protected_paths):
        raise ReplyError(f"edit {n}: {path} is protected ({', '.join(spec.protected_paths)}); leave it as it is")
    if not spec.agents.edit_docs and is_documentation(path):
        raise ReplyError(f"edit {n}: {path} is documentation, which this task does not let agents change; "
                         "change the code only")
    return path, current


def _closest(current: str, search: str) -> str:
    lines = current.splitlines()
    first = next((line for line in search.splitlines() if line.strip()), "")
    near = difflib.get_close_matches(first, lines, n=1, cutoff=0.5)
    if not near:
        return ""
    return f" (its first line is closest to line {lines.index(near[0]) + 1}: {near[0].strip()!r})"


def _apply(current: str, edit: Edit, path: str, n: int) -> str:
    count = current.count(edit.search)
    if count > 1:
        raise ReplyError(f"edit {n}: the SEARCH text occurs {count} times in {path}; include more lines to make it unique")
    if count == 1:
        at = current.index(edit.search)
        after = at + len(edit.search)
        if not edit.replace and current[after:after + 1] == "\n":
            after += 1  # a deleted block takes its line ending with it
        return current[:at] + edit.replace + current[after:]
    for loose in (_trailing_space, _indentation):
        found = _match_lines(current, edit, loose)
        if len(found) > 1:
            raise ReplyError(f"edit {n}: the SEARCH text occurs {len(found)} times in {path} once {loose.__doc__}; "
                             "include more lines to make it unique")
        if found:
            return found[0]
    raise ReplyError(f"edit {n}: the SEARCH text does not occur in {path}{_closest(current, edit.search)}; "
                     "copy the lines exactly as they are in the file, whitespace included")


def _trailing_space(file_lines: list[str], search: list[str], replace: list[str]) -> Optional[list[str]]:
    """trailing whitespace is ignored"""
    if [line.rstrip() for line in file_lines] != [line.rstrip() for line in search]:
        return None
    return replace


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _indentation(file_lines: list[str], search: list[str], replace: list[str]) -> Optional[list[str]]:
    """its indentation is shifted as a whole"""
    firsts = [(f, s) for f, s in zip(file_lines, search) if s.strip()]
    if not firsts:
        return None
    file_first, search_first = firsts[0]
    ours, theirs = _indent(file_first), _indent(search_first)
    shifted = []
    for line in search:
        if line.strip() and not line.startswith(theirs):
            return None  # a line less indented than the first: no uniform shift
        shifted.append(_shift(line, theirs, ours))
    if [line.rstrip() for line in shifted] != [line.rstrip() for line in file_lines]:
        return None
    return [_shift(line, theirs, ours) for line in replace]


def _shift(line: str, theirs: str, ours: str) -> str:
    """``line`` moved from the model's indentation to the file's (a blank line stays blank)."""
    if not line.strip():
        return ""
    return ours + (line[len(theirs):] if line.startswith(theirs) else line.lstrip())


def _match_lines(current: str, edit: Edit, loose) -> list[str]:
    """Every way ``edit`` applies to ``current`` line by line under ``loose``: the new texts."""
    lines = current.split("\n")
    search = edit.search.split("\n")
    while search and not search[0].strip():
        search.pop(0)
    while search and not search[-1].strip():
        search.pop()
    replace = edit.replace.split("\n") if edit.replace else []
    if not search:
        return []
    found = []
    for at in range(len(lines) - len(search) + 1):
        new = loose(lines[at:at + len(search)], search, replace)
        if new is not None:
            found.append("\n".join(lines[:at] + new + lines[at + len(search):]))
    return found


def plan(tree: Path, edits: list[Edit], spec: TaskSpec, start: Optional[dict[str, str]] = None) -> dict[str, str]:
    """Every edited file's new text (path -> text), or ``ReplyError`` naming the first edit that
    fails. ``start``: files a change already rewrote (the edits apply to that text); they are in
    the result too."""
    tree = Path(tree).resolve()
    new: dict[str, str] = dict(start or {})
    for n, edit in enumerate(edits, 1):
        path, on_disk = _target(tree, edit.path, spec, n)
        exists = path in new or on_disk is not None
        current = new[path] if path in new else (on_disk or "")
        if not edit.search.strip():
            if exists and current.strip():
                raise ReplyError(f"edit {n}: the SEARCH part is empty but {path} exists; quote the lines to replace")
            new[path] = edit.replace.rstrip("\n") + "\n"
        else:
            if not exists:
                raise ReplyError(f"edit {n}: {path} does not exist; to create it, leave the SEARCH part empty")
            new[path] = _apply(current, edit, path, n)
    return new

