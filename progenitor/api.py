"""The Python API for lab tooling: start, stream, resume, stop and inspect runs; decide at
their gates, revert a generation, adopt a champion, verify the audit log.

Everything the CLI does goes through these functions; the CLI only parses and prints.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Iterator, Optional, Union

from progenitor.errors import UserError
from progenitor.lineage.records import read_lineage
from progenitor.options import RunOptions
from progenitor.run.processes import alive
from progenitor.run.rundir import find_run
from progenitor.run.rundir import list_runs as _list_runs
from progenitor.workflows.graph import build_graph
from progenitor.workflows.runner import RunSummary, open_run, resume_run, start_run

__all__ = [
    "RunOptions", "RunSummary", "adopt", "build_graph", "decide", "get_lineage", "list_runs", "open_run", "pending",
    "resume_run", "revert", "run_status", "start_run", "stop_run", "stream_run", "verify_audit",
]

PathLike = Union[str, Path]


def stream_run(repo_dir: PathLike, options: Optional[RunOptions] = None, **kwargs) -> Iterator[dict]:
    """Start a run in a background thread and yield its events as they happen.

    The last event is ``run.end`` (with the summary) or ``run.error`` (with the message).
    """
    events: "queue.Queue[Optional[dict]]" = queue.Queue()

    def work() -> None:
        try:
            start_run(Path(repo_dir), options, on_event=events.put, **kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer as an event
            events.put({"type": "run.error", "error": str(exc), "kind": type(exc).__name__})
        finally:
            events.put(None)

    threading.Thread(target=work, name="progenitor-run", daemon=True).start()
    while (event := events.get()) is not None:
        yield event


def stop_run(run_id: str, repo: Optional[PathLike] = None, reason: str = "stopped by request") -> None:
    """Ask a running run to stop (from any process); it stays resumable."""
    find_run(run_id, Path(repo) if repo else None).request_stop(reason)


def list_runs(repo: PathLike) -> list[dict]:
    return [_status_of(run) for run in _list_runs(Path(repo))]




def _status_of(run) -> dict:
    meta = run.meta
    if meta.get("status") == "running" and not alive(meta.get("pid")):
        # Its process is gone (killed, or the machine went down): the checkpoints remain.
        meta = {**meta, "status": "interrupted", "stop_reason": "its process is gone; 'progenitor resume' continues it"}
    events = run.events()
    last_gen = max((e.get("gen", 0) or 0 for e in events if e["type"] == "node.start"), default=0)
    return {
        "id": run.run_id, "repo": str(run.repo_root), "task": meta.get("task"), "created": meta.get("created"),
        "status": meta.get("status"), "stop_reason": meta.get("stop_reason"), "backend": meta.get("backend"),
        "base": meta.get("base"), "generation": last_gen, "summary": meta.get("summary"),
        "baseline": meta.get("baseline"), "ledger": _ledger(run, meta), "waiting": meta.get("waiting"),
        "waiting_process": alive(meta.get("pid")) if meta.get("status") == "waiting" else None,
    }


def _ledger(run, meta: dict) -> Optional[dict]:
    """What the run has spent, from its ledger file (written after every node that spent, so an
    interrupted run shows it too); the copy in run.json when there is no file."""
    if run.ledger.exists():
        from progenitor.run.ledger import load_ledger

        return load_ledger(run.ledger)
    return meta.get("ledger")


def run_status(run_id: Optional[str] = None, repo: Optional[PathLike] = None) -> Union[dict, list[dict]]:
    """One run's status, or every run of ``repo`` (default: the current directory)."""
    if run_id is None:
        return list_runs(Path(repo) if repo else Path.cwd())
    return _status_of(find_run(run_id, Path(repo) if repo else None))


def get_lineage(run_id: str, repo: Optional[PathLike] = None) -> dict:
    """Every candidate of a run with its record, plus base and champion (``lineage.records``)."""
    return read_lineage(run_id, Path(repo) if repo else None)


# -- oversight ------------------------------------------------------------------------------
def decide(run_id: str, decision: str, *, by: Optional[str] = None, comment: str = "",
           edits: Optional[dict] = None, repo: Optional[PathLike] = None, gate: Optional[str] = None,
           seen: Optional[str] = None, surface: str = "api"):
    """Decide at the gate a run waits at: ``approve``, ``reject`` (with a comment), ``edit``
    (``edits={"c0": {"lr": 0.01}}``) or ``request-changes`` (with a comment, which reaches the
    architect). One decision per gate is recorded; a second raises ``AlreadyDecided``, naming the
    first. ``by`` defaults to the OS user. Returns the stored decision."""
    from progenitor.oversight.decide import decide as _decide

    return _decide(run_id, decision, by=by, comment=comment, edits=edits, repo=Path(repo) if repo else None,
                   gate=gate, seen=seen, surface=surface)


def pending(run_id: Optional[str] = None, repo: Optional[PathLike] = None) -> list:
    """What waits for a decision: one run's gates, or every run's of ``repo`` (default: here)."""
    from progenitor.oversight.decide import pending as _pending

    return _pending(run_id, Path(repo) if repo else None)


def revert(run_id: str, gen: int, comment: str, *, by: Optional[str] = None, repo: Optional[PathLike] = None,
           surface: str = "api"):
    """Undo generation ``gen``'s promotion (and every later one): the champion goes back to the
    last one kept, the records say ``reverted``, the audit log has it, the run builds on it."""
    from progenitor.oversight.reverts import revert as _revert

    return _revert(run_id, gen, comment, by, Path(repo) if repo else None, surface=surface)


def adopt(run_id: str, branch: Optional[str] = None, *, by: Optional[str] = None, repo: Optional[PathLike] = None,
          surface: str = "api"):
    """Create (or fast-forward, never force) ``branch`` (default ``progenitor/<run>``) at the champion."""
    from progenitor.oversight.adoption import adopt as _adopt

    return _adopt(run_id, branch, by, Path(repo) if repo else None, surface=surface)


def verify_audit(repo: Optional[PathLike] = None, against: Optional[PathLike] = None):
    """Check the model repo's audit log: its hash chain, and the heads recorded in git (here,
    and in ``against``: a clone of the lineage)."""
    from progenitor.oversight.audit import audit_log
    from progenitor.run.rundir import STATE_DIR

    root = Path(repo or Path.cwd()).resolve()
    if not (root / STATE_DIR / "audit.jsonl").exists():
        raise UserError(f"no audit log at {root / STATE_DIR / 'audit.jsonl'}; run it in a model repo that has had "
                        f"a run, or pass --repo")
    return audit_log(root).verify(Path(against) if against else None)
