"""The run's call cache: every request to a language model, kept with the run, written when it
is sent and again when its answer arrives.

One JSON file per request under ``.progenitor/runs/<run>/llm/``, named by its id
(``g<gen>/c<k>/<role>/<n>.json``, ``g<gen>/architect/<n>.json``):

- ``"state": "sent"``: written just before the request leaves, with what it may cost (the
  estimate: prompt tokens plus ``max_tokens``). A file still in this state when a run resumes
  was under way when its process died: ``settle`` marks it ``killed``, charged at that estimate
  (a provider bills a request it received, answered or not).
- ``"state": "done"``: written the moment the answer (or the error) arrives, with its charge.
  A resumed run that makes the same request again (same id, same request) reads it from here
  instead of paying twice; and a charge the ledger had not taken yet when the process died is
  taken from here when the run resumes (``settle``), so no paid request is lost or counted twice.

The files hold the messages, the models' names, the reply and its cost; never a key (keys are
not part of a request as we keep it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterator, Optional

from progenitor.llm.calls import LlmCall
from progenitor.run.rundir import read_json, write_json

__all__ = ["CallCache", "request_hash"]


def request_hash(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


class CallCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, call_id: str) -> Path:
        return self.root.joinpath(*call_id.split("/")).with_suffix(".json")

    def get(self, call_id: str) -> Optional[dict]:
        return read_json(self.path(call_id))

    def sent(self, call: LlmCall, request: dict, digest: str) -> None:
        """Before the request leaves: its estimate, in case nobody lives to hear the answer."""
        write_json(self.path(call.id), {"id": call.id, "state": "sent", "request": request, "request_hash": digest,
                                        "call": call.model_dump()})

    def forget(self, call_id: str) -> None:
        """A request written down that never left (its key was missing): nothing to charge."""
        self.path(call_id).unlink(missing_ok=True)

    def done(self, call: LlmCall, request: dict, digest: str, text: str) -> None:
        """The moment its answer (or error) arrived: what it cost, and what it said."""
        write_json(self.path(call.id), {"id": call.id, "state": "done", "request": request, "request_hash": digest,
                                        "text": text, "call": call.model_dump()})

    def entries(self) -> Iterator[dict]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*.json")):
            entry = read_json(path)
            if isinstance(entry, dict) and "call" in entry:
                yield entry

    def settle(self) -> list[LlmCall]:
        """Every request on record, as the ledger must hold it; a request left ``sent`` by a
        process that died is marked ``killed`` first. Call only while no request is under way."""
        calls = []
        for entry in self.entries():
            call = LlmCall.model_validate(entry["call"])
            if entry.get("state") == "sent":
                call = call.model_copy(update={"outcome": "killed", "estimated": True,
                                               "error": "under way when the run's process died"})
                write_json(self.path(call.id), {**entry, "state": "done", "text": "", "call": call.model_dump()})
            calls.append(call)
        return calls


def replayed_text(entry: dict) -> str:
    """The text of a finished entry (``reply`` in the files of older versions)."""
    return str(entry.get("text", entry.get("reply", "")))
