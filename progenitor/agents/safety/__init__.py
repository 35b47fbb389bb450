"""The safety reviewer: what a candidate may change, checked before any of its code runs
(``reviewer``, and with a language model ``llm_reviewer``). What a candidate's results may show,
checked after it was scored, is ``progenitor.evaluation.after_scoring``.

The constitution (``progenitor.task.constitution``) is the rules file every generation inherits; ``code_check`` (Python, with
``ast``; ``names`` works out what each expression names), ``file_check`` (paths, links,
manifests, sizes, text) and ``bandit_check`` apply it; ``findings`` is what they all report.
"""

from progenitor.agents.base import ChangedFile, ReviewInput
from progenitor.agents.safety.reviewer import StaticReviewer, base_findings, check_task, review_candidate
from progenitor.candidate.findings import SEVERITIES, Finding, Severity, blocking, needs_human, sort_findings
from progenitor.task.constitution import Constitution, load_constitution

__all__ = [
    "SEVERITIES",
    "ChangedFile",
    "Constitution",
    "Finding",
    "ReviewInput",
    "StaticReviewer",
    "Severity",
    "base_findings",
    "blocking",
    "check_task",
    "load_constitution",
    "needs_human",
    "review_candidate",
    "sort_findings",
]
