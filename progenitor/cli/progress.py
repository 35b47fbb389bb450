"""What the CLI shows while a run works.

On a terminal: a live board (``board``: generation, candidates in flight with their state,
best so far, time elapsed) redrawn in place, with the lines that matter (warnings, the
baseline, decisions, failures) printed above it. Elsewhere (a pipe, a file, CI): plain
time-stamped lines, one per event worth reading, so that a log says what happened.
"""

from __future__ import annotations

import time
from functools import singledispatchmethod
from typing import Any, Optional

from rich.console import Console

from progenitor.candidate.keys import candidate_name, generation_name
from progenitor.cli.board import RunBoard
from progenitor.cli.text import block, text
from progenitor.run.events import (
    ArchitectFailed,
    ArchitectProposal,
    BaselineEnd,
    BaselineStart,
    ChampionRestored,
    CoderDuplicate,
    CoderFailed,
    CoderFix,
    Event,
    ExecutorStart,
    GateDecided,
    GateNotified,
    GateWaiting,
    GenerationEnd,
    LlmCall,
    LlmPreflight,
    LlmRecovered,
    OversightDecision,
    PrepareData,
    RunCheck,
    RunFailed,
    RunResume,
    RunStart,
    RunStopping,
    RunWarning,
    SafetyBase,
    SafetyReview,
    Score,
    TestFailed,
    TrainEnd,
    TrainStart,
    TrainWatchFailed,
)

_QUIET_EVENTS = {"train.line", "node.start", "node.end", "train.cached", "prepare.visible"}


def _name(e: Event) -> str:
    """``g<gen>/c<k>`` of the candidate an event is about."""
    return candidate_name(e.gen, e.k)


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


class Progress:
    """Turns run events into a live board on a terminal, or into lines."""

    def __init__(self, console: Console, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.started = time.time()
        self.board = RunBoard()
        self.live = None

    def __enter__(self) -> "Progress":
        if not self.quiet and self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self.board, console=self.console, refresh_per_second=4, transient=True)
            self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _line(self, line: str, detail: bool = False) -> None:
        """Print a line; a ``detail`` line (one candidate's progress) only when the board is
        not there to show it."""
        if self.quiet or (detail and self.live is not None):
            return
        stamp = f"[dim]{time.time() - self.started:6.1f}s[/dim]"
        self.console.print(f"{stamp} {line}")

    def on_event(self, event: Event) -> None:
        """Take in one event: the board always, a line when the event is worth one."""
        self.board.update(event)
        if event.type not in _QUIET_EVENTS:
            self._show(event)

    @singledispatchmethod
    def _show(self, e: Event) -> None:
        """The line an event is worth (a kind with no line here prints nothing)."""

    @_show.register
    def _on_run_start(self, e: RunStart) -> None:
        self._line(f"run [bold]{e.run}[/bold] on {text(e.repo)} (task {text(e.task)}): "
                   f"{e.generations} generations x {e.candidates} candidates, sandbox {e.backend} "
                   f"({text(e.why)})" + (f": {text(e.isolation)}" if e.isolation else ""))

    @_show.register
    def _on_run_warning(self, e: RunWarning) -> None:
        self._line(f"[yellow]warning[/yellow]: {block(e.message)}")

    @_show.register
    def _on_run_check(self, e: RunCheck) -> None:
        self._line(f"[yellow]{e.status}[/yellow] ({text(e.name)}): {text(e.message)}")

    @_show.register
    def _on_run_failed(self, e: RunFailed) -> None:
        if e.resumable:
            self._line(f"[red]run failed[/red] ({e.error_type}); its checkpoints are kept: "
                       f"'progenitor resume {e.run}' continues it")
        else:
            self._line("[red]run failed[/red]: the problem below is in the task or its code; fix it, commit, "
                       "and start a new run (a resume would replay the same commit)")

    @_show.register
    def _on_executor_start(self, e: ExecutorStart) -> None:
        if e.executor == "ray":
            self._line("starting Ray (or joining the cluster at --ray-address)", detail=True)

    @_show.register
    def _on_run_resume(self, e: RunResume) -> None:
        self._line(f"resuming run [bold]{e.run}[/bold]")

    @_show.register
    def _on_safety_base(self, e: SafetyBase) -> None:
        if not e.findings:
            return
        rules = ", ".join(f"{text(rule)} x{n}" for rule, n in e.rules.items())
        self._line(f"the base's own code has {e.findings} review findings ({rules}): context only, each "
                   "candidate is judged on what it adds or changes")
        for line in e.shown:
            self._line(f"  {text(line)}", detail=True)

    @_show.register
    def _on_prepare_data(self, e: PrepareData) -> None:
        self._line("preparing data with the trusted prepare command (once per run)", detail=True)

    @_show.register
    def _on_baseline_start(self, e: BaselineStart) -> None:
        self._line(f"training the human baseline {e.commit[:10]}", detail=True)

    @_show.register
    def _on_baseline_end(self, e: BaselineEnd) -> None:
        metrics = ", ".join(f"{text(k)} {v:.4g}" for k, v in e.metrics.items())
        self._line(f"baseline scored: {metrics}")

    @_show.register
    def _on_architect_proposal(self, e: ArchitectProposal) -> None:
        self._line(f"{_name(e)} proposed: {text(e.hypothesis)}", detail=True)

    @_show.register
    def _on_architect_failed(self, e: ArchitectFailed) -> None:
        self._line(f"{generation_name(e.gen)} [red]architect failed[/red], no candidate this generation: "
                   f"{block(e.reason)}")

    @_show.register
    def _on_coder_failed(self, e: CoderFailed) -> None:
        if e.status == "budget":  # the LLM budget is spent: a stop, not a failure
            self._line(f"{_name(e)} [yellow]not coded[/yellow]: {block(e.reason.removeprefix('not coded: '))}")
        else:
            self._line(f"{_name(e)} [red]coder failed[/red]: {block(e.reason)}")

    @_show.register
    def _on_coder_duplicate(self, e: CoderDuplicate) -> None:
        self._line(f"{_name(e)} [yellow]dropped[/yellow]: {text(e.reason)}")

    @_show.register
    def _on_coder_fix(self, e: CoderFix) -> None:
        if e.fix is not None:
            fix = candidate_name(e.gen, e.fix)
            self._line(f"{_name(e)} crashed: the coder's fix is {fix} ({text(e.status)})")

    @_show.register
    def _on_llm_call(self, e: LlmCall) -> None:
        who = e.role if e.k is None else f"{_name(e)} {e.role}"
        if e.outcome == "ok":
            how = "replayed from the run" if e.cached else f"{e.seconds:.1f} s"
            cut = ", cut at max_tokens" if e.finish_reason == "length" else ""
            self._line(f"[dim]{who}: {text(e.model)}, {e.prompt_tokens}+{e.completion_tokens} tokens, "
                       f"${e.dollars:.4f} ({how}){cut}[/dim]", detail=True)
            return
        if e.cached:
            return  # said when it happened
        status = f" {e.status}" if e.status else ""
        cost = f"; counted ${e.dollars:.4f}, an estimate" if e.estimated else ""
        self._line(f"{who}: [yellow]{text(e.model)} {e.outcome}{status}[/yellow]: {text(e.error)}{cost}")

    @_show.register
    def _on_llm_preflight(self, e: LlmPreflight) -> None:
        self._line(f"llm {text(e.model)}: {text(e.detail)}", detail=e.ok)

    @_show.register
    def _on_llm_recovered(self, e: LlmRecovered) -> None:
        who = e.role if e.k is None else f"{_name(e)} {e.role}"
        what = "left under way by the process that died: counted at an estimate" if e.estimated else \
            "finished before the process died: charged now"
        self._line(f"[yellow]{who} request {text(e.call)}[/yellow] {what}, ${e.dollars:.4f}")

    @_show.register
    def _on_gate_waiting(self, e: GateWaiting) -> None:
        self._line(f"[bold yellow]waiting for a person[/bold yellow] at {e.gate}: {text(e.description)}")
        self._line(text(e.how))

    @_show.register
    def _on_gate_decided(self, e: GateDecided) -> None:
        self._line(f"{e.gate} decided: {e.type} by {text(e.by)} ({e.surface}); going on")

    @_show.register
    def _on_champion_restored(self, e: ChampionRestored) -> None:
        self._line(f"[yellow]champion restored[/yellow] to {e.commit[:10]} (a revert by {text(e.by)})")

    @_show.register
    def _on_safety_review(self, e: SafetyReview) -> None:
        if e.status == "rejected":
            self._line(f"{_name(e)} [red]rejected before running[/red]: {block(e.reason)}")
        elif e.status == "budget":
            self._line(f"{_name(e)} [yellow]not reviewed[/yellow]: {block(e.reason)}")

    @_show.register
    def _on_train_start(self, e: TrainStart) -> None:
        if e.gen > 0:
            self._line(f"{_name(e)} training ({e.commit[:10]})", detail=True)

    @_show.register
    def _on_train_end(self, e: TrainEnd) -> None:
        if e.status != "ok":
            self._line(f"{_name(e)} [red]{e.status}[/red] after {e.duration:.1f}s: "
                       f"{block(e.reason)}")

    @_show.register
    def _on_score(self, e: Score) -> None:
        if e.status == "scored":
            self._line(f"{_name(e)} scored {_fmt(e.value)}", detail=True)
        else:
            self._line(f"{_name(e)} [red]failed scoring[/red]: {block(e.reason)}")

    @_show.register
    def _on_oversight_decision(self, e: OversightDecision) -> None:
        colour = "green" if e.action == "approve" else "yellow"
        self._line(f"{generation_name(e.gen)} decision [{colour}]{e.action}[/{colour}] by {e.actor}: {text(e.reason)}")

    @_show.register
    def _on_generation_end(self, e: GenerationEnd) -> None:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(e.counts.items())) or "no candidate"
        idle = f"; {e.idle_slot_seconds:.1f} slot-s idle in {e.wall_seconds:.1f} s" \
            if e.idle_slot_seconds is not None and e.wall_seconds is not None else ""
        self._line(f"{generation_name(e.gen)} done: champion {_fmt(e.champion_value)} ({counts}{idle})")
        if e.untrained:
            self._line(f"{generation_name(e.gen)} [red]trained nothing[/red]: {block(e.untrained)}")

    @_show.register
    def _on_gate_notified(self, e: GateNotified) -> None:
        if not e.ok:  # a person may not know the gate is open: said where the run is watched
            self._line(f"{generation_name(e.gen)} [yellow]could not notify[/yellow] by {text(e.channel)} "
                       f"after {e.attempts} attempts: {text(e.detail)}")

    @_show.register
    def _on_test_failed(self, e: TestFailed) -> None:
        self._line(f"{_name(e)} [yellow]test split not scored[/yellow]: {block(e.reason)}")

    @_show.register
    def _on_train_watch_failed(self, e: TrainWatchFailed) -> None:
        self._line(f"{_name(e)} [yellow]early stopping gave up watching[/yellow] (it trains on): {block(e.reason)}")

    @_show.register
    def _on_run_stopping(self, e: RunStopping) -> None:
        self._line(f"[yellow]stopping[/yellow]: {text(e.reason)}; training under way is cancelled")

    def print_summary(self, summary: Any) -> None:
        from progenitor.cli.views import print_summary

        print_summary(self.console, summary)
