"""The safety reviewer: what a candidate may change, checked before any of its code runs
(``reviewer``), and what its results may show, checked after it was scored (``results``).

``constitution`` is the rules file every generation inherits; ``code_check`` (Python, with
``ast``; ``names`` works out what each expression names), ``file_check`` (paths, links,
manifests, sizes, text) and ``bandit_check`` apply it; ``findings`` is what they all report.
"""

from progenitor.agents.safety.change import ChangedFile, ReviewInput
from progenitor.agents.safety.constitution import Constitution, load_constitution
from progenitor.agents.safety.findings import SEVERITIES, Finding, Severity
from progenitor.agents.safety.results import JUMP_FACTOR, check_after_training, check_guards, check_jump, drift
from progenitor.agents.safety.reviewer import (
    StaticReviewer,
    blocking,
    check_task,
    needs_human,
    review_candidate,
    sort_findings,
)

__all__ = [
    "JUMP_FACTOR",
    "SEVERITIES",
    "ChangedFile",
    "Constitution",
    "Finding",
    "ReviewInput",
    "StaticReviewer",
    "Severity",
    "blocking",
    "check_after_training",
    "check_guards",
    "check_jump",
    "check_task",
    "drift",
    "load_constitution",
    "needs_human",
    "review_candidate",
    "sort_findings",
]
