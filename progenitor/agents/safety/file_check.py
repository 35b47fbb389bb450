"""The rules on files: what a candidate adds, how much it changes, what it names.

Reads both trees, runs nothing, follows no link (``tree_files``). Paths come from the
candidate's list of changes; symbolic links are also searched for in the whole candidate
tree, so a link the change list missed is still seen.

Three rules are built in, whatever the constitution says (like protected paths):

- ``git-path`` (critical): a path with a component git takes for its own ``.git``, in any
  case or alias (``.GIT``, ``.git.``, ``GIT~1``; ``tree_files.is_git_name``);
- ``symlink`` (critical): a link the candidate adds or retargets. The host (coder, config
  writer, reviewer) never follows one, and a promoted champion must not hold one for the
  next generation's tools to trip on; the constitution's ``symlinks`` entry only words the reason;
- ``dependency-change`` (medium, escalates): a changed dependency manifest
  (``progenitor.task.manifests``), which the next image build would resolve on the host: the
  candidate may run, but only a person may promote it.

The constitution's file patterns match case-insensitively (``*.SO`` is ``*.so``; on a
case-insensitive disk ``.GITmodules`` is ``.gitmodules``).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Optional

from progenitor.agents.base import ChangedFile
from progenitor.boundary import tree_files
from progenitor.boundary.walk import walk
from progenitor.candidate.findings import Finding
from progenitor.errors import UnsafePathError
from progenitor.task.constitution import Constitution, FileRule
from progenitor.task.manifests import is_manifest
from progenitor.task.spec import TaskSpec

SYMLINK_REASON = "a link is how a file reaches outside the candidate's tree"


def _because(reason: str) -> str:
    return f": {reason}" if reason else ""


def escapes(path: str) -> bool:
    """Is ``path`` absolute, or does it climb out of the tree with ``..``?"""
    pure = PurePosixPath(path)
    return pure.is_absolute() or ".." in pure.parts or path.startswith("\\")


def matches_file_rule(path: str, rule: FileRule) -> Optional[str]:
    """The first pattern of ``rule`` that ``path`` falls under (None: none)."""
    folded = path.casefold()
    parts = PurePosixPath(folded).parts
    for pattern in rule.patterns:
        glob = pattern.rstrip("/").casefold()
        if "/" in glob:
            if fnmatch.fnmatchcase(folded, glob):
                return pattern
        elif any(fnmatch.fnmatchcase(part, glob) for part in parts):
            return pattern
    return None


def _brings_content(change: ChangedFile) -> bool:
    return change.status != "D"


def check_paths(changed: list[ChangedFile]) -> list[Finding]:
    """Paths that leave the tree cannot be reviewed or exported safely."""
    return [
        Finding(rule="path-escape", severity="critical", file=path,
                message=f"the candidate names a path outside its tree ({path!r})")
        for change in changed
        for path in filter(None, {change.path, change.old_path})
        if escapes(path)
    ]


def check_git_paths(changed: list[ChangedFile]) -> list[Finding]:
    """Built in: no path of a candidate may reach into git's own files, in any spelling."""
    findings = []
    for change in changed:
        for path in filter(None, {change.path, change.old_path}):
            part = tree_files.git_component(path)
            if part is not None:
                findings.append(Finding(
                    rule="git-path", severity="critical", file=path,
                    message=f"the candidate names {path!r}, inside git's own files ({part!r})",
                ))
    return findings


def check_dependencies(changed: list[ChangedFile]) -> list[Finding]:
    """Built in: a changed dependency manifest escalates (policy never promotes it alone)."""
    findings = []
    for change in changed:
        for path in sorted(filter(None, {change.path, change.old_path})):
            if is_manifest(path):
                findings.append(Finding(
                    rule="dependency-change", severity="medium", file=path, escalate=True,
                    message=(f"the candidate changes the dependency manifest {path!r} ({change.status}); "
                             "an image built from it would install what it names, so a human must decide"),
                ))
                break
    return findings


def check_forbidden_files(changed: list[ChangedFile], constitution: Constitution) -> list[Finding]:
    findings = []
    for change in filter(_brings_content, changed):
        for rule in constitution.forbidden_files:
            pattern = matches_file_rule(change.path, rule)
            if pattern:
                findings.append(Finding(
                    rule="forbidden-file", severity=rule.severity, file=change.path,
                    message=(f"the candidate may not add or change {change.path!r} "
                             f"(matches {pattern!r}){_because(rule.reason)}"),
                ))
    return findings


def _links(tree: Path) -> dict[str, str]:
    """Every symbolic link under ``tree``: relative path -> target (links are not followed)."""
    found = {}
    for entry in walk(tree):  # iterative and bounded: a tree beyond the bounds is a CandidateDataError
        if stat.S_ISLNK(entry.st.st_mode):
            found[entry.rel] = os.readlink(entry.path)
    return found


def check_symlinks(base_tree: Path, candidate_tree: Path, constitution: Constitution) -> list[Finding]:
    """Built in: links the candidate adds or retargets anywhere in its tree (whether or not
    its change list names them). Always critical; the constitution's ``symlinks`` entry
    (kept so that older files still parse) only gives the reason."""
    reason = constitution.symlinks.reason if constitution.symlinks and constitution.symlinks.reason else SYMLINK_REASON
    base_links = _links(base_tree)
    new_links = {p: t for p, t in _links(candidate_tree).items() if base_links.get(p) != t}
    return [
        Finding(rule="symlink", severity="critical", file=path,
                message=f"the candidate adds a symbolic link {path!r} -> {target!r}{_because(reason)}")
        for path, target in sorted(new_links.items())
    ]


def _read(tree: Path, rel: str) -> bytes:
    """File content, or nothing for a missing file, a link or a path through one (a link's
    target is not ours to read)."""
    try:
        return tree_files.read_bytes(tree, rel)
    except (UnsafePathError, OSError):
        return b""


def _lines(data: bytes) -> Counter:
    if b"\0" in data:  # binary: it has bytes, not lines; the bytes limit covers it
        return Counter()
    return Counter(data.decode("utf-8", errors="replace").splitlines())


def diff_size(base_tree: Path, candidate_tree: Path, changed: list[ChangedFile]) -> tuple[int, int, int]:
    """(lines added + removed, files, bytes of new content). Lines are counted as a multiset
    difference per file: linear in the file size, exact for edits, and a moved line is free."""
    lines = new_bytes = 0
    for change in changed:
        old = b"" if change.status == "A" else _read(base_tree, change.old_path or change.path)
        new = b"" if change.status == "D" else _read(candidate_tree, change.path)
        a, b = _lines(old), _lines(new)
        lines += sum((a - b).values()) + sum((b - a).values())
        if change.status != "D" and new != old:
            new_bytes += len(new)
    return lines, len(changed), new_bytes


def check_diff_size(
    base_tree: Path, candidate_tree: Path, changed: list[ChangedFile], constitution: Constitution
) -> list[Finding]:
    limit = constitution.max_diff
    if limit is None:
        return []
    lines, files, size = diff_size(base_tree, candidate_tree, changed)
    over = []
    if limit.lines is not None and lines > limit.lines:
        over.append(f"{lines} lines changed (at most {limit.lines})")
    if limit.files is not None and files > limit.files:
        over.append(f"{files} files changed (at most {limit.files})")
    if limit.max_bytes is not None and size > limit.max_bytes:
        over.append(f"{size} bytes of new content (at most {limit.bytes})")
    if not over:
        return []
    return [Finding(rule="diff-size", severity=limit.severity,
                    message=f"the candidate is too large: {'; '.join(over)}{_because(limit.reason)}")]


def check_text(candidate_tree: Path, changed: list[ChangedFile], constitution: Constitution) -> list[Finding]:
    findings = []
    for change in filter(_brings_content, changed):
        data = _read(candidate_tree, change.path)
        text = data.decode("utf-8", errors="replace")
        for rule in constitution.forbidden_text:
            for needle in rule.strings:
                at = text.find(needle)
                if at >= 0:
                    findings.append(Finding(
                        rule="forbidden-text", severity=rule.severity, file=change.path,
                        line=text.count("\n", 0, at) + 1,
                        message=f"the candidate's file names {needle!r}{_because(rule.reason)}",
                    ))
    return findings


def check_required_guards(spec: TaskSpec, constitution: Constitution) -> list[Finding]:
    """Guards the constitution requires but the (base) spec does not declare."""
    rule = constitution.required_guards
    if rule is None:
        return []
    declared = {guard.metric for guard in spec.guards}
    return [
        Finding(rule="missing-guard", severity=rule.severity, file="progenitor.yaml",
                message=(f"the constitution requires a guard on metric {metric!r} but progenitor.yaml's "
                         f"'guards' has none{_because(rule.reason)}"))
        for metric in rule.metrics
        if metric not in declared
    ]
