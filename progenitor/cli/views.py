"""What the CLI prints once: a run's closing summary, the status of runs, a lineage, and the
lines of ``progenitor check``."""

from __future__ import annotations

from typing import Any, Optional, Union

import click
from rich.console import Console
from rich.table import Table

from progenitor.candidate.keys import candidate_name
from progenitor.cli.text import shown, text
from progenitor.lineage.records import RunLineage
from progenitor.run.status import RunStatus


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_summary(console: Console, s: Any) -> None:
    from progenitor.workflows.advice import take_champion

    table = Table(title=text(f"run {s.run_id}: {s.status}" + (f" ({s.stop_reason})" if s.stop_reason else "")),
                  show_header=False)
    h = s.honesty
    table.add_row("baseline " + text(s.metric) + " (holdout)", _fmt(s.baseline))
    table.add_row("champion " + text(s.metric) + " (holdout)", _fmt(s.champion))
    if s.baseline is not None and s.champion is not None:
        table.add_row("change", f"{s.champion - s.baseline:+.4f} ({s.goal})")
    _honest_rows(table, s)
    table.add_row("champion commit", f"{(s.champion_commit or '')[:12]}  ({s.champion_ref})")
    table.add_row("generations", str(s.generations) + (" (async: one candidate each)" if s.mode == "async" else ""))
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items())) or "none"
    table.add_row("candidates", f"{s.tried} tried: {counts}")
    table.add_row("sandbox / executor", f"{s.backend} / {s.executor}" + (f" ({text(s.isolation)})" if s.isolation else ""))
    if not s.sealed:
        table.add_row("[red]UNSEALED[/red]", "[red]candidates could read the holdout labels (--allow-unsealed)[/red]")
    if s.unenforced_limits:
        names = ", ".join(text(name) for name in sorted(s.unenforced_limits))
        table.add_row("[red]UNENFORCED LIMITS[/red]",
                      f"[red]the kernel did not hold the {names} limits (--allow-unenforced-limits)[/red]")
    _spend_rows(table, s.ledger)
    table.add_row("time", f"{s.seconds:.1f} s")
    if s.slots:
        busy = s.ledger.get("slot_occupancy")
        table.add_row("slots", f"{s.slots} ({s.mode}): {s.idle_slot_seconds or 0:.1f} slot-s idle"
                               + (f", busy {busy:.0%} of the time" if busy is not None else ""))
    console.print(table)
    for note in h.notes:
        console.print(f"[yellow]note[/yellow]: {text(note)}")
    # Plain, greppable lines too: tools and the demo read these.
    metric = shown(s.metric)
    click.echo(f"baseline {metric}: {_fmt(s.baseline)}")
    click.echo(f"champion {metric}: {_fmt(s.champion)}")
    if h.test_metric:
        click.echo(f"baseline test {metric}: {_fmt(h.baseline_test)}")
        click.echo(f"champion test {metric}: {_fmt(h.champion_test)}")
    if s.status == "waiting" and s.waiting:
        from progenitor.workflows.waiting import how_to_decide

        click.echo(f"waiting at {s.waiting['gate']}: {shown(s.waiting['description'])}")
        click.echo(how_to_decide(s.run_id, s.waiting["gate"]))
    elif s.status == "stalled":
        click.echo(f"stalled: {shown(s.stop_reason or '', multiline=True)}".replace("\n", "\n    "))
    elif s.status != "finished":
        click.echo(f"resume with: progenitor resume {s.run_id} --repo {s.repo}")
    else:
        for line in take_champion(s.repo, s.run_id, s.champion_commit):
            click.echo(line)


def _honest_rows(table: Table, s: Any) -> None:
    """The test split's figures, selection luck, and how far each guarded metric drifted."""
    h = s.honesty
    if h.test_metric:
        table.add_row(f"baseline {text(h.test_metric)}", _fmt(h.baseline_test))
        table.add_row(f"champion {text(h.test_metric)}", _fmt(h.champion_test))
        if h.holdout_test_gap is not None:
            table.add_row("holdout - test (champion)", f"{h.holdout_test_gap:+.4f}")
    if h.selection_luck is not None:
        table.add_row("selection luck", f"up to {h.selection_luck:.4f} ({h.compared} compared on {h.holdout_n} examples)")
    for metric, moved in s.drift.items():
        change = moved["change"]
        how = "unchanged from the baseline" if change == 0 else \
            f"{abs(change):.4g} {'better' if change > 0 else 'worse'} than the baseline"
        allowed = "" if moved["allowed"] is None else f" (at most {moved['allowed']:.4g} worse allowed)"
        table.add_row(f"guard {text(metric)}", f"{moved['baseline']:.4g} -> {moved['champion']:.4g}: {how}{allowed}")


def _spend_rows(table: Table, spend: dict) -> None:
    if not spend:
        return
    table.add_row("spend", f"{spend['cpu_seconds']:.1f} CPU-s, {spend['gpu_seconds']:.1f} GPU-s, "
                           f"{spend['train_wall_seconds']:.1f} s training in {spend['attempts']} attempts")
    if spend.get("llm"):
        tokens = spend["prompt_tokens"] + spend["completion_tokens"]
        estimated = spend.get("estimated_dollars") or 0.0
        table.add_row("LLM spend", f"${spend['dollars']:.4f}"
                                   + (f" (${estimated:.4f} of it estimated: aborted requests)" if estimated else "")
                                   + f", {tokens} tokens in {sum(r['calls'] for r in spend['llm'].values())} requests")


def print_status(console: Console, data: Union[RunStatus, list[RunStatus]]) -> None:
    runs = data if isinstance(data, list) else [data]
    if not runs:
        console.print("no runs yet")
        return
    table = Table("run", "task", "status", "gen", "objective", "baseline", "champion", "created")
    # The id is what every other command takes: never cut or wrapped, whatever the width.
    table.columns[0].no_wrap = True
    table.columns[0].min_width = max(len(run.id) for run in runs)
    for run in runs:
        baseline = run.summary.baseline if run.summary else run.baseline_value
        champion = run.summary.champion if run.summary else run.champion_value
        status = f"{run.status}" + (f" at {run.waiting['gate']}" if run.waiting else "")
        status += f" ({run.stop_reason})" if run.stop_reason else ""
        table.add_row(run.id, text(str(run.task)), text(status), str(run.generation), text(run.metric or "-"),
                      _fmt(baseline), _fmt(champion), str(run.created))
    console.print(table)


def print_run(console: Console, run: RunStatus) -> None:
    """One run, as ``progenitor status RUN`` shows it: where it stands, what it found, what it spent."""
    from progenitor.workflows.waiting import how_to_decide

    metric, waiting = run.metric or "objective", run.waiting
    table = Table(title=text(f"run {run.id}: {run.task}"), show_header=False)
    table.add_row("status", text(str(run.status) + (f" ({run.stop_reason})" if run.stop_reason else "")))
    if waiting:
        table.add_row("gate", text(f"{waiting['gate']}: {waiting.get('description', '')} (since {waiting.get('since')})"))
    budget = f" of {run.generations_budget}" if run.generations_budget else ""
    table.add_row("generation", f"{run.generation}{budget}")
    table.add_row(f"baseline {text(metric)}", _fmt(run.baseline_value))
    table.add_row(f"champion {text(metric)}", text(_champion(run)))
    if run.champion_test_value is not None:
        table.add_row(f"champion test {text(metric)}", _fmt(run.champion_test_value))
    table.add_row("candidates", ", ".join(f"{n} {k}" for k, n in sorted(run.counts.items())) or "none yet")
    if run.ledger:
        _spend_rows(table, run.ledger)
        table.add_row("wall time", f"{run.ledger.get('run_wall_seconds', 0.0):.1f} s")
    table.add_row("sandbox", text(str(run.backend)))
    table.add_row("created", str(run.created))
    console.print(table)
    if waiting:
        click.echo(how_to_decide(run.id, waiting["gate"]))


def _champion(run: RunStatus) -> str:
    value, commit = run.champion_value, (run.champion_commit or "")[:10]
    if run.champion_name is None:
        return _fmt(value)
    if run.champion_name == "baseline":
        return f"{_fmt(value)} (the baseline, commit {commit}: nothing beat it so far)"
    change = f", {value - run.baseline_value:+.4f} on the baseline" if None not in (value, run.baseline_value) else ""
    return f"{_fmt(value)} ({run.champion_name}, commit {commit}{change})"


def print_lineage(console: Console, data: RunLineage) -> None:
    table = Table("cand", "commit", "status", "value", "decision", "hypothesis / reason",
                  title=text(f"lineage of {data.run}"))
    for c in data.candidates:
        decision = c.decision.verdict if c.decision else ""
        mark = " *" if c.sha and c.sha == data.champion else ""
        why = c.reason or c.proposal.hypothesis
        if c.findings:
            why += f" [{len(c.findings)} finding{'s' if len(c.findings) > 1 else ''}]"
        table.add_row(f"{candidate_name(c.gen, c.k)}{mark}", (c.sha or "-")[:10], text(c.status), _fmt(c.value),
                      text(decision), text(why))
    console.print(table)


_COLOURS = {"ok": "green", "warning": "yellow", "problem": "red", "skipped": None}


def print_check(check: Any) -> None:
    """One line: status, what was checked, the sentence."""
    colour = _COLOURS.get(check.status)
    status = click.style(f"{check.status:<8}", fg=colour) if colour else f"{check.status:<8}"
    click.echo(f"{status} {check.name}: {shown(check.detail)}")


def check_verdict(checks: list) -> tuple[str, int]:
    """The closing line of ``progenitor check`` and its exit code (2 when anything is a problem)."""
    problems = sum(c.status == "problem" for c in checks)
    warnings = sum(c.status == "warning" for c in checks)
    noted = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
    if problems:
        return (f"{problems} problem{'s' if problems != 1 else ''}{noted}: fix them (and commit) "
                "before 'progenitor run'"), 2
    skipped = [c.name for c in checks if c.status == "skipped" and c.name != "baseline values"]
    if skipped:
        return (f"no problem found{noted}, but {', '.join(skipped)} could not be checked here: "
                "'progenitor run' may still fail there"), 0
    return f"all checks passed{noted}: 'progenitor run' is ready to spend the budget", 0


def print_signed(result) -> None:
    """One line per signed audit entry: who signed what, with which key, and whether it holds."""
    for s in result.signed:
        state = {True: "verified", False: "FORGED or not allowed", None: "not checked"}[s.ok]
        click.echo(f"entry {s.entry}: {s.action} {s.gate} of run {s.run} by {s.actor}, signed with {s.key or 'a key'}:"
                   f" {state}{' (' + s.problem + ')' if s.problem else ''}")
    for index in result.unsigned_required:
        click.echo(f"entry {index}: unsigned, where the task requires signatures")
