"""The oversight commands: ``pending``, ``approve``, ``reject``, ``request-changes``, ``edit``,
``revert``, ``adopt`` and ``ui``. They parse, call ``progenitor.api`` and print; the decision from
a shell is taken in the OS user's name (``--by`` names someone else)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click

from progenitor.boundary.display import shown
from progenitor.cli.errors import CommandError

_REPO = dict(type=click.Path(file_okay=False, path_type=Path), default=None,
             help="The model repo (default: the current directory, else the run index).")
_BY = dict(default=None, help="Who decides (default: the OS user).")


def _decided(recorded, run_id: str) -> None:
    click.echo(f"{recorded.gate} of run {run_id}: {recorded.type} by {recorded.by} recorded; "
               f"the run goes on by itself if it waits, else: progenitor resume {run_id}")


def _decide(run_id: str, decision: str, repo, by, comment: str, gate, edits=None) -> None:
    from progenitor.api import decide

    _decided(decide(run_id, decision, by=by, comment=comment, repo=repo, gate=gate, edits=edits, surface="cli"), run_id)


@click.command()
@click.argument("run_id", required=False)
@click.option("--repo", **_REPO)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the full HITL requests) for tools.")
def pending(run_id: Optional[str], repo: Optional[Path], as_json: bool) -> None:
    """List the decisions that wait: RUN's, or every run's of the model repo."""
    from progenitor.api import pending as list_pending

    items = list_pending(run_id, repo)
    if as_json:
        click.echo(json.dumps([p.model_dump() for p in items], indent=2))
        return
    if not items:
        click.echo("nothing waits for a decision")
    for p in items:
        click.echo(f"{p.run} {p.gate} (since {p.opened}): {shown(p.description)}")
        for action in p.request["action_requests"]:
            args = action["args"]
            metrics = ", ".join(f"{k} {v:.4g}" for k, v in args.get("metrics", {}).items())
            click.echo(shown(f"  {args['candidate']} {(args.get('commit') or '')[:10]} {metrics or 'not trained yet'}"
                             f"  values {args.get('params')}  findings {len(args.get('findings', []))}"))


def _decider(fn):
    """RUN_ID and the options every decision takes: ``--by``, ``--repo`` and ``--gate``."""
    for option in (click.option("--gate", default=None, help="The gate (default: the one the run waits at)."),
                   click.option("--repo", **_REPO), click.option("--by", **_BY), click.argument("run_id")):
        fn = option(fn)
    return fn


@click.command()
@_decider
@click.option("--comment", default="", help="Why (optional).")
def approve(run_id: str, comment: str, by, repo, gate) -> None:
    """Approve what RUN waits for (the promotion, or the training)."""
    _decide(run_id, "approve", repo, by, comment, gate)


@click.command()
@_decider
@click.option("--comment", required=True, help="Why it is rejected.")
def reject(run_id: str, comment: str, by, repo, gate) -> None:
    """Reject what RUN waits for: nothing is promoted (or trained)."""
    _decide(run_id, "reject", repo, by, comment, gate)


@click.command("request-changes")
@_decider
@click.option("--comment", required=True, help="What to change: the architect's next proposal gets it.")
def request_changes(run_id: str, comment: str, by, repo, gate) -> None:
    """Send RUN's candidate back with a comment for the architect; nothing is promoted."""
    _decide(run_id, "request-changes", repo, by, comment, gate)


@click.command()
@_decider
@click.option("--set", "values", multiple=True, required=True, metavar="CAND.KEY=VALUE",
              help="A value to train instead, like c0.lr=0.01 (repeat for more).")
@click.option("--comment", default="", help="Why (optional).")
def edit(run_id: str, values: tuple[str, ...], comment: str, by, repo, gate) -> None:
    """Train a candidate of RUN with edited values (a new candidate of the same generation)."""
    edits: dict[str, dict] = {}
    for item in values:
        target, eq, value = item.partition("=")
        cand, dot, key = target.partition(".")
        if not eq or not dot or not key:
            raise CommandError(f"--set {item!r}: write it as CAND.KEY=VALUE, like c0.lr=0.01", 2)
        edits.setdefault(cand, {})[key] = value
    _decide(run_id, "edit", repo, by, comment, gate, edits)


@click.command()
@click.argument("run_id")
@click.option("--gen", "gen", type=int, required=True, help="The generation whose promotion to undo.")
@click.option("--comment", required=True, help="Why it is reverted.")
@click.option("--by", **_BY)
@click.option("--repo", **_REPO)
def revert(run_id: str, gen: int, comment: str, by, repo) -> None:
    """Undo generation N's promotion (and later ones): the champion goes back to the last one kept."""
    from progenitor.api import revert as do_revert

    done = do_revert(run_id, gen, comment, by=by, repo=repo, surface="cli")
    restored = done.restored
    click.echo(f"generation {gen} of run {run_id} reverted by {done.by} ({len(done.reverted)} promotion(s)); "
               f"champion back at {restored['sha'][:10]} (g{restored.get('gen', 0)}/c{restored.get('k', 0)})")


@click.command()
@click.argument("run_id")
@click.option("--branch", default=None, help="The branch to create or fast-forward (default: progenitor/RUN).")
@click.option("--by", **_BY)
@click.option("--repo", **_REPO)
def adopt(run_id: str, branch: Optional[str], by, repo) -> None:
    """Make a branch at RUN's champion: created or fast-forwarded, never moved back."""
    from progenitor.api import adopt as do_adopt

    done = do_adopt(run_id, branch, by=by, repo=repo, surface="cli")
    if not done.moved:
        click.echo(f"branch {done.branch} is at the champion {done.commit[:10]} already")
    elif done.previous is None:
        click.echo(f"created branch {done.branch} at the champion {done.commit[:10]}")
    else:
        click.echo(f"fast-forwarded branch {done.branch} {done.previous[:10]} -> {done.commit[:10]}")


@click.command()
@click.option("--repo", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("."),
              show_default=True, help="The model repo whose runs the page shows.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; any other than loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--token", default=None, help="Required to open the page; 'auto' generates one and prints a URL with it.")
def ui(repo: Path, host: str, port: int, token: Optional[str]) -> None:
    """Serve the approval page: runs, lineage, candidates, the inbox of decisions, the audit log."""
    from progenitor.ui import serve

    serve(repo, host=host, port=port, token=token, echo=click.echo)


COMMANDS = [pending, approve, reject, request_changes, edit, revert, adopt, ui]
