"""The oversight commands: ``pending``, ``approve``, ``reject``, ``request-changes``, ``edit``,
``revert``, ``adopt`` and ``ui``. They parse, call ``progenitor.api`` and print.

From a shell a decision is taken in the OS user's name, or, with ``--token`` (or
``PROGENITOR_TOKEN``), as the account that token belongs to; never in a typed name. ``--sign KEY``
signs it with that SSH key (``ssh-keygen -Y sign``); ``--store`` (or ``PROGENITOR_STORE``) names
a team's PostgreSQL store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click

from progenitor.cli.errors import CommandError

_REPO = dict(type=click.Path(file_okay=False, path_type=Path), default=None,
             help="The model repo (default: the current directory, else the run index).")
STORE = dict(envvar="PROGENITOR_STORE", default=None, metavar="URL",
             help="A team's decision store, postgresql://user@host/db (default: the repo's own SQLite file; "
                  "env PROGENITOR_STORE).")


def _who(token: Optional[str], store: Optional[str], repo: Optional[Path]):
    """The person deciding: the account of ``token``, else the OS user."""
    from progenitor.oversight.accounts import authenticate
    from progenitor.oversight.decide import os_identity
    from progenitor.oversight.store import DecisionStore

    if not token:
        return os_identity()
    return authenticate(DecisionStore(repo or Path.cwd(), store), token)


def _signature(run_id: str, decision: str, who, comment: str, gate, edits, repo, store,
               sign: Optional[Path], signature: Optional[Path]) -> Optional[str]:
    """The signature to send: read from ``signature``, or made now with the key ``sign``."""
    if signature is not None:
        return signature.read_text()
    if sign is None:
        return None
    from progenitor.oversight import hitl
    from progenitor.oversight.decide import find_gate, locate, statement
    from progenitor.oversight.signatures import sign as ssh_sign

    decisions, _ = locate(run_id, repo, store)
    found = find_gate(decisions, run_id, gate)
    coerced = {k: hitl.coerce_by_schema(found.request, v) for k, v in (edits or {}).items()} or None
    return ssh_sign(statement(found, hitl.kind_of(decision), who.actor, comment, coerced), sign)


def _decide(run_id: str, decision: str, opts: dict, comment: str, edits=None) -> None:
    from progenitor.api import decide

    who = _who(opts["token"], opts["store"], opts["repo"])
    signed = _signature(run_id, decision, who, comment, opts["gate"], edits, opts["repo"], opts["store"],
                        opts["sign"], opts["signature"])
    recorded = decide(run_id, decision, by=who, comment=comment, repo=opts["repo"], gate=opts["gate"], edits=edits,
                      surface="cli", signature=signed, store=opts["store"])
    if not recorded.final:
        left = recorded.needed - len(recorded.approvers)
        click.echo(f"{recorded.gate} of run {run_id}: approval by {recorded.by} recorded ({len(recorded.approvers)} of "
                   f"{recorded.needed}); it waits for {left} more approver{'s' if left != 1 else ''}")
        return
    click.echo(f"{recorded.gate} of run {run_id}: {recorded.type} by {recorded.by} recorded"
               f"{' (signed)' if recorded.signature else ''}; the run goes on by itself if it waits, else: "
               f"progenitor resume {run_id}")


def _decider(fn):
    """RUN_ID and the options every decision takes."""
    options = [
        click.option("--signature", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
                     help="A signature of the decision's statement made elsewhere (ssh-keygen -Y sign)."),
        click.option("--sign", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
                     metavar="KEY", help="Sign the decision with this SSH private key (ssh-keygen -Y sign)."),
        click.option("--token", envvar="PROGENITOR_TOKEN", default=None,
                     help="Decide as the account this token belongs to (default: the OS user; env PROGENITOR_TOKEN)."),
        click.option("--store", **STORE),
        click.option("--gate", default=None, help="The gate (default: the one the run waits at)."),
        click.option("--repo", **_REPO), click.argument("run_id"),
    ]
    for option in options:
        fn = option(fn)
    return fn


@click.command()
@click.argument("run_id", required=False)
@click.option("--repo", **_REPO)
@click.option("--store", **STORE)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the full HITL requests) for tools.")
def pending(run_id: Optional[str], repo: Optional[Path], store: Optional[str], as_json: bool) -> None:
    """List the decisions that wait: RUN's, or every run's of the model repo (of every machine, with a team store)."""
    from progenitor.api import pending as list_pending

    items = list_pending(run_id, repo, store=store)
    if as_json:
        click.echo(json.dumps([p.model_dump() for p in items], indent=2))
        return
    if not items:
        click.echo("nothing waits for a decision")
    for p in items:
        where = f" on {p.host}" if p.host else ""
        needs = f" [{len(p.approvals)} of {p.needed} approvals]" if p.needed > 1 else ""
        click.echo(f"{p.run}{where} {p.gate} (since {p.opened}){needs}: {p.description}")
        for action in p.request["action_requests"]:
            args = action["args"]
            metrics = ", ".join(f"{k} {v:.4g}" for k, v in args.get("metrics", {}).items())
            click.echo(f"  {args['candidate']} {(args.get('commit') or '')[:10]} {metrics or 'not trained yet'}"
                       f"  values {args.get('params')}  findings {len(args.get('findings', []))}")


@click.command()
@_decider
@click.option("--comment", default="", help="Why (optional).")
def approve(run_id: str, comment: str, **opts) -> None:
    """Approve what RUN waits for (the promotion, or the training)."""
    _decide(run_id, "approve", opts, comment)


@click.command()
@_decider
@click.option("--comment", required=True, help="Why it is rejected.")
def reject(run_id: str, comment: str, **opts) -> None:
    """Reject what RUN waits for: nothing is promoted (or trained)."""
    _decide(run_id, "reject", opts, comment)


@click.command("request-changes")
@_decider
@click.option("--comment", required=True, help="What to change: the architect's next proposal gets it.")
def request_changes(run_id: str, comment: str, **opts) -> None:
    """Send RUN's candidate back with a comment for the architect; nothing is promoted."""
    _decide(run_id, "request-changes", opts, comment)


@click.command()
@_decider
@click.option("--set", "values", multiple=True, required=True, metavar="CAND.KEY=VALUE",
              help="A value to train instead, like c0.lr=0.01 (repeat for more).")
@click.option("--comment", default="", help="Why (optional).")
def edit(run_id: str, values: tuple[str, ...], comment: str, **opts) -> None:
    """Train a candidate of RUN with edited values (a new candidate of the same generation)."""
    edits: dict[str, dict] = {}
    for item in values:
        target, eq, value = item.partition("=")
        cand, dot, key = target.partition(".")
        if not eq or not dot or not key:
            raise CommandError(f"--set {item!r}: write it as CAND.KEY=VALUE, like c0.lr=0.01", 2)
        edits.setdefault(cand, {})[key] = value
    _decide(run_id, "edit", opts, comment, edits)


@click.command()
@click.argument("run_id")
@click.option("--gen", "gen", type=int, required=True, help="The generation whose promotion to undo.")
@click.option("--comment", required=True, help="Why it is reverted.")
@click.option("--token", envvar="PROGENITOR_TOKEN", default=None,
              help="Revert as the account this token belongs to (an admin; default: the OS user).")
@click.option("--repo", **_REPO)
def revert(run_id: str, gen: int, comment: str, token: Optional[str], repo) -> None:
    """Undo generation N's promotion (and later ones): the champion goes back to the last one kept."""
    from progenitor.api import revert as do_revert

    done = do_revert(run_id, gen, comment, by=_who(token, None, repo) if token else None, repo=repo, surface="cli")
    restored = done.restored
    click.echo(f"generation {gen} of run {run_id} reverted by {done.by} ({len(done.reverted)} promotion(s)); "
               f"champion back at {restored['sha'][:10]} (g{restored.get('gen', 0)}/c{restored.get('k', 0)})")


@click.command()
@click.argument("run_id")
@click.option("--branch", default=None, help="The branch to create or fast-forward (default: progenitor/RUN).")
@click.option("--repo", **_REPO)
def adopt(run_id: str, branch: Optional[str], repo) -> None:
    """Make a branch at RUN's champion: created or fast-forwarded, never moved back (as the OS user)."""
    from progenitor.api import adopt as do_adopt

    done = do_adopt(run_id, branch, repo=repo, surface="cli")
    if not done.moved:
        click.echo(f"branch {done.branch} is at the champion {done.commit[:10]} already")
    elif done.previous is None:
        click.echo(f"created branch {done.branch} at the champion {done.commit[:10]}")
    else:
        click.echo(f"fast-forwarded branch {done.branch} {done.previous[:10]} -> {done.commit[:10]}")


@click.command()
@click.option("--repo", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("."),
              show_default=True, help="The model repo whose runs the page shows.")
@click.option("--store", **STORE)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; any other than loopback needs TLS (--certfile/--keyfile) or --trusted-proxy.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--certfile", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Serve HTTPS with this certificate (PEM), with --keyfile.")
@click.option("--keyfile", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="The certificate's private key (PEM).")
@click.option("--trusted-proxy", "proxies", multiple=True, metavar="ADDRESS",
              help="A proxy (address or network) whose user header names the person (repeat for more).")
@click.option("--user-header", default="X-Forwarded-User", show_default=True,
              help="The header a trusted proxy names the signed-in user in.")
def ui(repo: Path, store: Optional[str], host: str, port: int, certfile: Optional[Path], keyfile: Optional[Path],
       proxies: tuple[str, ...], user_header: str) -> None:
    """Serve the approval page: runs, lineage, candidates, the inbox of decisions, the audit log.
    Prints a link that signs its opener in as you (the OS user); others sign in with their
    account's token (progenitor users add)."""
    from progenitor.ui import serve

    serve(repo, host=host, port=port, store=store, certfile=certfile, keyfile=keyfile, proxies=list(proxies),
          user_header=user_header, echo=click.echo)


COMMANDS = [pending, approve, reject, request_changes, edit, revert, adopt, ui]
