"""The lineage in git: candidates as commits on their own refs, records as git notes, temporary
worktrees (``git``), a run's lineage read back (``records``), and ``progenitor init``'s fresh
repos and templates (``scaffold``)."""

from progenitor.candidate.keys import IDENTITY, base_ref, champion_ref
from progenitor.lineage.git import NOTES_REF, Lineage, git_reason, open_repo

__all__ = ["IDENTITY", "NOTES_REF", "Lineage", "base_ref", "champion_ref", "git_reason", "open_repo"]
