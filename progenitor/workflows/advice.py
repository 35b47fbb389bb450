"""What to do next, told the same way by every surface: after a baseline that failed (fix,
commit, start a new run: a resume would replay the same commit), and after a finished run
(how to take its champion with plain git)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from progenitor.errors import UserError

NEW_RUN = "fix it, commit, and start a new run (a resume would replay the same commit and fail the same way)"


def baseline_failed(base: str, command: str, reason: str, log_tail: str = "") -> UserError:
    """The error of a run whose human baseline did not train: the command, why, what to do;
    the log's last lines as details."""
    return UserError(f"the human baseline (commit {base[:10]}) failed to train: {reason}; it ran train.command "
                     f"'{command}': {NEW_RUN}", details=_tail(log_tail))


def baseline_unscored(base: str, command: str, reason: str) -> UserError:
    """The error of a run whose scorer could not measure the baseline (``reason`` quotes what
    the scorer printed)."""
    return UserError(f"the human baseline (commit {base[:10]}) could not be scored: {reason}; the scorer ran "
                     f"scorer.command '{command}': {NEW_RUN}")


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join([line for line in text.strip().splitlines() if line.strip()][-lines:])


def take_champion(repo: str, run_id: str, champion: Optional[str]) -> list[str]:
    """The commands that take a finished run's champion into the user's branches (the run
    itself never moves them), or why there is nothing to take."""
    from progenitor.lineage import Lineage, base_ref, champion_ref

    if champion is None:
        return []
    try:
        base = Lineage(Path(repo)).resolve(base_ref(run_id))
    except UserError:
        base = None
    if base is not None and champion == base:
        return ["no candidate beat the baseline: the champion is the commit the run started from; nothing to take"]
    ref = champion_ref(run_id)
    return [f"take the champion into your branch: git -C {repo} merge {ref}",
            f"  or keep it on a branch of its own: git -C {repo} branch <name> {ref}",
            f"  or adopt it, recorded in the audit log: progenitor adopt {run_id} --repo {repo}"]
