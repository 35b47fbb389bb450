"""The safety reviewer: static checks on a candidate's diff before any of its code runs,
and the checks after it was trained and scored.

Before it runs (``review_candidate``): protected paths untouched, the constitution left alone
(a change to it is a ``constitution-change`` finding that only a human may accept), the
constitution's rules on files and on Python code, and bandit. Every check reads the *base*
commit's spec and constitution, never the candidate's, so a candidate cannot relax the
rules it is judged by.

After it ran (``check_after_training``, ``check_guards``): the gap between what it printed
about itself and what the scorer measured, an implausible jump in the objective, and the
guard metrics that must hold for it to be promoted.
"""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel

from progenitor.agents import file_check as fc
from progenitor.agents.code_check import check_python
from progenitor.agents.constitution import Constitution, load_constitution
from progenitor.agents.findings import SEVERITIES, Finding, Severity, dedupe, most_severe_first
from progenitor.spec import Guard, TaskSpec

__all__ = [
    "SEVERITIES",
    "ChangedFile",
    "Finding",
    "ReviewInput",
    "Severity",
    "blocking",
    "check_after_training",
    "check_guards",
    "check_task",
    "needs_human",
    "review_candidate",
]

JUMP_FACTOR = 3.0
"""An improvement more than this many times the lineage's largest past one is a possible capability jump."""


class ChangedFile(BaseModel):
    path: str
    """Path in the candidate's tree (for a rename: the new path)."""
    status: Literal["A", "M", "D", "R", "T"]
    old_path: Optional[str] = None


class ReviewInput(BaseModel):
    spec: TaskSpec
    """The base commit's spec."""
    base_tree: Path
    """Trusted export of the base commit."""
    candidate_tree: Path
    """The candidate's tree (read only: never executed here)."""
    changed: list[ChangedFile]
    constitution: Optional[Constitution] = None
    """The base's constitution, loaded once per run (None: loaded from ``base_tree`` here)."""


def matches(path: str, patterns: list[str]) -> bool:
    """Does ``path`` fall under any protected pattern (a glob, a file, or a directory)?"""
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path == pattern or path.startswith(pattern + "/"):
            return True
    return False


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


def _python_files(inp: ReviewInput) -> list[str]:
    """Changed, regular .py files in the candidate's tree (a link's target is never read)."""
    files = []
    for change in inp.changed:
        full = inp.candidate_tree / change.path
        if (change.status != "D" and change.path.endswith(".py") and not fc.escapes(change.path)
                and not full.is_symlink() and full.is_file()):
            files.append(change.path)
    return files


def check_code(inp: ReviewInput, constitution: Constitution) -> list[Finding]:
    findings = []
    for path in _python_files(inp):
        findings += check_python((inp.candidate_tree / path).read_bytes(), path, constitution)
    return findings


def check_files(inp: ReviewInput, constitution: Constitution) -> list[Finding]:
    changed = [c for c in inp.changed if not fc.escapes(c.path) and not fc.escapes(c.old_path or "")]
    return [
        *fc.check_paths(inp.changed),
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
    findings += check_code(inp, constitution)
    if inp.spec.safety.bandit:
        from progenitor.agents.bandit_check import run_bandit

        findings += run_bandit(inp.candidate_tree, _python_files(inp))
    return most_severe_first(dedupe(findings))


def blocking(findings: list[Finding], block_at: str) -> list[Finding]:
    """The findings that reject the candidate."""
    return [f for f in findings if f.at_least(block_at)]


def needs_human(findings: list[Finding]) -> bool:
    """Must a person decide (a constitution change, a possible capability jump)?"""
    return any(f.escalate for f in findings)


def _gain(goal: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` (negative: worse)."""
    return new - old if goal == "maximize" else old - new


def check_jump(spec: TaskSpec, value: float, history: list[float], factor: float = JUMP_FACTOR) -> list[Finding]:
    """A gain over the champion (``history[-1]``) larger than the lineage makes plausible.

    ``history`` is the champion's objective after each generation so far, oldest first. The
    gain is implausible when it exceeds ``oversight.max_jump``, or ``factor`` times the
    largest gain between consecutive champions (once there is at least one past gain)."""
    goal, metric = spec.objective.goal, spec.objective.metric
    if not history or not math.isfinite(value) or not math.isfinite(history[-1]):
        return []
    gain = _gain(goal, value, history[-1])
    past = [_gain(goal, b, a) for a, b in zip(history, history[1:])]
    past = [g for g in past if math.isfinite(g) and g > 0]
    reasons = []
    if spec.oversight.max_jump is not None and gain > spec.oversight.max_jump:
        reasons.append(f"more than oversight.max_jump ({spec.oversight.max_jump:.4g})")
    if past and gain > max(factor * max(past), spec.objective.min_delta):
        reasons.append(f"more than {factor:g} times the lineage's largest past gain ({max(past):.4g})")
    if not reasons:
        return []
    return [Finding(
        rule="capability-jump", severity="high", escalate=True,
        message=(f"{metric} improves by {gain:.4g} over the champion ({history[-1]:.4g} -> {value:.4g}), "
                 f"{' and '.join(reasons)}: a possible capability jump for a human to review"),
    )]


def check_after_training(
    spec: TaskSpec,
    self_reported: dict[str, float],
    measured: dict[str, float],
    history: list[float],
) -> list[Finding]:
    """Findings once a candidate is scored: self-report gaps and implausible jumps.

    ``history``: the champion's objective after each generation so far, oldest first
    (the last one is the champion this candidate is compared with)."""
    findings = []
    metric = spec.objective.metric
    if metric in self_reported and metric in measured:
        gap = abs(self_reported[metric] - measured[metric])
        if not gap <= spec.scorer.self_report_gap:  # a NaN gap is a gap too
            findings.append(Finding(
                rule="self-report-gap", severity="medium",
                message=(f"the candidate printed {metric}={self_reported[metric]:.4g} but the scorer "
                         f"measured {measured[metric]:.4g} (gap {gap:.3g})"),
            ))
    if metric in measured:
        findings += check_jump(spec, measured[metric], history)
    return findings


def _guard(guard: Guard, value: Optional[float], champion: Optional[float]) -> Optional[str]:
    """Why ``value`` breaks ``guard`` (None: it holds)."""
    if value is None:
        return "the scorer did not report it"
    if not math.isfinite(value):
        return f"the scorer measured {value}"
    if guard.min is not None and value < guard.min:
        return f"{value:.4g} is below its minimum {guard.min:.4g}"
    if guard.max is not None and value > guard.max:
        return f"{value:.4g} is above its maximum {guard.max:.4g}"
    if guard.max_regression is not None and champion is not None and math.isfinite(champion):
        loss = -_gain(guard.goal, value, champion)
        if loss > guard.max_regression:
            return (f"{value:.4g} regresses by {loss:.4g} from the champion's {champion:.4g} "
                    f"(at most {guard.max_regression:.4g} allowed)")
    return None


def check_guards(spec: TaskSpec, measured: dict[str, float], champion_metrics: dict[str, float]) -> list[Finding]:
    """One finding per broken guard; a candidate with any is not promoted, whatever its objective."""
    findings = []
    for guard in spec.guards:
        why = _guard(guard, measured.get(guard.metric), champion_metrics.get(guard.metric))
        if why:
            findings.append(Finding(rule="guard", severity="high",
                                    message=f"guard on {guard.metric!r} broken: {why}"))
    return findings
