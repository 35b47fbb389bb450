"""What a candidate changed, not what it inherited: findings the parent already had are dropped.

A model repo wrapped from upstream often has code that bandit or the static rules flag (an
``assert``, a ``pickle.load``, a ``subprocess`` call in a data script). Reported on every
candidate, those findings drown the one that matters, or reject every candidate for lines it
never touched. So each changed Python file is checked twice, as the candidate has it and as
its parent had it, and a candidate's finding is the parent's when both hold:

- the statement it sits on has no line the candidate added or changed (``added_lines``: a
  line diff of the two versions), and
- the parent has the same finding on the same statement text (same rule, severity and
  message), counted, so a second copy of a flagged line is new.

The second condition is what a plain diff-line filter lacks: a changed import elsewhere
(``import os as helpers``) changes what an untouched line does, and the message, which names
what the line resolves to, changes with it. bandit's own baseline (``-b``) matches issues by
file name and text alone, so it loses a renamed file, cannot attribute a duplicate to a line,
and does not cover the static rules; one mechanism serves both here. What the base already
had is shown once when a run starts (``base_findings`` in ``reviewer``).
"""

from __future__ import annotations

import ast
import difflib
from collections import Counter
from typing import Optional

from progenitor.candidate.findings import Finding

_EXACT_LINES = 400
"""The changed middle of a file (common head and tail aside) is diffed exactly up to this many
lines (old and new together); past it, with difflib's junk heuristic. Exactly, difflib's cost grows
with the cube of the lines when many repeat (blank lines, ``x = 1``): a candidate's 800 blank-ish
lines against its parent's took 32 s of the review, a 3,300-line rewrite 104 s. With the
heuristic, a line repeated in more than 1% of a file anchors nothing, so such lines count as the
candidate's: coarser, never kinder to it, and fast."""


def _lines(source: bytes) -> list[str]:
    return source.decode("utf-8", errors="replace").splitlines()


def added_lines(old: bytes, new: bytes) -> set[int]:
    """1-based numbers of the lines of ``new`` that are not lines of ``old`` kept in place."""
    a, b = _lines(old), _lines(new)
    head = 0
    while head < len(a) and head < len(b) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < len(a) - head and tail < len(b) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    a, b = a[head:len(a) - tail], b[head:len(b) - tail]  # an edit's changed middle: usually a few lines
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=len(a) + len(b) > _EXACT_LINES)
    added: set[int] = set()
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            added.update(range(head + j1 + 1, head + j2 + 1))
    return added


class Statements:
    """The statement around a line: a simple statement whole, a compound one by its header."""

    def __init__(self, source: bytes):
        self.lines = _lines(source)
        self.spans: list[tuple[int, int]] = []
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt):
                end = node.end_lineno or node.lineno
                body = getattr(node, "body", None)
                if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                    end = max(node.lineno, body[0].lineno - 1)
                self.spans.append((node.lineno, end))

    def span(self, line: Optional[int]) -> tuple[int, int]:
        if line is None:
            return (0, -1)
        around = [s for s in self.spans if s[0] <= line <= s[1]]
        return min(around, key=lambda s: s[1] - s[0]) if around else (line, line)

    def text(self, line: Optional[int]) -> str:
        first, last = self.span(line)
        return "\n".join(t.strip() for t in self.lines[max(first - 1, 0):last])


def _key(finding: Finding, statements: Statements) -> tuple:
    return finding.rule, finding.severity, finding.message, statements.text(finding.line)


def new_findings(found: list[Finding], before: list[Finding], source: bytes, parent: bytes) -> list[Finding]:
    """The findings of ``found`` (on ``source``) that are not the parent's (``before``, on ``parent``)."""
    now, then = Statements(source), Statements(parent)
    added = added_lines(parent, source)
    inherited = Counter(_key(f, then) for f in before)

    def touched(f: Finding) -> bool:
        first, last = now.span(f.line)
        return any(n in added for n in range(first, last + 1))

    kept = []
    for f in sorted(found, key=touched):  # untouched statements take the parent's findings first
        key = _key(f, now)
        if not touched(f) and inherited[key] > 0:
            inherited[key] -= 1
            continue
        kept.append(f)
    order = {id(f): i for i, f in enumerate(found)}
    return sorted(kept, key=lambda f: order[id(f)])
