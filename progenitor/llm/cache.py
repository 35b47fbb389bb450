"""The run's call cache: every finished LLM call's request and reply, kept with the run.

One JSON file per call under ``.progenitor/runs/<run>/llm/``, named by its id
(``g<gen>/c<k>/<role>/<n>.json``, ``g<gen>/architect/<n>.json``). A resumed run that makes
the same call again (same id, same request) reads the reply from here instead of paying for
it twice. The files hold the messages, the models' names, the reply and its cost; never a
key (keys are not part of a request as we keep it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

from progenitor.run.rundir import read_json, write_json

__all__ = ["CallCache", "request_hash"]


def request_hash(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


class CallCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, call_id: str) -> Path:
        return self.root.joinpath(*call_id.split("/")).with_suffix(".json")

    def get(self, call_id: str, digest: str) -> Optional[dict]:
        """The finished call ``call_id``, if it was this very request."""
        entry = read_json(self.path(call_id))
        if entry is None or entry.get("request_hash") != digest:
            return None
        return entry

    def put(self, call_id: str, request: dict, digest: str, reply: str, call: dict) -> None:
        write_json(self.path(call_id), {"id": call_id, "request": request, "request_hash": digest, "reply": reply,
                                        "call": call})
