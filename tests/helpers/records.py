"""A run's lineage and status as their JSON (what ``lineage --json`` and ``status --json`` print),
for tests that read records as a tool would."""

from __future__ import annotations

import progenitor


def lineage_json(run_id: str, repo=None) -> dict:
    return progenitor.get_lineage(run_id, repo=repo).model_dump(mode="json", by_alias=True)


def status_json(run_id=None, repo=None):
    found = progenitor.run_status(run_id, repo=repo)
    return [s.model_dump(mode="json") for s in found] if isinstance(found, list) else found.model_dump(mode="json")
