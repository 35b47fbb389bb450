"""What ``data.visible`` lets a candidate see of what ``data.prepare`` wrote, and what it must not.

Caught here, in ``progenitor check`` and after prepare in every run (which refuses to start):

- a visible pattern that matches nothing (a typo: the candidate then misses a file it needs);
- a visible pattern that matches a hidden file, by name. Hidden are the labels (the files the
  spec declares as such: ``scorer.predictions.match``, ``data.test.labels``,
  ``scorer.test.predictions.match``; and those the scorer commands name from ``{data}`` that
  look like labels: ``holdout_labels.npy``, ``test_targets.csv``), every other file a scorer
  command names from ``{data}`` (``{data}/holdout.bin``: the holdout the scorer compares
  against) unless its name says it holds inputs or ``data.visible`` names it exactly, and what
  ``data.hidden`` matches (a pattern of it that matches nothing is a typo too);
- a visible file that holds a hidden one's *contents*, whatever its name: identical, or holding
  a large share of its blocks (``evaluation/leaks.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

from progenitor.task.spec import TaskSpec

__all__ = ["hidden_files", "label_files", "visible_matches"]

_DATA_FILE = re.compile(r"\{data\}/([^\s'\";|&)]+)")
_LABEL_WORDS = ("label", "target", "truth", "answer")
_INPUT_WORDS = ("input",)


def _scorer_commands(spec: TaskSpec) -> list[str]:
    return [spec.scorer.command] + ([spec.scorer.test.command] if spec.scorer.test else [])


def label_files(spec: TaskSpec) -> list[str]:
    """Data files that hold what the scorers compare against: never for a candidate's eyes."""
    named = [m.group(1) for command in _scorer_commands(spec) for m in _DATA_FILE.finditer(command)]
    labels = [n for n in named if any(word in n.lower() for word in _LABEL_WORDS)]
    declared = [spec.scorer.predictions.match if spec.scorer.predictions else None,
                spec.data.test.labels if spec.data.test else None,
                spec.scorer.test.predictions.match if spec.scorer.test and spec.scorer.test.predictions else None,
                # A next-token model's holdout stream is its own label (``evaluate: model``).
                spec.predict.inputs if spec.predict and spec.predict.sequence else None]
    return list(dict.fromkeys([*[d for d in declared if d], *labels]))


def _files_under(item: Path) -> list[Path]:
    """``item`` itself, or every file below it (links not followed, none kept)."""
    if item.is_symlink():
        return []
    if item.is_file():
        return [item]
    return sorted(p for p in item.rglob("*") if p.is_file() and not p.is_symlink())


def hidden_files(spec: TaskSpec, data: Path) -> dict[str, str]:
    """Every file in ``data`` no candidate may see, relative, with why (a phrase)."""
    hidden: dict[str, str] = {}

    def add(item: Path, why: str) -> None:
        for path in _files_under(item):
            hidden.setdefault(path.relative_to(data).as_posix(), why)

    for name in label_files(spec):
        add(data / name, "labels the scorer compares against")
    exact = set(spec.data.visible)
    for command in _scorer_commands(spec):
        for match in _DATA_FILE.finditer(command):
            name = match.group(1)
            if name not in exact and not any(word in name.lower() for word in _INPUT_WORDS):
                add(data / name, "a file the scorer reads from {data}")
    for pattern in spec.data.hidden:
        for item in sorted(data.glob(pattern)):
            add(item, f"data.hidden pattern {pattern!r}")
    return hidden


def visible_matches(spec: TaskSpec, data: Path, contents: bool = True) -> tuple[list[Path], list[str]]:
    """(the files and directories the visible patterns match, one sentence per problem);
    ``contents``: compare what they hold with every hidden file too."""
    matched: list[Path] = []
    problems = []
    hidden = hidden_files(spec, data) if data.is_dir() else {}
    written = sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) if data.is_dir() else []
    shown = f"({', '.join(written[:8]) or 'none'}{', ...' if len(written) > 8 else ''})"
    for pattern in spec.data.hidden:
        if not list(data.glob(pattern)):
            problems.append(f"data.hidden pattern {pattern!r} matches none of the files data.prepare wrote {shown}")
    for pattern in spec.data.visible:
        items = [p for p in sorted(data.glob(pattern)) if not p.name.startswith(".") and not p.is_symlink()]
        if not items:
            problems.append(f"data.visible pattern {pattern!r} matches none of the files data.prepare wrote {shown}")
        for item in items:
            inside = [rel for rel in (p.relative_to(data).as_posix() for p in _files_under(item)) if rel in hidden]
            if inside:
                problems.append(f"data.visible pattern {pattern!r} matches {inside[0]} ({hidden[inside[0]]}): "
                                "candidates must never see it; narrow the pattern")
            elif item not in matched:
                matched.append(item)
    if contents and not problems:
        problems += _content_problems(data, matched, hidden)
    return matched, problems


def _content_problems(data: Path, matched: list[Path], hidden: dict[str, str]) -> list[str]:
    from progenitor.evaluation.leaks import leaks

    seen = {p.relative_to(data).as_posix(): p for item in matched for p in _files_under(item)}
    kept = {name: data / name for name in hidden}
    return [f"{leak}: a candidate would read what it must not; make data.prepare keep them apart"
            for leak in leaks(seen, kept)]
