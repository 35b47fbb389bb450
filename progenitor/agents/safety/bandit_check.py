"""Bandit on a candidate's changed Python files, its findings mapped to our severities.

Bandit parses the files (it never runs them). ``# nosec`` comments are ignored, because the
candidate wrote them, and no bandit configuration is read from the candidate's tree.

Bandit rates each issue with a severity and a confidence (LOW / MEDIUM / HIGH). Ours is:

=============  ==========  =============  ===========
bandit sev.    conf. LOW   conf. MEDIUM   conf. HIGH
=============  ==========  =============  ===========
LOW            info        info           low
MEDIUM         low         low            medium
HIGH           low         medium         high
=============  ==========  =============  ===========

Bandit never yields ``critical``: it is a generic heuristic, and critical is kept for the
rules a task's owner wrote down (the constitution) and for protected paths. With the default
``block_at: high`` only a high-severity, high-confidence bandit issue (``shell=True`` on a
subprocess, say) rejects a candidate; the rest is recorded in its note.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path

from progenitor.candidate.findings import Finding

SEVERITY_MAP: dict[tuple[str, str], str] = {
    ("LOW", "LOW"): "info", ("LOW", "MEDIUM"): "info", ("LOW", "HIGH"): "low",
    ("MEDIUM", "LOW"): "low", ("MEDIUM", "MEDIUM"): "low", ("MEDIUM", "HIGH"): "medium",
    ("HIGH", "LOW"): "low", ("HIGH", "MEDIUM"): "medium", ("HIGH", "HIGH"): "high",
}

# Bandit's manager keeps module-level state (extension loading, logging); one run at a time.
_LOCK = threading.Lock()


def map_severity(severity: str, confidence: str) -> str:
    """Bandit's (severity, confidence) -> ours; unknown ratings count as the lowest."""
    return SEVERITY_MAP.get((severity.upper(), confidence.upper()), "info")


def run_bandit(tree: Path, paths: list[str]) -> list[Finding]:
    """Bandit findings for ``paths`` (relative to ``tree``), with file and line."""
    if not paths:
        return []
    tree = Path(tree).resolve()
    targets = {str(tree / p): p for p in paths}
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # bandit's plugin loading (stevedore)
        from bandit.core import config, manager  # heavy: loads every bandit plugin

        logging.getLogger("bandit").setLevel(logging.ERROR)
        bm = manager.BanditManager(config.BanditConfig(), "file", quiet=True, ignore_nosec=True)
        bm.discover_files(list(targets))
        bm.run_tests()
        issues = bm.get_issue_list()
    findings = []
    for issue in issues:
        rel = targets.get(str(Path(issue.fname).resolve()), issue.fname)
        findings.append(Finding(
            rule=f"bandit-{issue.test_id}",
            severity=map_severity(issue.severity, issue.confidence),
            file=rel, line=issue.lineno,
            message=f"bandit {issue.test_id} ({issue.test}, severity {issue.severity.lower()}, "
                    f"confidence {issue.confidence.lower()}): {issue.text}",
        ))
    return findings
