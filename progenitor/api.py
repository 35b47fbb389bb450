"""The Python API for lab tooling: start, stream, resume, stop and inspect runs; decide at
their gates, revert a generation, adopt a champion, verify the audit log; embed the loop in
a lab's own LangGraph graph.

Two shapes of the same thing. Functions (``start_run``, ``get_lineage``, ``decide``, ...) are
what the CLI and the page call, and take a run id and a repo. ``ModelRepo`` and ``Run`` are
handles for a lab's own code: a model repo, and one run of it. Everything returns typed
records (``RunSummary``, ``RunStatus``, ``RunLineage`` of ``Candidate`` records, events of
``progenitor.run.events``), never a bare dict; ``.model_dump(mode="json")`` gives the JSON.
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, Union

from progenitor.errors import UserError
from progenitor.lineage.records import RunLineage, read_lineage, run_detail
from progenitor.options import RunOptions
from progenitor.oversight.decide import decide, pending
from progenitor.run.events import Event, RunError
from progenitor.run.rundir import find_run
from progenitor.run.rundir import list_runs as _list_runs
from progenitor.run.status import RunStatus, status_of
from progenitor.run.summary import RunSummary
from progenitor.workflows.graph import build_graph
from progenitor.workflows.runner import continue_run, open_run, resume_run, start_run
from progenitor.workflows.state import AgentFactory, EventListener

if TYPE_CHECKING:
    from progenitor.candidate import Champion
    from progenitor.oversight.accounts import Identity
    from progenitor.oversight.adoption import Adopted
    from progenitor.oversight.audit import Verification
    from progenitor.oversight.decide import Pending
    from progenitor.oversight.store import Recorded, Revert

__all__ = [
    "ModelRepo", "Run", "RunLineage", "RunOptions", "RunStatus", "RunSummary", "adopt", "build_graph", "decide",
    "continue_run", "get_lineage", "list_runs", "open_run", "pending", "resume_run", "revert", "run_status", "start_run",
    "stop_run", "stream_run", "verify_audit",
]

PathLike = Union[str, Path]


def _repo(repo: Optional[PathLike]) -> Optional[Path]:
    return Path(repo) if repo else None


def stream_run(repo_dir: PathLike, options: Optional[RunOptions] = None, **kwargs) -> Iterator[Event]:
    """Start a run in a background thread and yield its events (``progenitor.run.events``) as
    they happen. The last event is ``RunEnd`` (with the summary) or ``RunError`` (with the message).
    """
    events: "queue.Queue[Optional[Event]]" = queue.Queue()

    def work() -> None:
        try:
            start_run(Path(repo_dir), options, on_event=events.put, **kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer as an event
            events.put(RunError(error=str(exc), error_type=type(exc).__name__))
        finally:
            events.put(None)

    threading.Thread(target=work, name="progenitor-run", daemon=True).start()
    while (event := events.get()) is not None:
        yield event


def stop_run(run_id: str, repo: Optional[PathLike] = None, reason: str = "stopped by request") -> None:
    """Ask a running run to stop (from any process); it stays resumable."""
    find_run(run_id, _repo(repo)).request_stop(reason)


def list_runs(repo: PathLike) -> list[RunStatus]:
    """Every run of the model repo ``repo``, oldest first."""
    return [status_of(run) for run in _list_runs(Path(repo))]


def run_status(run_id: Optional[str] = None, repo: Optional[PathLike] = None) -> Union[RunStatus, list[RunStatus]]:
    """One run's status (with its champion now and its candidates by status, from the lineage),
    or every run of ``repo`` (default: the current directory)."""
    if run_id is None:
        return list_runs(Path(repo) if repo else Path.cwd())
    return run_detail(run_id, _repo(repo))


def get_lineage(run_id: str, repo: Optional[PathLike] = None) -> RunLineage:
    """Every candidate of a run with its record, plus base, champion and baseline. Read from the
    git notes, so a clone of the lineage with no run directory reads the same."""
    return read_lineage(run_id, _repo(repo))


# -- oversight ------------------------------------------------------------------------------
def revert(run_id: str, gen: int, comment: str, *, by: "Union[None, str, Identity]" = None,
           repo: Optional[PathLike] = None, surface: str = "api") -> "Revert":
    """Undo generation ``gen``'s promotion (and every later one): the champion goes back to the
    last one kept, the records say ``reverted``, the audit log has it, the run builds on it."""
    from progenitor.oversight.reverts import revert as _revert

    return _revert(run_id, gen, comment, by, _repo(repo), surface=surface)


def adopt(run_id: str, branch: Optional[str] = None, *, by: Optional[str] = None, repo: Optional[PathLike] = None,
          surface: str = "api") -> "Adopted":
    """Create (or fast-forward, never force) ``branch`` (default ``progenitor/<run>``) at the champion."""
    from progenitor.oversight.adoption import adopt as _adopt

    return _adopt(run_id, branch, by, _repo(repo), surface=surface)


def verify_audit(repo: Optional[PathLike] = None, against: Optional[PathLike] = None, *,
                 allowed_signers: Optional[PathLike] = None, store: Optional[str] = None) -> "Verification":
    """Check the model repo's audit log (or a team ``store``'s): its hash chain, the heads recorded
    in git (here, and in ``against``: a clone of the lineage), and every signed decision against
    ``allowed_signers`` (default: the task's ``oversight.allowed_signers`` file, if it names one)."""
    from progenitor.oversight.signatures import AllowedSigners
    from progenitor.oversight.store import DecisionStore

    root = Path(repo or Path.cwd()).resolve()
    log = DecisionStore(root, store).audit_log(root)
    if not log.exists():
        raise UserError(f"no audit log at {log.where}; run it in a model repo that has had a run, or pass --repo")
    signers_file = Path(allowed_signers) if allowed_signers else task_signers(root)
    signers = AllowedSigners.load(signers_file) if signers_file else None
    return log.verify(Path(against) if against else None, signers)


def task_signers(root: Path) -> Optional[Path]:
    """The allowed-signers file the task in ``root`` names, when it names one that is there."""
    from progenitor.errors import SpecError
    from progenitor.task.spec import load_spec

    try:
        name = load_spec(root).oversight.allowed_signers
    except (SpecError, OSError):
        return None
    return root / name if name and (root / name).is_file() else None


# -- handles for a lab's code ----------------------------------------------------------------
class ModelRepo:
    """A model repo (a git repository with a ``progenitor.yaml``) and its runs.

    ``start`` drives a run in this process; ``start_in_background`` in a thread, whose events
    ``Run.follow`` yields as they happen; ``embed`` opens a run for a lab's own graph."""

    def __init__(self, path: PathLike):
        self.path = Path(path).resolve()

    def __repr__(self) -> str:
        return f"ModelRepo({str(self.path)!r})"

    def start(self, options: Optional[RunOptions] = None, *, architect: Optional[AgentFactory] = None,
              on_event: Optional[EventListener] = None, detach: bool = False) -> "Run":
        """A new run, driven here until it ends, stops, or (``detach``) waits at a gate."""
        summary = start_run(self.path, options, architect=architect, on_event=on_event, detach=detach)
        return Run(self, summary.run_id, summary)

    def start_in_background(self, options: Optional[RunOptions] = None, *,
                            architect: Optional[AgentFactory] = None) -> "Run":
        """A new run in a thread of this process: returns once it exists (its directory and first
        events written), with ``Run.follow()`` to read its events live and ``Run.wait()`` its end."""
        started: "queue.Queue[Union[str, BaseException]]" = queue.Queue()
        box: dict = {}

        def tell(event: Event) -> None:
            if not box.get("told"):
                box["told"] = True
                started.put(event.run)

        def work() -> None:
            try:
                box["summary"] = start_run(self.path, options, architect=architect, on_event=tell)
            except BaseException as exc:  # noqa: BLE001 - raised by wait(), or here if it never started
                box["error"] = exc
                if not box.get("told"):
                    started.put(exc)

        thread = threading.Thread(target=work, name="progenitor-run", daemon=True)
        thread.start()
        first = started.get()
        if isinstance(first, BaseException):
            raise first
        return Run(self, first, thread=thread, box=box)

    def stream(self, options: Optional[RunOptions] = None, **kwargs) -> Iterator[Event]:
        """A new run's events as they happen (``stream_run``)."""
        return stream_run(self.path, options, **kwargs)

    def runs(self) -> list["Run"]:
        return [Run(self, status.id) for status in list_runs(self.path)]

    def run(self, run_id: str) -> "Run":
        find_run(run_id, self.path)  # an unknown id is one sentence now
        return Run(self, run_id)

    def pending(self) -> list["Pending"]:
        return pending(None, self.path)

    def verify_audit(self, against: Optional[PathLike] = None) -> "Verification":
        return verify_audit(self.path, against)

    @contextmanager
    def embed(self, options: Optional[RunOptions] = None, *, architect: Optional[AgentFactory] = None,
              on_event: Optional[EventListener] = None) -> Iterator[tuple["Run", object, dict]]:
        """A new run for a lab's own LangGraph graph: ``(run, compiled graph, its first input)``.
        The graph has no checkpointer of its own: added as a node, or invoked inside one, it
        keeps its checkpoints in the parent's, under its own namespace. The run's executor and
        ledger stay open until the block ends."""
        with open_run(self.path, options, architect=architect, on_event=on_event) as (ctx, first):
            yield Run(self, ctx.run.run_id), build_graph(ctx), first


class Run:
    """One run of a model repo: its status, events, lineage and champion; decide, stop, resume."""

    def __init__(self, repo: ModelRepo, run_id: str, summary: Optional[RunSummary] = None, *,
                 thread: Optional[threading.Thread] = None, box: Optional[dict] = None):
        self.repo, self.id, self.summary = repo, run_id, summary
        self._thread, self._box = thread, box

    def __repr__(self) -> str:
        return f"Run({self.id!r}, repo={str(self.repo.path)!r})"

    def status(self) -> RunStatus:
        """Its status, with its champion now and its candidates by status (``run_status``)."""
        return run_detail(self.id, self.repo.path)

    def events(self) -> list[Event]:
        """Every event so far."""
        return find_run(self.id, self.repo.path).events()

    def follow(self, poll: float = 0.2) -> Iterator[Event]:
        """Its events as they are written, until a run started in the background has ended (for
        another run: until it is no longer running, that is, finished, stopped or waiting)."""
        run = find_run(self.id, self.repo.path)
        if self._thread is not None:
            return run.follow(lambda: not self._thread.is_alive(), poll)
        return run.follow(lambda: run.meta.get("status") != "running", poll)

    def wait(self, timeout: Optional[float] = None) -> RunSummary:
        """The summary of a run started in the background, once it returns (ends, stops, or waits)."""
        if self._thread is None:
            raise UserError(f"run {self.id} was not started in the background by this handle; read status() instead")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"run {self.id} is still going after {timeout} s")
        if "error" in self._box:
            raise self._box["error"]
        self.summary = self._box["summary"]
        return self.summary

    def lineage(self) -> RunLineage:
        return get_lineage(self.id, self.repo.path)

    def champion(self) -> Optional["Champion"]:
        """The champion now: the human baseline until a candidate was promoted."""
        from progenitor.candidate import Champion

        lineage = self.lineage()
        promoted = [c for c in lineage.promoted() if c.sha == lineage.champion]
        if promoted:
            c = promoted[-1]
            return Champion(sha=c.sha, metrics=c.metrics, gen=c.gen, k=c.k, params=c.params,
                            test_metrics=c.test_metrics)
        return lineage.baseline

    def pending(self) -> list["Pending"]:
        return pending(self.id, self.repo.path)

    def decide(self, decision: str, **kwargs) -> "Recorded":
        """``decide`` at the gate this run waits at (``by``, ``comment``, ``edits``, ``gate``)."""
        return decide(self.id, decision, repo=self.repo.path, **kwargs)

    def stop(self, reason: str = "stopped by request") -> None:
        stop_run(self.id, self.repo.path, reason)

    def resume(self, *, architect: Optional[AgentFactory] = None, on_event: Optional[EventListener] = None,
               detach: bool = False) -> RunSummary:
        self.summary = resume_run(self.id, self.repo.path, architect=architect, on_event=on_event, detach=detach)
        return self.summary

    def revert(self, gen: int, comment: str, *, by: Optional[str] = None) -> "Revert":
        return revert(self.id, gen, comment, by=by, repo=self.repo.path)

    def adopt(self, branch: Optional[str] = None, *, by: Optional[str] = None) -> "Adopted":
        return adopt(self.id, branch, by=by, repo=self.repo.path)

