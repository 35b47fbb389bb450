"""What ``data.visible`` lets a candidate see of what ``data.prepare`` wrote.

Two mistakes are caught here, in ``progenitor check`` and after prepare in every run: a
pattern that matches nothing (a typo: the candidate then misses a file it needs), and a
pattern that matches the labels (the sealed evaluation would be open). The labels are
``scorer.predictions.match``, the test split's ``data.test.labels`` and
``scorer.test.predictions.match``, and the files the scorer commands (holdout and test) name
from ``{data}`` that look like labels (``holdout_labels.npy``, ``test_targets.csv``).
"""

from __future__ import annotations

import re
from pathlib import Path

from progenitor.task.spec import TaskSpec

__all__ = ["label_files", "visible_matches"]

_DATA_FILE = re.compile(r"\{data\}/([^\s'\";|&)]+)")
_LABEL_WORDS = ("label", "target", "truth", "answer")


def label_files(spec: TaskSpec) -> list[str]:
    """Data files that hold what the scorers compare against: never for a candidate's eyes."""
    commands = [spec.scorer.command] + ([spec.scorer.test.command] if spec.scorer.test else [])
    named = [m.group(1) for command in commands for m in _DATA_FILE.finditer(command)]
    labels = [n for n in named if any(word in n.lower() for word in _LABEL_WORDS)]
    declared = [spec.scorer.predictions.match if spec.scorer.predictions else None,
                spec.data.test.labels if spec.data.test else None,
                spec.scorer.test.predictions.match if spec.scorer.test and spec.scorer.test.predictions else None,
                # A next-token model's holdout stream is its own label (``evaluate: model``).
                spec.predict.inputs if spec.predict and spec.predict.sequence else None]
    return list(dict.fromkeys([*[d for d in declared if d], *labels]))


def visible_matches(spec: TaskSpec, data: Path) -> tuple[list[Path], list[str]]:
    """(the files and directories the patterns match, one sentence per problem)."""
    matched: list[Path] = []
    problems = []
    labels = set(label_files(spec))
    written = sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) if data.is_dir() else []
    for pattern in spec.data.visible:
        items = [p for p in sorted(data.glob(pattern)) if not p.name.startswith(".") and not p.is_symlink()]
        if not items:
            problems.append(f"data.visible pattern {pattern!r} matches none of the files data.prepare wrote "
                            f"({', '.join(written[:8]) or 'none'}{', ...' if len(written) > 8 else ''})")
        for item in items:
            rel = str(item.relative_to(data))
            inside = [lab for lab in labels if lab == rel or lab.startswith(rel.rstrip("/") + "/")]
            if inside:
                problems.append(f"data.visible pattern {pattern!r} matches {inside[0]}, labels the "
                                "scorer compares against: candidates must never see them; narrow the pattern")
            elif item not in matched:
                matched.append(item)
    return matched, problems
