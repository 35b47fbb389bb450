"""Everything that can be checked before a run spends its budget, in one place.

- ``preflight``: the cheap checks (files only), at every ``progenitor run`` start, before
  data preparation: the first problem refuses the run as one ``UserError``; warnings (a
  baseline outside the search space) are returned for the run to announce.
- ``check_repo``: ``progenitor check DIR``: the same, plus every trusted command it can run:
  the prepare command (in a scratch directory), the visible patterns against what it wrote,
  and the scorer on a predictions file or on one baseline training, whose outputs the test
  split's scorer (``scorer.test``) then scores too. One ``Check`` line each.

Both look at the committed tree (what a run uses), never the working copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Optional

from progenitor.checks.static import (
    Check,
    check_baseline_values,
    check_constitution,
    check_placeholders,
    check_programs,
    check_resources,
    check_search_space,
    ok,
    problem,
)
from progenitor.checks.trees import CommitTree, DirTree, Tree
from progenitor.errors import ProgenitorError, UserError
from progenitor.task.spec import TaskSpec

__all__ = ["Check", "CommitTree", "DirTree", "Tree", "check_repo", "cheap_checks", "preflight"]


def cheap_checks(spec: TaskSpec, tree: Tree, executor: str = "ray", ray_address: Optional[str] = None) -> list[Check]:
    """The checks that read files only, in the order a person fixes things."""
    return [check_constitution(spec, tree), *check_search_space(spec, tree), check_baseline_values(spec, tree),
            check_placeholders(spec), *check_programs(spec, tree), check_resources(spec, executor, ray_address)]


def preflight(spec: TaskSpec, tree: Tree, executor: str = "ray", ray_address: Optional[str] = None) -> list[Check]:
    """Refuse a run that would waste its budget; returns the warnings it should announce."""
    checks = cheap_checks(spec, tree, executor, ray_address)
    problems = [c.detail for c in checks if c.status == "problem"]
    if len(problems) == 1:
        raise UserError(problems[0])
    if problems:
        raise UserError(f"{len(problems)} problems:" + "".join(f"\n  - {p}" for p in problems), problems=problems)
    return [c for c in checks if c.status == "warning"]


def check_repo(directory: Path, predictions: Optional[Path] = None, sandbox: Optional[str] = None,
               on_check: Optional[Callable[[Check], None]] = None) -> list[Check]:
    """Every check of ``progenitor check``; ``on_check`` sees each one as it is done."""
    results: list[Check] = []

    def report(*checks: Check) -> None:
        for check in checks:
            results.append(check)
            if on_check:
                on_check(check)

    spec, lineage, sha = _spec(directory, report)
    if spec is None:
        return results
    report(*cheap_checks(spec, CommitTree(lineage, sha)))
    train = not any(c.status == "problem" for c in results)  # a training on a broken task would be wasted
    _run_checks(spec, lineage, sha, predictions, sandbox, report, train)
    return results


def _spec(directory: Path, report):
    """The committed spec, or None after reporting why there is none."""
    from progenitor.lineage import Lineage
    from progenitor.task.spec import SPEC_FILE, load_spec, load_spec_text

    try:
        lineage = Lineage(Path(directory))
        working = load_spec(lineage.root)
        sha = lineage.head()
        text = lineage.show(sha, SPEC_FILE)
        if text is None:
            raise UserError(f"{SPEC_FILE} is not committed; commit it (runs read the committed task)")
        spec = load_spec_text(text, f"{SPEC_FILE} (commit {sha[:10]})")
    except UserError as exc:
        report(*(problem("spec", p) for p in exc.problems))  # every problem of the spec, one line each
        return None, None, None
    except ProgenitorError as exc:
        report(problem("spec", str(exc)))
        return None, None, None
    dirty = lineage.uncommitted()
    if working != spec or dirty:
        report(Check(name="spec", status="warning",
                     detail=f"{spec.name}: valid at commit {sha[:10]}, which is what these checks and a run use; "
                            f"uncommitted changes ({', '.join(dirty[:3])}{', ...' if len(dirty) > 3 else ''}) are not"))
    else:
        report(ok("spec", f"{spec.name}: {SPEC_FILE} valid at commit {sha[:10]}"))
    return spec, lineage, sha


def _run_checks(spec: TaskSpec, lineage, sha: str, predictions: Optional[Path], sandbox: Optional[str], report,
                train: bool) -> None:
    """prepare, visible and scorer, in a scratch directory removed afterwards; the scorer
    on a baseline training only when ``train`` (else on ``predictions``, or not at all)."""
    from progenitor.checks.live import BaselineTraining, check_prepare, check_scorer, check_visible, scratch_dir
    from progenitor.task.flags import train_command

    scratch = scratch_dir()
    try:
        os.chmod(scratch, 0o755)  # a sandboxed baseline runs as another uid and reads from here
        trusted, data, visible = scratch / "trusted", scratch / "data", scratch / "visible"
        lineage.export(sha, trusted)
        data.mkdir()
        prepared = check_prepare(spec, trusted, data)
        report(prepared)
        if prepared.status != "ok":
            report(_skipped("data.visible", "data.prepare failed"), *_scorers_skipped(spec, "data.prepare failed"))
            return
        seen = check_visible(spec, data)
        report(*seen)
        if any(c.status == "problem" for c in seen):
            report(*_scorers_skipped(spec, "data.visible needs fixing first"))
            return
        _copy_visible(spec, data, visible)
        training = None
        if predictions is None and not train:
            report(*_scorers_skipped(spec, "fix the problems above first (or pass --predictions FILE)"))
            return
        if predictions is None:
            try:
                backend, options = _backend(spec, sandbox, lineage.root)
            except ProgenitorError as exc:
                report(problem("scorer", f"not checked: the baseline cannot be trained here: {exc}"))
                return
            command, trouble = train_command(spec, lambda path: lineage.show(sha, path))
            if trouble:
                report(problem("scorer", f"not checked: the baseline cannot be trained: {trouble}"))
                return
            training = BaselineTraining(spec, lineage.archive(sha), visible, backend, options, command)
        report(*check_scorer(spec, trusted, data, scratch, predictions, training))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _skipped(name: str, why: str) -> Check:
    return Check(name=name, status="skipped", detail=f"not checked: {why}")


def _scorers_skipped(spec: TaskSpec, why: str) -> list[Check]:
    """The scorer, and the test split's scorer when the task has one."""
    return [_skipped("scorer", why)] + ([_skipped("scorer.test", why)] if spec.scorer.test is not None else [])


def _copy_visible(spec: TaskSpec, data: Path, visible: Path) -> None:
    from progenitor.evaluation.scorer import copy_visible
    from progenitor.evaluation.visible import visible_matches

    copy_visible(visible_matches(spec, data, contents=False)[0], data, visible)  # checked just before


def _backend(spec: TaskSpec, sandbox: Optional[str], repo_root: Path) -> tuple[str, dict]:
    """The sandbox a run would train the baseline in (as ``progenitor run`` resolves it)."""
    from progenitor.errors import SandboxError
    from progenitor.sandbox import resolve_backend

    name = sandbox or spec.sandbox.backend
    options: dict = {}
    if spec.sandbox.image:
        options = {"image": spec.sandbox.image}
    elif name != "process":
        from progenitor.sandbox.docker.images import task_image

        try:
            options = {"image": task_image(repo_root)}
        except SandboxError:
            if name == "docker":
                raise
    backend, _ = resolve_backend(name, **options)
    return backend, options if backend == "docker" else {}
