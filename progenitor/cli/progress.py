"""What the CLI shows while a run works, and its closing summary, status and lineage views."""

from __future__ import annotations

import time
from typing import Any, Optional

from rich.console import Console
from rich.table import Table

from progenitor.keys import candidate_name, generation_name

_QUIET_EVENTS = {"train.line", "node.start", "node.end", "train.cached", "prepare.visible"}


def _name(e: dict) -> str:
    """``g<gen>/c<k>`` of the candidate an event or record is about."""
    return candidate_name(e["gen"], e["k"])


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


class Progress:
    """Turns run events into lines (and a live bar on a terminal)."""

    def __init__(self, console: Console, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.started = time.time()
        self.bar = None
        self.task = None
        self.metric = "objective"

    def __enter__(self) -> "Progress":
        if not self.quiet and self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           console=self.console, transient=True)
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _line(self, text: str) -> None:
        if not self.quiet:
            stamp = f"[dim]{time.time() - self.started:6.1f}s[/dim]"
            self.console.print(f"{stamp} {text}")

    def on_event(self, event: dict) -> None:
        kind = event["type"]
        if kind in _QUIET_EVENTS:
            return
        handler = getattr(self, "_on_" + kind.replace(".", "_"), None)
        if handler:
            handler(event)

    def _advance(self, description: Optional[str] = None) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, advance=1, **({"description": description} if description else {}))

    def _on_run_start(self, e: dict) -> None:
        self._line(f"run [bold]{e['run']}[/bold] on {e['repo']} (task {e['task']}): "
                   f"{e['generations']} generations x {e['candidates']} candidates, sandbox {e['backend']} ({e['why']})"
                   + (f": {e['isolation']}" if e.get("isolation") else ""))
        if self.bar is not None:
            self.task = self.bar.add_task("training", total=1 + e["generations"] * e["candidates"])

    def _on_run_warning(self, e: dict) -> None:
        self._line(f"[yellow]warning[/yellow]: {e['message']}")

    def _on_run_failed(self, e: dict) -> None:
        self._line(f"[red]run failed[/red] ({e['error_type']}); its checkpoints are kept: 'progenitor resume {e['run']}' continues it")

    def _on_executor_start(self, e: dict) -> None:
        if e["executor"] == "ray":
            self._line("starting Ray (or joining the cluster at --ray-address)")

    def _on_run_resume(self, e: dict) -> None:
        self._line(f"resuming run [bold]{e['run']}[/bold]")

    def _on_prepare_data(self, e: dict) -> None:
        self._line("preparing data with the trusted prepare command (once per run)")

    def _on_baseline_start(self, e: dict) -> None:
        self._line(f"training the human baseline {e['commit'][:10]}")

    def _on_baseline_end(self, e: dict) -> None:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in e["metrics"].items())
        self._line(f"baseline scored: {metrics}")
        self._advance()

    def _on_architect_proposal(self, e: dict) -> None:
        self._line(f"{_name(e)} proposed: {e['hypothesis']}")

    def _on_coder_failed(self, e: dict) -> None:
        self._line(f"{_name(e)} [red]coder failed[/red]: {e['reason']}")

    def _on_coder_fix(self, e: dict) -> None:
        if e["fix"] is not None:
            self._line(f"g{e['gen']}/c{e['k']} crashed: the coder's fix is g{e['gen']}/c{e['fix']} ({e['status']})")

    def _on_architect_duplicate(self, e: dict) -> None:
        self._line(f"g{e['gen']}/c{e['k']} [yellow]dropped[/yellow]: {e['reason']}")

    def _on_llm_call(self, e: dict) -> None:
        who = e["role"] if e["k"] is None else f"g{e['gen']}/c{e['k']} {e['role']}"
        how = "replayed from the run" if e["cached"] else f"{e['seconds']:.1f} s"
        self._line(f"[dim]{who}: {e['model']}, {e['prompt_tokens']}+{e['completion_tokens']} tokens, "
                   f"${e['dollars']:.4f} ({how})[/dim]")

    def _on_safety_review(self, e: dict) -> None:
        if e["status"] == "rejected":
            self._line(f"{_name(e)} [red]rejected before running[/red]: {e['reason']}")
            self._advance()

    def _on_train_start(self, e: dict) -> None:
        if e["gen"] > 0:
            self._line(f"{_name(e)} training ({e['commit'][:10]})")

    def _on_train_end(self, e: dict) -> None:
        if e["status"] != "ok":
            self._line(f"{_name(e)} [red]{e['status']}[/red] after {e['duration']:.1f}s: {e['reason']}")
        if e["gen"] > 0:
            self._advance(f"{generation_name(e['gen'])} training")

    def _on_score(self, e: dict) -> None:
        if e["status"] == "scored":
            self._line(f"{_name(e)} scored {_fmt(e['value'])}")
        else:
            self._line(f"{_name(e)} [red]failed scoring[/red]: {e['reason']}")

    def _on_oversight_decision(self, e: dict) -> None:
        colour = "green" if e["action"] == "approve" else "yellow"
        self._line(f"{generation_name(e['gen'])} decision [{colour}]{e['action']}[/{colour}] by {e['actor']}: {e['reason']}")

    def _on_gate_waiting(self, e: dict) -> None:
        self._line(f"[bold yellow]waiting for a person[/bold yellow] at {e['gate']}: {e['description']}")
        self._line(e["how"])

    def _on_gate_decided(self, e: dict) -> None:
        self._line(f"{e['gate']} decided: {e['type']} by {e['by']} ({e['surface']}); going on")

    def _on_champion_restored(self, e: dict) -> None:
        self._line(f"[yellow]champion restored[/yellow] to {e['commit'][:10]} (a revert by {e['by']})")

    def _on_generation_end(self, e: dict) -> None:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(e["counts"].items()))
        self._line(f"{generation_name(e['gen'])} done: champion {_fmt(e['champion_value'])} ({counts})")

    def _on_run_stopping(self, e: dict) -> None:
        self._line(f"[yellow]stopping[/yellow]: {e['reason']}; training under way is cancelled")

    def print_summary(self, s: Any) -> None:
        table = Table(title=f"run {s.run_id}: {s.status}" + (f" ({s.stop_reason})" if s.stop_reason else ""),
                      show_header=False)
        h = s.honesty
        table.add_row("baseline " + s.metric + " (holdout)", _fmt(s.baseline))
        table.add_row("champion " + s.metric + " (holdout)", _fmt(s.champion))
        if s.baseline is not None and s.champion is not None:
            table.add_row("change", f"{s.champion - s.baseline:+.4f} ({s.goal})")
        if h.test_metric:
            table.add_row(f"baseline {h.test_metric}", _fmt(h.baseline_test))
            table.add_row(f"champion {h.test_metric}", _fmt(h.champion_test))
            if h.holdout_test_gap is not None:
                table.add_row("holdout - test (champion)", f"{h.holdout_test_gap:+.4f}")
        if h.selection_luck is not None:
            table.add_row("selection luck", f"up to {h.selection_luck:.4f} ({h.compared} compared on {h.holdout_n} examples)")
        for metric, moved in s.drift.items():
            change = moved["change"]
            how = "unchanged" if change == 0 else f"{abs(change):.4g} {'better' if change > 0 else 'worse'}"
            allowed = "" if moved["allowed"] is None else f" (at most {moved['allowed']:.4g} worse allowed)"
            table.add_row(f"guard {metric}", f"{moved['baseline']:.4g} -> {moved['champion']:.4g}: {how} "
                                             f"than the baseline{allowed}")
        table.add_row("champion commit", f"{(s.champion_commit or '')[:12]}  ({s.champion_ref})")
        table.add_row("generations", str(s.generations))
        counts = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items())) or "none"
        table.add_row("candidates", f"{s.tried} tried: {counts}")
        table.add_row("sandbox / executor", f"{s.backend} / {s.executor}" + (f" ({s.isolation})" if s.isolation else ""))
        if not s.sealed:
            table.add_row("[red]UNSEALED[/red]", "[red]candidates could read the holdout labels (--allow-unsealed)[/red]")
        if s.ledger:
            spend = s.ledger
            table.add_row("spend", f"{spend['cpu_seconds']:.1f} CPU-s, {spend['gpu_seconds']:.1f} GPU-s, "
                                   f"{spend['train_wall_seconds']:.1f} s training in {spend['attempts']} attempts")
            if spend.get("llm"):
                tokens = spend["prompt_tokens"] + spend["completion_tokens"]
                table.add_row("LLM spend", f"${spend['dollars']:.4f}, {tokens} tokens in "
                                           f"{sum(r['calls'] for r in spend['llm'].values())} calls")
        table.add_row("time", f"{s.seconds:.1f} s")
        self.console.print(table)
        for note in h.notes:
            self.console.print(f"[yellow]note[/yellow]: {note}")
        # Plain, greppable lines too: tools and the demo read these.
        print(f"baseline {s.metric}: {_fmt(s.baseline)}")
        print(f"champion {s.metric}: {_fmt(s.champion)}")
        if h.test_metric:
            print(f"baseline test {s.metric}: {_fmt(h.baseline_test)}")
            print(f"champion test {s.metric}: {_fmt(h.champion_test)}")
        if s.status == "waiting" and s.waiting:
            from progenitor.workflows.waiting import how_to_decide

            print(f"waiting at {s.waiting['gate']}: {s.waiting['description']}")
            print(how_to_decide(s.run_id, s.waiting["gate"]))
        elif s.status != "finished":
            print(f"resume with: progenitor resume {s.run_id} --repo {s.repo}")


def print_status(console: Console, data: Any) -> None:
    runs = data if isinstance(data, list) else [data]
    if not runs:
        console.print("no runs yet")
        return
    table = Table("run", "task", "status", "gen", "baseline", "champion", "created")
    for run in runs:
        summary = run.get("summary") or {}
        baseline = summary.get("baseline")
        if baseline is None and run.get("baseline"):
            metrics = run["baseline"].get("metrics", {})
            baseline = next(iter(metrics.values()), None)
        state = f"{run.get('status')}" + (f" at {run['waiting']['gate']}" if run.get("waiting") else "")
        table.add_row(run["id"], str(run.get("task")), state + (f" ({run['stop_reason']})" if run.get("stop_reason") else ""),
                      str(run.get("generation")), _fmt(baseline), _fmt(summary.get("champion")), str(run.get("created")))
    console.print(table)


def print_lineage(console: Console, data: dict) -> None:
    table = Table("cand", "commit", "status", "value", "decision", "hypothesis / reason", title=f"lineage of {data['run']}")
    champion = data.get("champion")
    for c in data["candidates"]:
        value = (c.get("metrics") or {}).get(c.get("objective", ""))
        decision = (c.get("decision") or {}).get("verdict", "")
        mark = " *" if c["sha"] and c["sha"] == champion else ""
        why = c.get("reason") or (c.get("proposal") or {}).get("hypothesis", "")
        findings = c.get("findings") or []
        if findings:
            why += f" [{len(findings)} finding{'s' if len(findings) > 1 else ''}]"
        table.add_row(f"{_name(c)}{mark}", (c["sha"] or "-")[:10], c.get("status", ""),
                      _fmt(value), decision, why)
    console.print(table)
