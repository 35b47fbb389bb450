"""The static review: checks on a candidate's diff before any of its code runs.

Built in, whatever the constitution says: protected paths untouched, the constitution left
alone (a change to it is a ``constitution-change`` finding that only a human may accept), no
path into git's own files, no new symbolic link, and every dependency-manifest change
escalated (``file_check``). Then the constitution's rules on files and on Python code (the
import allow-list and the reach rules first, then the forbidden imports and calls), and
bandit. Python findings are the candidate's own: what its parent already had is dropped
(``baseline``) and shown once per run instead (``base_findings``). Every check reads the
*base* commit's spec and constitution, never the candidate's, so a candidate cannot relax
the rules it is judged by; no check follows a link in either tree. The checks after
training (self-report gap, capability jump, guards) are in ``evaluation.after_scoring``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath
from typing import Optional

from progenitor.agents.base import ChangedFile, ReviewInput
from progenitor.agents.safety import file_check as fc
from progenitor.agents.safety.allowlist import allow_list, local_modules, python_files
from progenitor.agents.safety.baseline import new_findings
from progenitor.agents.safety.code_check import check_python
from progenitor.boundary import tree_files
from progenitor.candidate.findings import Finding, sort_findings
from progenitor.errors import UnsafePathError
from progenitor.task.constitution import Constitution, load_constitution
from progenitor.task.patterns import matches
from progenitor.task.spec import TaskSpec

__all__ = ["StaticReviewer", "base_findings", "check_task", "review_candidate"]


def check_protected(inp: ReviewInput) -> list[Finding]:
    findings = []
    protected = inp.spec.protected_paths
    for change in inp.changed:
        for path in filter(None, {change.path, change.old_path}):
            if matches(path, protected):
                findings.append(Finding(
                    rule="protected-path", severity="critical", file=path,
                    message=f"the candidate changes protected path {path!r} ({change.status})",
                ))
    return findings


def check_constitution_change(inp: ReviewInput) -> list[Finding]:
    """A candidate that edits, moves or deletes the constitution: only a human may accept that."""
    name = inp.spec.safety.constitution
    if not name:
        return []
    name = Path(name).as_posix()
    return [
        Finding(rule="constitution-change", severity="critical", file=name, escalate=True,
                message=(f"the candidate changes the constitution {name!r} ({change.status}); "
                         "policy never accepts that, a human must decide"))
        for change in inp.changed
        if name in {change.path, change.old_path}
    ]


def _python_files(inp: ReviewInput) -> list[ChangedFile]:
    """Changed, regular .py files in the candidate's tree (a link's target is never read)."""
    files = []
    for change in inp.changed:
        if change.status == "D" or not change.path.endswith(".py") or fc.escapes(change.path):
            continue
        try:
            if tree_files.kind(inp.candidate_tree, change.path) == "file":
                files.append(change)
        except UnsafePathError:  # a .git path: the built-in git-path finding covers it
            continue
    return files


def parent_source(inp: ReviewInput, change: ChangedFile) -> Optional[bytes]:
    """The parent's version of a changed file (None: the candidate added it)."""
    if change.status == "A":
        return None
    old = change.old_path or change.path
    if inp.parent_files is not None:
        return inp.parent_files.get(old)
    try:
        return tree_files.read_bytes(inp.base_tree, old)
    except (UnsafePathError, OSError):
        return None


def check_code(inp: ReviewInput, constitution: Constitution, changes: list[ChangedFile],
               parents: dict[str, bytes]) -> list[Finding]:
    """The constitution's rules on each changed Python file, less what its parent already had."""
    allowed = allow_list(constitution, inp.base_tree)
    findings = []
    for change in changes:
        source = tree_files.read_bytes(inp.candidate_tree, change.path)
        local = allowed.with_local(local_modules(inp.candidate_tree, str(PurePosixPath(change.path).parent)
                                                 .strip("."))) if allowed else None
        found = check_python(source, change.path, constitution, local)
        if change.path in parents:
            before = check_python(parents[change.path], change.path, constitution, local)
            found = new_findings(found, before, source, parents[change.path])
        findings += found
    return findings


def check_bandit(inp: ReviewInput, changes: list[ChangedFile], parents: dict[str, bytes]) -> list[Finding]:
    """bandit on each changed Python file, less what its parent already had."""
    from progenitor.agents.safety.bandit_check import run_bandit

    found = run_bandit(inp.candidate_tree, [c.path for c in changes])
    if not parents:
        return found
    with tempfile.TemporaryDirectory(prefix="progenitor-parent-") as tmp:
        for path, source in parents.items():
            tree_files.write_bytes(tmp, path, source)
        before = run_bandit(Path(tmp), list(parents))
    kept = [f for f in found if f.file not in parents]
    for path, source in parents.items():
        mine = [f for f in found if f.file == path]
        kept += new_findings(mine, [f for f in before if f.file == path],
                             tree_files.read_bytes(inp.candidate_tree, path), source)
    return kept


def check_files(inp: ReviewInput, constitution: Constitution) -> list[Finding]:
    changed = [c for c in inp.changed if not fc.escapes(c.path) and not fc.escapes(c.old_path or "")]
    return [
        *fc.check_paths(inp.changed),
        *fc.check_git_paths(inp.changed),
        *fc.check_dependencies(changed),
        *fc.check_forbidden_files(changed, constitution),
        *fc.check_symlinks(inp.base_tree, inp.candidate_tree, constitution),
        *fc.check_diff_size(inp.base_tree, inp.candidate_tree, changed, constitution),
        *fc.check_text(inp.candidate_tree, changed, constitution),
    ]


def check_task(spec: TaskSpec, base_tree: Path) -> tuple[Constitution, list[Finding]]:
    """The base's constitution and the findings about the task itself (not about a candidate).

    Call it when a run starts so that a broken constitution is a ``UserError`` then, not in
    the middle of a generation."""
    constitution = load_constitution(base_tree, spec.safety.constitution)
    return constitution, fc.check_required_guards(spec, constitution)


def review_candidate(inp: ReviewInput) -> list[Finding]:
    """All static findings for one candidate, most severe first. Problems of the task itself
    (``check_task``) are not the candidate's: the run refuses to start on them."""
    constitution = inp.constitution or load_constitution(inp.base_tree, inp.spec.safety.constitution)
    findings = check_protected(inp)
    findings += check_constitution_change(inp)
    findings += check_files(inp, constitution)
    changes = _python_files(inp)
    parents = {c.path: source for c in changes if (source := parent_source(inp, c)) is not None}
    findings += check_code(inp, constitution, changes, parents)
    if inp.spec.safety.bandit:
        findings += check_bandit(inp, changes, parents)
    return sort_findings(findings)


def base_findings(spec: TaskSpec, base_tree: Path, constitution: Constitution) -> list[Finding]:
    """What the base commit's own Python already has (the rules and bandit): context shown once
    when a run starts, never a candidate's finding."""
    base_tree = Path(base_tree)
    allowed = allow_list(constitution, base_tree)
    paths = list(python_files(base_tree))
    findings = []
    for path in paths:
        local = allowed.with_local(local_modules(base_tree, str(PurePosixPath(path).parent).strip("."))) \
            if allowed else None
        try:
            findings += check_python(tree_files.read_bytes(base_tree, path), path, constitution, local)
        except (UnsafePathError, OSError):
            continue
    if spec.safety.bandit and paths:
        from progenitor.agents.safety.bandit_check import run_bandit

        findings += run_bandit(base_tree, paths)
    return sort_findings(findings)


class StaticReviewer:
    """The review every candidate gets, whatever other reviewers a task adds: the rules above,
    read from the base commit. It runs nothing and asks no model."""

    name = "static"

    def __init__(self, ctx: object = None):
        pass

    def review(self, change: ReviewInput) -> list[Finding]:
        return review_candidate(change)
