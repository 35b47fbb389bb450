"""The ``progenitor`` command: parses, calls the public API, prints. No logic lives here.

Errors from the library arrive as ``ProgenitorError`` and leave as one line on stderr
with the error's exit code (2 for bad input), never as a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import click

from progenitor.cli.errors import CommandError, Group
from progenitor.cli.oversight import COMMANDS as OVERSIGHT_COMMANDS
from progenitor.cli.oversight import STORE
from progenitor.cli.prompts import prompts
from progenitor.cli.sandbox import sandbox
from progenitor.cli.users import users


def _console():
    from rich.console import Console

    # soft_wrap: a log line is one line in a file or a pipe, whatever the width.
    return Console(highlight=False, soft_wrap=True)


def _repo_opt(fn):
    return click.option("--repo", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="The model repo (default: the current directory, else the run index).")(fn)


def _follow_opts(fn):
    """``--quiet`` and ``--detach``, for the commands that drive a run."""
    fn = click.option("--detach", is_flag=True,
                      help="At a human gate, leave the run waiting and exit 0 instead of waiting.")(fn)
    return click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")(fn)


def _follow(quiet: bool, drive) -> None:
    """Drive a run (``drive(on_event)`` returns its summary) with its progress shown, print the
    summary and exit: 0 when it finished or waits at a gate, 3 when it stalled (no candidate
    trained for ``budget.stall_after`` generations), 130 when it stopped early."""
    from progenitor.cli.progress import Progress

    with Progress(_console(), quiet=quiet) as progress:
        summary = drive(progress.on_event)
    progress.print_summary(summary)
    sys.exit({"finished": 0, "waiting": 0, "stalled": 3}.get(summary.status, 130))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="progenitor")
def cli() -> None:
    """progenitor: agents engineer the next generation of a model, under a sealed evaluation."""


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--example", type=str, default=None, help="Make a fresh model repo from a bundled example (e.g. digits).")
def init(directory: Path, example: Optional[str]) -> None:
    """Write a commented progenitor.yaml template (with a constitution and a research brief) into
    DIRECTORY, or make an example repo."""
    from progenitor.lineage import scaffold

    if example:
        path = scaffold.init_example(example, directory)
        click.echo(f"made model repo {path} from example {example!r} (one baseline commit)")
        click.echo(f"next: progenitor check {path}   (every check that costs no budget), then: progenitor run {path}")
    else:
        path = scaffold.init_template(directory)
        click.echo(f"wrote {path}, constitution.yaml and program.md (the research brief) beside it; edit them, "
                   f"commit them, then: progenitor check {directory}   (every check that costs no budget), "
                   f"and once it passes: progenitor run {directory}")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--generations", "-g", type=click.IntRange(min=1), help="Override budget.generations.")
@click.option("--candidates", "-k", type=click.IntRange(min=1, max=64), help="Override budget.candidates.")
@click.option("--sandbox", type=click.Choice(["auto", "process", "docker"]), help="Override sandbox.backend.")
@click.option("--executor", type=click.Choice(["ray", "local"]), default="ray", show_default=True,
              help="Where candidates train: Ray (a local instance, or --ray-address), or a local pool without Ray.")
@click.option("--ray-address", envvar="RAY_ADDRESS", help="Join this Ray cluster (with --executor ray).")
@click.option("--seed", type=int, help="Override the task's search seed.")
@click.option("--parallel", type=click.IntRange(min=1), help="Most candidates trained at once (local executor).")
@click.option("--allow-unsealed", is_flag=True,
              help="Run even where candidates could read the holdout labels (not root, no bubblewrap, no Docker).")
@click.option("--allow-unenforced-limits", is_flag=True,
              help="Run even where the kernel does not hold the task's memory, CPU or process limits "
                   "(process sandbox without root or a delegated cgroup).")
@click.option("--no-preflight", is_flag=True,
              help="Do not ask each language model for one token before preparing data (their keys are still checked).")
@click.option("--store", **STORE)
@click.option("--continue", "continue_run", metavar="RUN",
              help="Extend the finished RUN with more generations (-g, default budget.generations), warm: "
                   "its champion, study and lineage go on, nothing is trained again.")
@_follow_opts
def run(directory: Path, generations, candidates, sandbox, executor, ray_address, seed, parallel, allow_unsealed,
        allow_unenforced_limits, no_preflight, store, continue_run, quiet, detach) -> None:
    """Run the loop on the model repo DIRECTORY."""
    from progenitor.api import start_run
    from progenitor.options import RunOptions
    from progenitor.oversight.store import store_url

    if continue_run:
        from progenitor.api import continue_run as extend

        given = [name for name, value in (("--candidates", candidates), ("--sandbox", sandbox), ("--seed", seed),
                                          ("--parallel", parallel), ("--allow-unsealed", allow_unsealed),
                                          ("--allow-unenforced-limits", allow_unenforced_limits),
                                          ("--no-preflight", no_preflight), ("--store", store)) if value]
        if given:
            raise CommandError(f"{', '.join(given)} cannot change a run being continued: it goes on with its own "
                               f"settings (only -g/--generations says how many more)", 2)
        _follow(quiet, lambda on_event: extend(continue_run, directory, generations, on_event=on_event, detach=detach))
        return
    options = RunOptions(generations=generations, candidates=candidates, sandbox=sandbox, executor=executor,
                         ray_address=ray_address, seed=seed, max_parallel=parallel, allow_unsealed=allow_unsealed,
                         allow_unenforced_limits=allow_unenforced_limits, preflight=not no_preflight,
                         store=store_url(store))
    _follow(quiet, lambda on_event: start_run(directory, options, on_event=on_event, detach=detach))


@cli.command()
@click.argument("run_id")
@_repo_opt
@click.option("--store", **STORE)
@_follow_opts
def resume(run_id: str, repo: Optional[Path], store: Optional[str], quiet: bool, detach: bool) -> None:
    """Resume RUN from its last checkpoint; finished work is not redone. A run waiting at a gate
    goes on with the decision made there (or waits for one)."""
    from progenitor.api import resume_run
    from progenitor.oversight.store import store_url

    _follow(quiet, lambda on_event: resume_run(run_id, repo, on_event=on_event, detach=detach,
                                               store=store_url(store)))


@cli.command()
@click.argument("run_id")
@_repo_opt
def stop(run_id: str, repo: Optional[Path]) -> None:
    """Ask RUN to stop; it cancels its training and stays resumable."""
    from progenitor.api import stop_run

    stop_run(run_id, repo)
    click.echo(f"asked run {run_id} to stop; 'progenitor resume {run_id}' continues it")


@cli.command()
@click.argument("run_id", required=False)
@_repo_opt
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
def status(run_id: Optional[str], repo: Optional[Path], as_json: bool) -> None:
    """Show one run (its gate, generation, baseline, champion and spend), or every run of the
    model repo."""
    from progenitor.api import run_status
    from progenitor.cli.views import print_run, print_status

    data = run_status(run_id, repo)
    if as_json:
        rows = [r.model_dump(mode="json") for r in data] if isinstance(data, list) else data.model_dump(mode="json")
        click.echo(json.dumps(rows, indent=2))
    elif run_id is not None:
        print_run(_console(), data)
    else:
        print_status(_console(), data)


@cli.command()
@click.argument("run_id")
@_repo_opt
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
def lineage(run_id: str, repo: Optional[Path], as_json: bool) -> None:
    """Every candidate of RUN with its record, from the git notes."""
    from progenitor.api import get_lineage
    from progenitor.cli.views import print_lineage

    data = get_lineage(run_id, repo)
    if as_json:
        click.echo(data.model_dump_json(indent=2, by_alias=True))
    else:
        print_lineage(_console(), data)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--predictions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Run the scorer on this predictions file instead of training the baseline once.")
@click.option("--sandbox", type=click.Choice(["auto", "process", "docker"]), help="Override sandbox.backend.")
def check(directory: Path, predictions: Optional[Path], sandbox: Optional[str]) -> None:
    """Check the model repo DIRECTORY without spending the budget, one line per check: the
    spec, the constitution, the search space against the config file, the commands'
    programs, the resources, data.prepare (in a scratch directory), the visible data, and
    the scorer (on --predictions, or on one baseline training). Exit 2 on any problem."""
    from progenitor.checks import check_repo
    from progenitor.cli.views import check_verdict, print_check

    results = check_repo(directory, predictions, sandbox, on_check=print_check)
    line, code = check_verdict(results)
    click.echo(line)
    sys.exit(code)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path), required=False)
def doctor(directory: Optional[Path]) -> None:
    """Say what this machine can do: sandboxes, network isolation, Docker, Ray, GPUs
    (and, given a model repo DIRECTORY, whether its Docker task image is built and whether
    the models of its llm: section answer, with what they cost). Exit 1 when a model it was
    asked about does not answer."""
    from progenitor.checks.doctor import checks, models_failed, print_checks

    results = checks(directory)
    print_checks(_console(), results)
    failed = models_failed(results)
    if failed:
        click.echo(f"error: {len(failed)} model(s) of the llm: section did not answer: "
                   + ", ".join(c.name.removeprefix("llm ") for c in failed), err=True)
        sys.exit(1)


@cli.command()
@click.argument("run_id", required=False)
@_repo_opt
@click.option("--keep", type=click.Choice(["champion", "all", "none"]), default="champion", show_default=True,
              help="Whose outputs stay: the baseline's and each promoted champion's, everyone's, or no one's.")
def gc(run_id: Optional[str], repo: Optional[Path], keep: str) -> None:
    """Remove candidates' outputs that --keep does not keep (in RUN, or every run of the model
    repo that is not going on), and job directories left by drivers that were killed."""
    from progenitor.api import gc as collect
    from progenitor.sandbox.outcome import size

    report = collect(repo, run_id, keep)
    click.echo(f"removed the outputs of {report.outputs} candidates ({size(report.bytes)}) in "
               f"{len(report.runs)} runs (keeping {keep}); {report.job_dirs} job directories left by "
               "killed drivers removed" + (f"; skipped runs going on now: {', '.join(report.busy)}"
                                          if report.busy else ""))


@cli.group(cls=Group)
def audit() -> None:
    """The hash-chained audit log of decisions."""


@audit.command("verify")
@_repo_opt
@click.option("--against", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Also compare with the audit heads of this clone of the lineage (taken earlier).")
@click.option("--allowed-signers", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Check signed decisions against this allowed-signers file (default: oversight.allowed_signers).")
@click.option("--store", **STORE)
def audit_verify(repo: Optional[Path], against: Optional[Path], allowed_signers: Optional[Path],
                 store: Optional[str]) -> None:
    """Check that no audit entry was edited, inserted, removed or rewritten, and say who signed
    what: each signed decision is checked against the allowed signers; an unsigned one where the
    task requires signatures, or a signature that does not verify, fails the check."""
    from progenitor.api import verify_audit
    from progenitor.cli.views import print_signed

    result = verify_audit(repo, against, allowed_signers=allowed_signers, store=store)
    print_signed(result)
    if result.ok:
        click.echo(f"audit log intact: {result.entries} entries, {result.git_heads} head(s) in git agree"
                   + (f" ({result.unrecorded} not recorded in git yet)" if result.unrecorded else "")
                   + (f"; {sum(s.ok is True for s in result.signed)} signed decision(s) verified"
                      if result.signed else ""))
    else:
        raise CommandError(f"audit log broken: {result.problem}", 1)


cli.add_command(sandbox)
cli.add_command(users)
cli.add_command(prompts)
for _command in OVERSIGHT_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="progenitor")

