"""Stream a real run's events and print them: the shape of a lab's own dashboard or logger.

    python examples/embed/stream_events.py [REPO]      # default: a fresh copy of the digits example

Each event is a typed model of ``progenitor.run.events`` (``event.type`` is its kind); the
last one is ``run.end`` with the run's summary, or ``run.error``. Offline: the search architect
and the offline coder, no key, no network.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import progenitor
from progenitor.run import events


def describe(event: progenitor.Event) -> str:
    """One line for the events a lab usually cares about; the kind alone for the rest."""
    if isinstance(event, events.RunStart):
        return f"run {event.run} on {event.task}: {event.generations} x {event.candidates}, sandbox {event.backend}"
    if isinstance(event, events.BaselineEnd):
        return "baseline " + ", ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
    if isinstance(event, events.ArchitectProposal):
        return f"g{event.gen}/c{event.k} proposed: {event.hypothesis}"
    if isinstance(event, events.Score):
        value = "-" if event.value is None else f"{event.value:.4f}"
        return f"g{event.gen}/c{event.k} {event.status} {value} {event.reason}".rstrip()
    if isinstance(event, events.OversightDecision):
        return f"g{event.gen} {event.action} by {event.actor}: {event.reason}"
    if isinstance(event, events.GenerationEnd):
        return f"g{event.gen} done: champion {event.champion_value:.4f} {event.counts}"
    if isinstance(event, events.RunEnd):
        return f"run {event.status}: baseline {event.baseline} -> champion {event.champion} ({event.tried} tried)"
    if isinstance(event, events.RunError):
        return f"run failed: {event.error_type}: {event.error}"
    return event.type


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", help="a model repo (default: a fresh copy of the digits example)")
    parser.add_argument("--generations", type=int, default=1)
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--executor", default="local", choices=["local", "ray"])
    args = parser.parse_args()
    if args.repo:
        repo = Path(args.repo)
    else:
        from progenitor.lineage.scaffold import init_example

        repo = init_example("digits", Path(tempfile.mkdtemp(prefix="progenitor-embed-")) / "digits")
    options = progenitor.RunOptions(generations=args.generations, candidates=args.candidates, executor=args.executor)
    last = None
    for event in progenitor.ModelRepo(repo).stream(options):
        if event.type not in ("train.line", "node.start", "node.end"):
            print(f"{event.t:.1f} {describe(event)}", flush=True)
        last = event
    return 0 if isinstance(last, events.RunEnd) else 1


if __name__ == "__main__":
    raise SystemExit(main())
