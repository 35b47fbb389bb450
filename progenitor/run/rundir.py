"""Where a run keeps its files, and the events log every surface reads.

Layout, inside the model repo (``.progenitor/`` is kept out of git through
``.git/info/exclude``, so the user's ``.gitignore`` is never edited)::

    .progenitor/
      checkpoints.sqlite         LangGraph checkpoints, one thread per run
      runs/<run>/
        run.json                 id, repo, base commit, options, status
        events.jsonl             everything that happened, one JSON object a line
        data/                    prepared once by the trusted prepare command (holds labels)
        visible/                 what a candidate may read (copies of data.visible)
        trusted/                 export of the base commit: prepare, scorer, protected files
        study.log                the search architect's Optuna journal
        g<gen>/proposals.json    the generation's proposals, saved before any is committed
        g<gen>/parents.json      the node each of its candidates is built on (search.parents)
        g<gen>/c<k>/             record.json (the candidate), train.json, out/, score.json,
                                 scores/ (what the scorer wrote into {scores}: per_example.npy),
                                 test_score.json (a promoted champion's test-split figures),
                                 seed<i>/ (a repeat with seed i: train.json, out/, score.json, scores/)
        llm/                     every finished LLM call: request, reply, cost (no key), by its id
        STOP                     present when a stop was asked for
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from progenitor.candidate.keys import candidate_name, generation_name
from progenitor.errors import UserError

if TYPE_CHECKING:
    from progenitor.run.events import Event

STATE_DIR = ".progenitor"
RECORD_FILE = "record.json"
"""A candidate's record in its directory (``g<gen>/c<k>/record.json``)."""


def new_run_id() -> str:
    return f"r{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(2)}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}-{threading.get_ident()}")  # one per writer
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def ensure_state_dir(repo_root: Path) -> Path:
    state = repo_root / STATE_DIR
    state.mkdir(exist_ok=True)
    os.chmod(state, 0o700)  # checkpoints, the audit log and every run's labels: the owner's only
    exclude = repo_root / ".git" / "info" / "exclude"
    if exclude.parent.is_dir():
        text = exclude.read_text() if exclude.exists() else ""
        if f"/{STATE_DIR}/" not in text.split():
            exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + f"/{STATE_DIR}/\n")
    return state


class RunDir:
    """Files of one run."""

    def __init__(self, repo_root: Path, run_id: str):
        self.repo_root = Path(repo_root)
        self.run_id = run_id
        self.path = self.repo_root / STATE_DIR / "runs" / run_id
        self._lock = threading.Lock()

    @property
    def checkpoints(self) -> Path:
        return self.repo_root / STATE_DIR / "checkpoints.sqlite"

    # -- the run's directories and files: every path of a run is named here (an agent keeps
    # its own state under the run directory it is given: the search architect's study.log) --
    @property
    def trusted(self) -> Path:
        """Export of the base commit: prepare, scorer, spec and protected files."""
        return self.path / "trusted"

    @property
    def data(self) -> Path:
        """What the trusted prepare command wrote, holdout labels included."""
        return self.path / "data"

    @property
    def visible(self) -> Path:
        """The copies of ``data.visible`` that candidates may read."""
        return self.path / "visible"

    @property
    def ledger(self) -> Path:
        return self.path / "ledger.json"

    @property
    def llm(self) -> Path:
        """The call cache: each finished LLM call's request and reply, replayed on a resume."""
        return self.path / "llm"

    def parents(self, gen: int) -> Path:
        """The node each candidate of a generation is built on, drawn before it is proposed."""
        return self.path / generation_name(gen) / "parents.json"

    def proposals(self, gen: int) -> Path:
        """A generation's proposals, saved before any is committed (so a resume re-proposes nothing)."""
        return self.path / generation_name(gen) / "proposals.json"

    def architect_failure(self, gen: int) -> Path:
        """Why the architect proposed nothing in a generation, when it failed (the generation's summary says it)."""
        return self.path / generation_name(gen) / "architect-failed.json"

    def record_file(self, gen: int, k: int) -> Path:
        """A candidate's record (its ``Candidate``, the same JSON as its git note)."""
        return self.candidate(gen, k) / RECORD_FILE

    def train_file(self, gen: int, k: int) -> Path:
        """A candidate's training record, written the moment its training ends (a resume reads it)."""
        return self.candidate(gen, k) / "train.json"

    def score_file(self, gen: int, k: int, split: str = "holdout") -> Path:
        """The trusted scorer's result on the holdout, or (a promoted champion's) on the test split."""
        return self.candidate(gen, k) / ("score.json" if split == "holdout" else "test_score.json")

    def outputs(self, gen: int, k: int) -> Path:
        """What a candidate's training left, brought back sanitised."""
        return self.candidate(gen, k) / "out"

    def scores(self, gen: int, k: int, split: str = "holdout") -> Path:
        """``{scores}`` of the trusted scorer: where it may write per-example scores."""
        return self.candidate(gen, k) / ("scores" if split == "holdout" else "test_scores")

    def repeat(self, gen: int, k: int, seed: int) -> Path:
        """A repeat's training with another seed (``objective.repeats``): train.json, out/, score.json, scores/."""
        return self.candidate(gen, k) / f"seed{seed}"

    def exists(self) -> bool:
        return (self.path / "run.json").exists()

    def create(self, meta: dict) -> None:
        ensure_state_dir(self.repo_root)
        self.path.mkdir(parents=True, exist_ok=False)
        # Its data (holdout labels), trusted tree and candidates are no other uid's business:
        # the sandboxes bind the visible data in as root, they never walk here as the candidate.
        os.chmod(self.path, 0o700)
        write_json(self.path / "run.json", {"id": self.run_id, "created": now_iso(), **meta})

    @property
    def meta(self) -> dict:
        return read_json(self.path / "run.json", {})

    def update_meta(self, **fields: Any) -> None:
        with self._lock:
            write_json(self.path / "run.json", {**self.meta, **fields})

    def candidate(self, gen: int, k: int) -> Path:
        path = self.path / candidate_name(gen, k)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def records(self) -> list[Path]:
        """Every candidate's ``record.json`` so far, in key order (generation, then index)."""
        # Globbed, not built with record_file(): that one makes the candidate's directory.
        found = [p for p in self.path.glob(f"g*/c*/{RECORD_FILE}") if p.parent.parent.name[1:].isdigit()
                 and p.parent.name[1:].isdigit()]
        return sorted(found, key=lambda p: (int(p.parent.parent.name[1:]), int(p.parent.name[1:])))

    # -- events ----------------------------------------------------------------------------
    @property
    def events_file(self) -> Path:
        return self.path / "events.jsonl"

    def emit(self, event: "Event") -> "Event":
        """Append ``event`` (one of ``run.events``' models) to the run's events log, stamped with the run."""
        from progenitor.run.events import Event

        if not isinstance(event, Event):
            raise TypeError(f"emit takes an event model of progenitor.run.events, not {event!r}")
        event = event.model_copy(update={"run": self.run_id})
        line = event.model_dump_json()
        with self._lock, open(self.events_file, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        return event

    def events(self) -> list["Event"]:
        """Every event so far, typed (older files too: ``run.events.parse_event``)."""
        from progenitor.run.events import parse_event

        if not self.events_file.exists():
            return []
        # Split on "\n" only: str.splitlines() also breaks at U+2028 and U+0085, which a candidate's
        # printed line may hold, raw, inside its JSON (its run's status then failed for good).
        text = self.events_file.read_text(encoding="utf-8")
        return [parse_event(json.loads(line)) for line in text.split("\n") if line.strip()]

    def follow(self, stop: Callable[[], bool], poll: float = 0.2) -> Iterator["Event"]:
        """Yield events as they are appended, until ``stop()`` is true and the file is drained."""
        from progenitor.run.events import parse_event

        position = 0
        while True:
            done = stop()
            if self.events_file.exists():
                with open(self.events_file, encoding="utf-8", newline="\n") as handle:
                    handle.seek(position)
                    for line in handle:
                        if not line.endswith("\n"):
                            break
                        position += len(line.encode())
                        yield parse_event(json.loads(line))
            if done:
                return
            time.sleep(poll)

    # -- stop requests -----------------------------------------------------------------------
    @property
    def stop_file(self) -> Path:
        return self.path / "STOP"

    def request_stop(self, reason: str = "stop requested") -> None:
        self.stop_file.write_text(reason)

    def stop_requested(self) -> Optional[str]:
        try:
            return self.stop_file.read_text() or "stop requested"
        except FileNotFoundError:
            return None

    def clear_stop(self) -> None:
        self.stop_file.unlink(missing_ok=True)


def find_run(run_id: str, repo: Optional[Path] = None) -> RunDir:
    """Locate a run by id: in ``repo`` if given, else the current directory, else the index."""
    candidates = [Path(repo)] if repo else [Path.cwd()]
    if not repo:
        candidates += [Path(p) for p in reversed(_index().get(run_id, []))]
    for root in candidates:
        run = RunDir(root, run_id)
        if run.exists():
            return run
    where = f"in {repo}" if repo else "here or in the run index"
    raise UserError(f"no run {run_id!r} {where}; pass --repo DIR (the model repo) or see 'progenitor status'")


def list_runs(repo: Path) -> list[RunDir]:
    root = Path(repo) / STATE_DIR / "runs"
    if not root.is_dir():
        return []
    runs = [RunDir(repo, p.name) for p in root.iterdir() if (p / "run.json").exists()]
    return sorted(runs, key=lambda r: r.meta.get("created", ""))


# -- the user-level index: run id -> model repo, so `progenitor resume RUN` works anywhere ---
def index_path() -> Path:
    home = os.environ.get("PROGENITOR_HOME")
    base = Path(home) if home else Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "progenitor"
    return base / "runs.json"


def _index() -> dict[str, list[str]]:
    return read_json(index_path(), {}) or {}


def register_run(run_id: str, repo_root: Path) -> None:
    try:
        index = _index()
        index.setdefault(run_id, [])
        if str(repo_root) not in index[run_id]:
            index[run_id].append(str(repo_root))
        write_json(index_path(), index)
    except OSError:
        pass  # the index is a convenience; a read-only home must not stop a run
