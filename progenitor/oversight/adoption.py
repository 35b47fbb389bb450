"""``progenitor adopt``: the one command that moves a branch of the user's, to a run's champion.

It creates the branch, or fast-forwards it, and never moves it any other way: a run whose champion
is still the commit it started from (no gain, or every gain reverted) is refused, as there is
nothing to take (a branch at the baseline called the champion would say otherwise); a branch whose
commit is not an ancestor of the champion (it has work of its own, or the champion went back
through a revert) is refused, not force-moved. It refuses a working tree with uncommitted
changes (a checked-out branch is moved with ``git merge --ff-only``, which would touch it).
Every adoption is in the audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from progenitor.errors import UserError
from progenitor.lineage import Lineage, champion_ref
from progenitor.oversight import decide as deciding
from progenitor.oversight.store import run_store
from progenitor.run.rundir import find_run

__all__ = ["Adopted", "adopt"]


class Adopted(BaseModel):
    branch: str
    commit: str
    previous: Optional[str] = None
    """Where the branch was before (None: it was created)."""
    moved: bool
    """False when the branch was at the champion already."""


def _ancestor(lineage: Lineage, older: str, newer: str) -> bool:
    try:
        lineage.git.merge_base("--is-ancestor", older, newer)
        return True
    except Exception:  # noqa: BLE001 - GitCommandError: exit 1, not an ancestor
        return False


def adopt(run_id: str, branch: Optional[str] = None, by: Optional[str] = None, repo: Optional[Path] = None,
          surface: str = "api") -> Adopted:
    """Move ``branch`` (default ``progenitor/<run>``) to the champion in ``by``'s name (default:
    the OS user)."""
    who = deciding.actor(by)
    run = find_run(run_id, repo)
    lineage = Lineage(run.repo_root)
    champion = lineage.resolve(champion_ref(run_id))
    if champion is None:
        raise UserError(f"run {run_id} has no champion yet")
    if champion == run.meta.get("base"):
        raise UserError(f"run {run_id} has no gain to adopt: no candidate beat the baseline (or every gain was "
                        f"reverted), so its champion is the commit it started from ({champion[:10]}), which your "
                        f"branch has already; no branch was made")
    branch = branch or f"progenitor/{run_id}"
    try:
        lineage.git.check_ref_format("--branch", branch)
    except Exception:  # noqa: BLE001
        raise UserError(f"{branch!r} is not a valid branch name") from None
    dirty = lineage.uncommitted()
    if dirty:
        raise UserError(f"the working tree has uncommitted changes ({', '.join(dirty[:3])}); commit or stash them "
                        f"before adopting")
    ref = f"refs/heads/{branch}"
    previous = lineage.resolve(ref)
    if previous == champion:
        return Adopted(branch=branch, commit=champion, previous=previous, moved=False)
    if previous is not None and not _ancestor(lineage, previous, champion):
        raise UserError(f"branch {branch} ({previous[:10]}) is not behind the champion {champion[:10]}: adopting "
                        f"would move it backwards or sideways, which progenitor never does; pick another --branch")
    current = lineage.repo.head.ref.path if not lineage.repo.head.is_detached else None
    if current == ref:
        lineage.git.merge("--ff-only", "--quiet", champion)
    elif previous is None:
        lineage.git.branch(branch, champion)
    else:
        lineage.git.update_ref("-m", f"progenitor adopt {run_id}", ref, champion, previous)
    run_store(run).audit_log(run.repo_root).append(
        key=f"{run_id}/adopt/{branch}/{champion}", action="adopt", actor=who, run=run_id, gen=0, commit=champion,
        payload={"branch": branch, "from": previous, "to": champion}, comment=f"branch {branch} -> {champion[:10]}",
        surface=surface,
    )
    return Adopted(branch=branch, commit=champion, previous=previous, moved=True)
