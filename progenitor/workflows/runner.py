"""Start, resume and drive runs: the graph with its SQLite checkpointer, the executor,
stop requests (Ctrl-C, ``progenitor stop``) and the closing summary."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from pydantic import BaseModel

from progenitor.audit import AuditLog
from progenitor.checks import CommitTree, preflight
from progenitor.errors import RunStopped, UserError
from progenitor.lineage import Lineage
from progenitor.runs import STATE_DIR, RunDir, find_run, new_run_id, register_run
from progenitor.spec import SPEC_FILE, TaskSpec, load_spec, load_spec_text
from progenitor.workflows.state import RunContext, RunOptions

EventListener = Callable[[dict], None]
ArchitectFactory = Callable[[RunContext], Any]


class RunSummary(BaseModel):
    run_id: str
    repo: str
    status: str
    """finished, stopped or waiting."""
    stop_reason: Optional[str] = None
    metric: str
    goal: str
    baseline: Optional[float] = None
    champion: Optional[float] = None
    champion_commit: Optional[str] = None
    champion_ref: str
    generations: int = 0
    counts: dict[str, int] = {}
    """Candidates by final status: scored, failed, rejected, timeout, pruned, ..."""
    tried: int = 0
    seconds: float = 0.0
    backend: str = ""
    executor: str = ""
    ledger: dict = {}
    """CPU-, GPU- and wall-seconds (and hours), LLM dollars and tokens, of the whole run."""


def search_architect(ctx: RunContext):
    from progenitor.agents.architect import SearchArchitect

    seed = ctx.options.seed if ctx.options.seed is not None else ctx.spec.seed
    return SearchArchitect(ctx.spec, ctx.run.study, ctx.run.run_id, seed=seed)


def committed_spec(lineage: Lineage, sha: str) -> TaskSpec:
    text = lineage.show(sha, SPEC_FILE)
    if text is None:
        raise UserError(f"{lineage.root / SPEC_FILE} is not committed at {sha[:10]}; commit it first (runs read the committed task)")
    return load_spec_text(text, f"{lineage.root / SPEC_FILE} (commit {sha[:10]})")


def effective_spec(spec: TaskSpec, options: RunOptions) -> TaskSpec:
    budget = spec.budget.model_copy(update={k: v for k, v in {
        "generations": options.generations, "candidates": options.candidates}.items() if v is not None})
    update: dict[str, Any] = {"budget": budget}
    if options.sandbox:
        update["sandbox"] = spec.sandbox.model_copy(update={"backend": options.sandbox})
    return spec.model_copy(update=update)


def _context(run: RunDir, lineage: Lineage, spec: TaskSpec, options: RunOptions, backend: str,
             backend_options: dict, architect: Optional[ArchitectFactory],
             on_event: Optional[EventListener]) -> RunContext:
    ctx = RunContext(
        run=run, lineage=lineage, spec=spec, options=options, backend=backend, backend_options=backend_options,
        audit=AuditLog(run.repo_root / STATE_DIR / "audit.jsonl"),
        architect_factory=architect or search_architect,
    )
    if on_event:
        ctx.listeners.append(on_event)
    return ctx


def start_run(repo_dir: Path, options: Optional[RunOptions] = None, *, architect: Optional[ArchitectFactory] = None,
              on_event: Optional[EventListener] = None, run_id: Optional[str] = None) -> RunSummary:
    """Start a new run on a model repo and drive it until it ends or stops."""
    from progenitor.sandbox import resolve_backend

    options = options or RunOptions()
    lineage = Lineage(Path(repo_dir))
    load_spec(lineage.root)  # the working copy first, so a broken file is named as the user sees it
    base = lineage.head()
    dirty = lineage.uncommitted()
    spec = effective_spec(committed_spec(lineage, base), options)
    if spec.oversight.mode == "approver":
        raise UserError("oversight.mode 'approver' is not available in this version yet; use 'auto' or 'auditor'")
    warnings = preflight(spec, CommitTree(lineage, base), options.executor, options.ray_address)
    backend_options = _backend_options(spec, lineage.root)
    backend, why = resolve_backend(spec.sandbox.backend, **backend_options)
    if backend != "docker":
        backend_options = {}
    run = RunDir(lineage.root, run_id or new_run_id())
    run.create({"repo": str(lineage.root), "base": base, "options": options.model_dump(), "backend": backend,
                "backend_options": backend_options, "status": "running", "task": spec.name})
    register_run(run.run_id, lineage.root)
    ctx = _context(run, lineage, spec, options, backend, backend_options, architect, on_event)
    ctx.emit("run.start", repo=str(lineage.root), base=base, backend=backend, why=why, task=spec.name,
             generations=spec.budget.generations, candidates=spec.budget.candidates, metric=spec.objective.metric)
    for check in warnings:
        ctx.emit("run.check", name=check.name, status=check.status, message=check.detail)
    if spec.budget.dollars is not None:
        ctx.emit("run.warning", message="budget.dollars caps LLM spend, but no agent of this run calls an LLM "
                                        "(the search architect is offline): the cap cannot be reached")
    if dirty:
        ctx.emit("run.warning", message=(f"{len(dirty)} uncommitted change(s) ({', '.join(dirty[:3])}"
                                         f"{', ...' if len(dirty) > 3 else ''}) are not part of this run: "
                                         f"it starts from commit {base[:10]}"))
    return _drive(ctx, {"run_id": run.run_id, "base": base, "generation": 0})


def resume_run(run_id: str, repo: Optional[Path] = None, *, architect: Optional[ArchitectFactory] = None,
               on_event: Optional[EventListener] = None) -> RunSummary:
    """Continue a run from its last checkpoint; finished work is looked up, not redone."""
    run = find_run(run_id, repo)
    meta = run.meta
    lineage = Lineage(run.repo_root)
    options = RunOptions.model_validate(meta.get("options", {}))
    spec = effective_spec(committed_spec(lineage, meta["base"]), options)
    run.clear_stop()
    run.update_meta(status="running")
    ctx = _context(run, lineage, spec, options, meta.get("backend", "process"), meta.get("backend_options", {}),
                   architect, on_event)
    ctx.emit("run.resume")
    return _drive(ctx, None)


def _backend_options(spec: TaskSpec, repo_root: Path) -> dict:
    """The Docker image candidates run in: the task's own, else the one ``progenitor sandbox
    build`` makes for this repo's requirements (the bare base image has no ML libraries)."""
    if spec.sandbox.image:
        return {"image": spec.sandbox.image}
    if spec.sandbox.backend == "process":
        return {}
    from progenitor.errors import SandboxError
    from progenitor.sandbox.docker.images import task_image

    try:
        return {"image": task_image(repo_root)}
    except SandboxError:
        if spec.sandbox.backend == "docker":
            raise
        return {}  # auto: no daemon or no base image, so the process backend it is


def make_executor(ctx: RunContext):
    from progenitor.compute import get_executor

    visible = ctx.run.visible
    if ctx.options.executor == "local":
        return get_executor("local", visible, max_parallel=ctx.options.max_parallel)
    return get_executor(ctx.options.executor, visible, address=ctx.options.ray_address)


def _sweep(ctx: RunContext) -> None:
    if ctx.backend == "docker":
        from progenitor.sandbox.docker import DockerSandbox

        # Only this run's leftovers: other runs may be training right now.
        DockerSandbox(**ctx.backend_options).sweep(run=ctx.run.run_id)


class _StopWatch:
    """Turns a stop request (Ctrl-C here, or a STOP file from ``progenitor stop``) into a cancel."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.done = threading.Event()
        self.previous = None
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _on_sigint(self, signum, frame):
        if self.ctx.run.stop_requested():
            raise KeyboardInterrupt  # a second Ctrl-C: stop hard
        self.ctx.run.request_stop("interrupted (Ctrl-C)")
        self.ctx.emit("run.stopping", reason="interrupted (Ctrl-C)")
        if self.ctx.executor is not None:
            self.ctx.executor.cancel()

    def _poll(self):
        while not self.done.wait(0.5):
            if self.ctx.run.stop_requested() and self.ctx.executor is not None:
                self.ctx.executor.cancel()
                return


def _drive(ctx: RunContext, graph_input: Optional[dict]) -> RunSummary:
    from langgraph.checkpoint.sqlite import SqliteSaver

    from progenitor.workflows.graph import build_graph, recursion_limit

    from progenitor.ledger import Ledger

    _sweep(ctx)
    ctx.ledger = Ledger(ctx.run.ledger)
    ctx.ledger.start_clock()
    ctx.emit("executor.start", executor=ctx.options.executor)
    ctx.executor = make_executor(ctx)
    config = {"configurable": {"thread_id": ctx.run.run_id},
              "recursion_limit": recursion_limit(ctx.spec.budget.generations)}
    status = "finished"
    ctx.run.update_meta(status="running", pid=os.getpid())
    try:
        with SqliteSaver.from_conn_string(str(ctx.run.checkpoints)) as saver, _StopWatch(ctx):
            graph = build_graph(ctx, saver)
            try:
                for _ in graph.stream(graph_input, config, stream_mode="updates"):
                    pass
            except RunStopped as exc:
                status = "stopped"
                ctx.emit("run.stopped", reason=str(exc))
            values = graph.get_state(config).values
    except BaseException as exc:
        # The run is resumable from its last checkpoint; say so instead of "running" forever.
        why = str(exc) or type(exc).__name__
        ctx.run.update_meta(status="failed", stop_reason=f"{type(exc).__name__}: {why}"[:500])
        ctx.emit("run.failed", error=why[:500], error_type=type(exc).__name__, resumable=not isinstance(exc, UserError))
        raise
    finally:
        ctx.executor.close()
        ctx.ledger.stop_clock()
        ctx.ledger.save()
    summary = summarize_run(ctx, values, status)
    ctx.run.update_meta(status=summary.status, stop_reason=summary.stop_reason,
                        summary=summary.model_dump(), ledger=summary.ledger)
    ctx.emit("run.end", **summary.model_dump())
    return summary


def summarize_run(ctx: RunContext, values: dict, status: str) -> RunSummary:
    from progenitor.lineage import champion_ref

    metric = ctx.spec.objective.metric
    counts: dict[str, int] = {}
    for gen in values.get("history", []):
        for cand_status, n in gen.get("counts", {}).items():
            counts[cand_status] = counts.get(cand_status, 0) + n
    baseline = values.get("baseline") or {}
    champion = values.get("champion") or {}
    stop_reason = values.get("stop_reason")
    if status == "finished" and not stop_reason:
        status = "stopped"
    return RunSummary(
        run_id=ctx.run.run_id, repo=str(ctx.run.repo_root), status=status, stop_reason=stop_reason or ctx.run.stop_requested(),
        metric=metric, goal=ctx.spec.objective.goal,
        baseline=(baseline.get("metrics") or {}).get(metric), champion=(champion.get("metrics") or {}).get(metric),
        champion_commit=champion.get("sha"), champion_ref=champion_ref(ctx.run.run_id),
        generations=len(values.get("history", [])), counts=counts, tried=sum(counts.values()),
        seconds=round(ctx.ledger.run_wall_seconds(), 1), backend=ctx.backend, executor=ctx.options.executor,
        ledger=ctx.ledger.summary(),
    )
