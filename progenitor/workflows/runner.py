"""Start, resume and drive runs: the graph with its SQLite checkpointer, the executor,
stop requests (Ctrl-C, ``progenitor stop``) and the closing summary."""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from progenitor.checks import CommitTree, preflight
from progenitor.compute.jobs import limits_for
from progenitor.errors import RunStopped, UserError
from progenitor.evaluation.honesty import assess, holdout_size
from progenitor.lineage import Lineage
from progenitor.options import RunOptions
from progenitor.oversight.database import redact
from progenitor.oversight.store import DecisionStore
from progenitor.run.events import (
    ExecutorStart,
    RunCheck,
    RunContinue,
    RunEnd,
    RunFailed,
    RunResume,
    RunStart,
    RunStopping,
    RunWarning,
)
from progenitor.run.events import (
    RunStopped as RunStoppedEvent,
)
from progenitor.run.processes import alive
from progenitor.run.rundir import RunDir, find_run, new_run_id, register_run
from progenitor.run.summary import RunSummary
from progenitor.sandbox.seal import check_limits, check_sealed, process_options
from progenitor.task.spec import TaskSpec, load_spec
from progenitor.workflows import evidence
from progenitor.workflows.llm_usage import charge_probes, check_llm, llm_roles, preflight_models, recover
from progenitor.workflows.state import AgentFactory, EventListener, RunContext, State


def effective_spec(spec: TaskSpec, options: RunOptions) -> TaskSpec:
    budget = spec.budget.model_copy(update={k: v for k, v in {
        "generations": options.generations, "candidates": options.candidates}.items() if v is not None})
    update: dict[str, Any] = {"budget": budget}
    if options.sandbox:
        update["sandbox"] = spec.sandbox.model_copy(update={"backend": options.sandbox})
    return spec.model_copy(update=update)


def _context(run: RunDir, lineage: Lineage, spec: TaskSpec, options: RunOptions, backend: str,
             backend_options: dict, architect: Optional[AgentFactory],
             on_event: Optional[EventListener]) -> RunContext:
    store = DecisionStore(run.repo_root, options.store)
    ctx = RunContext(
        run=run, lineage=lineage, spec=spec, options=options, backend=backend, backend_options=backend_options,
        audit=store.audit_log(run.repo_root), store=store,
        factories={"architect": architect} if architect else {},
    )
    if on_event:
        ctx.listeners.append(on_event)
    return ctx


def start_run(repo_dir: Path, options: Optional[RunOptions] = None, *, architect: Optional[AgentFactory] = None,
              on_event: Optional[EventListener] = None, run_id: Optional[str] = None, detach: bool = False) -> RunSummary:
    """Start a new run on a model repo and drive it until it ends or stops. At a human gate it
    waits for a decision made anywhere; ``detach``: return at the gate instead, the run waiting."""
    ctx, graph_input = new_run(repo_dir, options, architect=architect, on_event=on_event, run_id=run_id)
    return _drive(ctx, graph_input, detach)


@contextmanager
def open_run(repo_dir: Path, options: Optional[RunOptions] = None, *, architect: Optional[AgentFactory] = None,
             on_event: Optional[EventListener] = None, run_id: Optional[str] = None) -> Iterator[tuple[RunContext, dict]]:
    """A new run, ready to be driven by your own graph: ``(context, graph input)``, with the
    run's executor and ledger open until the block ends. ``build_graph(context)`` is then the
    loop to embed as a subgraph (it uses the parent graph's checkpointer)."""
    ctx, graph_input = new_run(repo_dir, options, architect=architect, on_event=on_event, run_id=run_id)
    with session(ctx):
        yield ctx, graph_input


def new_run(repo_dir: Path, options: Optional[RunOptions] = None, *, architect: Optional[AgentFactory] = None,
            on_event: Optional[EventListener] = None, run_id: Optional[str] = None) -> tuple[RunContext, dict]:
    """Check everything a run needs, create its directory and context; nothing is trained yet."""
    from progenitor.sandbox import resolve_backend

    options = options or RunOptions()
    lineage = Lineage(Path(repo_dir))
    load_spec(lineage.root)  # the working copy first, so a broken file is named as the user sees it
    base = lineage.head()
    dirty = lineage.uncommitted()
    spec = effective_spec(lineage.spec_at(base), options)
    roles = check_agents(spec, options, architect)
    warnings = preflight(spec, CommitTree(lineage, base), options.executor, options.ray_address)
    backend_options = _backend_options(spec, lineage.root)
    backend, why = resolve_backend(spec.sandbox.backend, **backend_options)
    sealed, isolation = check_sealed(backend, options.allow_unsealed)
    if backend != "docker":
        backend_options = process_options(options.allow_unsealed, options.allow_unenforced_limits)
    unenforced = check_limits(backend, backend_options, limits_for(spec), options.allow_unenforced_limits)
    # The models last of the checks (a bad spec costs no request), before any data is prepared.
    probes = preflight_models(spec, roles) if options.preflight else []
    run = RunDir(lineage.root, _claim(lineage.root, options, spec, run_id))
    saved = options.model_copy(update={"store": redact(options.store) if options.store else None})
    run.create({"repo": str(lineage.root), "base": base, "options": saved.model_dump(), "backend": backend,
                "backend_options": backend_options, "status": "running", "task": spec.name,
                "sealed": sealed, "isolation": isolation, "store": saved.store, "unenforced_limits": unenforced})
    register_run(run.run_id, lineage.root)
    ctx = _context(run, lineage, spec, options, backend, backend_options, architect, on_event)
    ctx.emit(RunStart(repo=str(lineage.root), base=base, backend=backend, why=why, task=spec.name,
                      generations=spec.budget.generations, candidates=spec.budget.candidates, isolation=isolation,
                      metric=spec.objective.metric, mode=spec.search.mode))
    for check in warnings:
        ctx.emit(RunCheck(name=check.name, status=check.status, message=check.detail))
    _charge_probes(ctx, probes)
    if not sealed:
        ctx.emit(RunWarning(message=f"UNSEALED SANDBOX ({isolation}): --allow-unsealed was given, so "
                                    "candidates can read every file you can, the holdout labels included"))
    if unenforced:
        ctx.emit(RunWarning(message=(
            "UNENFORCED LIMITS: --allow-unenforced-limits was given, so candidates are not held to their "
            + "; ".join(f"{name} limit ({why})" for name, why in unenforced.items()))))
    if spec.budget.dollars is not None and not llm_roles(spec, options.architect, options.coder):
        ctx.emit(RunWarning(message="budget.dollars caps LLM spend, but no agent of this run calls an LLM "
                                    "(the search architect is offline): the cap cannot be reached"))
    if dirty:
        ctx.emit(RunWarning(message=(f"{len(dirty)} uncommitted change(s) ({', '.join(dirty[:3])}"
                                     f"{', ...' if len(dirty) > 3 else ''}) are not part of this run: "
                                     f"it starts from commit {base[:10]}")))
    return ctx, {"run_id": run.run_id, "base": base, "generation": 0}


def _claim(root: Path, options: RunOptions, spec: TaskSpec, run_id: Optional[str]) -> str:
    """A run id no other run has: in a team store, ids are claimed there (two machines may draw one)."""
    if not options.store:
        return run_id or new_run_id()
    store = DecisionStore(root, options.store)
    for _ in range(20):
        candidate = run_id or new_run_id()
        if store.claim_run(candidate, root, spec.name):
            return candidate
        if run_id:
            raise UserError(f"run id {run_id} is taken in the store {store.where} by another repo or machine")
    raise UserError(f"could not find a free run id in the store {store.where}")


def resume_run(run_id: str, repo: Optional[Path] = None, *, architect: Optional[AgentFactory] = None,
               on_event: Optional[EventListener] = None, detach: bool = False, store: Optional[str] = None
               ) -> RunSummary:
    """Continue a run from its last checkpoint; finished work is looked up, not redone. A run
    waiting at a gate goes on with the decision made there (or waits for one). ``store``: the
    team store's URL with its password, when the run's saved URL lacks one libpq can find."""
    run = find_run(run_id, repo)
    meta = run.meta
    driver = meta.get("pid")
    if meta.get("status") in ("running", "waiting") and driver and driver != os.getpid() and alive(driver):
        raise UserError(f"run {run_id} is driven by process {driver} still: it goes on by itself once decided "
                        f"('progenitor stop {run_id}' first to take it over)")
    lineage = Lineage(run.repo_root)
    options = RunOptions.model_validate(meta.get("options", {}))
    if store:
        options = options.model_copy(update={"store": store})
    spec = effective_spec(lineage.spec_at(meta["base"]), options)
    check_sealed(meta.get("backend", "process"), options.allow_unsealed)  # the machine may have changed
    unenforced = check_limits(meta.get("backend", "process"), meta.get("backend_options", {}), limits_for(spec),
                              options.allow_unenforced_limits)
    if unenforced != meta.get("unenforced_limits", {}):
        run.update_meta(unenforced_limits={**meta.get("unenforced_limits", {}), **unenforced})
    # The key may have been unset since the run started: one sentence now, not a failed call later.
    roles = check_llm(spec, "(given)" if architect is not None else options.architect, options.coder)
    probes = _preflight(run, spec, roles) if options.preflight and _will_call(run, meta, spec) else []
    run.clear_stop()
    run.update_meta(status="running")
    ctx = _context(run, lineage, spec, options, meta.get("backend", "process"), meta.get("backend_options", {}),
                   architect, on_event)
    ctx.emit(RunResume())
    _charge_probes(ctx, probes)
    return _drive(ctx, None, detach)


def continue_run(run_id: str, repo: Optional[Path] = None, generations: Optional[int] = None, *,
                 architect: Optional[AgentFactory] = None, on_event: Optional[EventListener] = None,
                 detach: bool = False) -> RunSummary:
    """Extend a finished run with ``generations`` more (default: the task's ``budget.generations``),
    warm: the same run, its champion still the champion, its search's study and journal going on,
    nothing trained again; its summary still compares with the human baseline."""
    run = find_run(run_id, repo)
    meta = run.meta
    if meta.get("status") != "finished":
        raise UserError(f"run {run_id} is {meta.get('status')}, not finished: 'progenitor resume {run_id}' carries "
                        f"it on; --continue extends a run that finished")
    lineage = Lineage(run.repo_root)
    options = RunOptions.model_validate(meta.get("options", {}))
    done = int((meta.get("summary") or {}).get("generations") or 0)
    base_spec = lineage.spec_at(meta["base"])
    extra = generations or base_spec.budget.generations
    before = effective_spec(base_spec, options)
    # The budget's generations: in the asynchronous mode, a generation of the budget is
    # budget.candidates of the run's generations of one.
    spent = -(-done // before.budget.candidates) if before.search.mode == "async" else done
    options = options.model_copy(update={"generations": spent + extra})
    spec = effective_spec(base_spec, options)
    check_sealed(meta.get("backend", "process"), options.allow_unsealed)
    unenforced = check_limits(meta.get("backend", "process"), meta.get("backend_options", {}), limits_for(spec),
                              options.allow_unenforced_limits)
    roles = check_llm(spec, "(given)" if architect is not None else options.architect, options.coder)
    probes = _preflight(run, spec, roles) if options.preflight and _will_call(run, {}, spec) else []
    run.clear_stop()
    run.update_meta(unenforced_limits={**meta.get("unenforced_limits", {}), **unenforced})
    run.update_meta(status="running", options=options.model_dump(mode="json"),
                    continued=[*meta.get("continued", []), {"after": done, "generations": extra}])
    ctx = _context(run, lineage, spec, options, meta.get("backend", "process"), meta.get("backend_options", {}),
                   architect, on_event)
    ctx.emit(RunContinue(generations=extra, first=done + 1))
    _charge_probes(ctx, probes)
    return _drive(ctx, None, detach, reopen=True)


def _will_call(run: RunDir, meta: dict, spec: TaskSpec) -> bool:
    """Can a resumed run still call a model? Not once it ended, nor with its dollars spent (no
    request may start then, a probe neither)."""
    if meta.get("status") in ("finished", "stalled"):
        return False
    if spec.budget.dollars is not None and run.ledger.exists():
        from progenitor.run.ledger import Ledger

        return Ledger(run.ledger).totals().dollars < spec.budget.dollars
    return True


def _preflight(run: RunDir, spec: TaskSpec, roles: list[str]) -> list:
    """The preflight of a run that exists (a resume, a continuation): when a model does not answer,
    the requests sent are charged to its ledger before the run stops (they were paid)."""
    from progenitor.errors import LlmUnavailable
    from progenitor.run.ledger import Ledger

    try:
        return preflight_models(spec, roles)
    except LlmUnavailable as exc:
        charge_probes(Ledger(run.ledger), run.run_id, getattr(exc, "probes", []), lambda event: None)
        raise


def _charge_probes(ctx: RunContext, probes: list) -> None:
    if probes:
        from progenitor.run.ledger import Ledger

        charge_probes(Ledger(ctx.run.ledger), ctx.run.run_id, probes, ctx.emit)


def check_agents(spec: TaskSpec, options: RunOptions, architect: Optional[AgentFactory]) -> list[str]:
    """Every agent the run will ask exists: an unknown name is one sentence now, not a crash later.
    The roles given to an LLM agent, each model's key variable checked."""
    from progenitor.agents import registry

    if architect is None:
        registry.factory("architect", options.architect or spec.agents.architect)
    registry.factory("coder", options.coder or spec.agents.coder)
    for name in spec.agents.reviewers:
        registry.factory("reviewer", name)
    # An architect the caller hands in is theirs to configure: only the named agents are checked.
    return check_llm(spec, "(given)" if architect is not None else options.architect, options.coder)


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
    if ctx.options.executor == "ray":
        return get_executor("ray", visible, address=ctx.options.ray_address)
    return get_executor(ctx.options.executor, visible, max_parallel=ctx.options.max_parallel)


def start_executor(ctx: RunContext):
    """The run's executor, starting in the background while the run prepares (Ray's start takes
    seconds). A local Ray instance lends its place to a local pool until it is up: the same
    machine, the same sandbox, so the baseline trains while Ray starts."""
    from progenitor.compute.starting import StartingExecutor

    interim = None
    if ctx.options.executor == "ray" and not (ctx.options.ray_address or os.environ.get("RAY_ADDRESS")):
        from progenitor.compute import get_executor

        interim = get_executor("local", ctx.run.visible)
    return StartingExecutor(ctx.options.executor, lambda: make_executor(ctx), interim=interim)


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
        self.ctx.emit(RunStopping(reason="interrupted (Ctrl-C)"))
        self._cancel()

    def _cancel(self):
        if self.ctx.pool is not None:
            self.ctx.pool.cancel()  # nothing more starts
        if self.ctx.executor is not None:
            self.ctx.executor.cancel()

    def _poll(self):
        while not self.done.wait(0.5):
            if self.ctx.run.stop_requested() and self.ctx.executor is not None:
                self._cancel()
                return


@contextmanager
def session(ctx: RunContext) -> Iterator[RunContext]:
    """One session of a run: its leftovers swept, the ledger's clock running, the executor
    open; on the way out the executor is closed and the ledger saved, whatever happened."""
    from progenitor.run.ledger import Ledger

    _sweep(ctx)
    ctx.ledger = Ledger(ctx.run.ledger)
    ctx.ledger.start_clock()
    recover(ctx)  # requests a killed process paid for and never charged
    ctx.emit(ExecutorStart(executor=ctx.options.executor))
    ctx.executor = start_executor(ctx)
    ctx.run.update_meta(status="running", pid=os.getpid())
    try:
        yield ctx
    finally:
        try:
            if ctx.pool is not None:
                ctx.pool.close()
                ctx.pool = None
        finally:
            ctx.executor.close()
            ctx.ledger.stop_clock()
            ctx.ledger.save()


@contextmanager
def checkpointer(ctx: RunContext) -> Iterator[Any]:
    """LangGraph's checkpointer for the run: its repo's SQLite file, or the team store's
    PostgreSQL (LangGraph's own Postgres saver; its tables set up once, under a lock, since
    several machines may start at once)."""
    if not ctx.store.shared:
        from langgraph.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(str(ctx.run.checkpoints)) as saver:
            yield saver
        return
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(ctx.store.url) as saver:
        # One set-up at a time, across machines. Tried, not waited for inside a statement: the
        # set-up makes an index CONCURRENTLY, which waits for every open transaction, a blocked
        # lock request included (that would be a deadlock).
        while not saver.conn.execute("SELECT pg_try_advisory_lock(7071) AS got").fetchone()["got"]:
            time.sleep(0.2)
        try:
            saver.setup()
        finally:
            saver.conn.execute("SELECT pg_advisory_unlock(7071)")
        yield saver


def _drive(ctx: RunContext, graph_input: Optional[dict], detach: bool = False, reopen: bool = False) -> RunSummary:
    from progenitor.workflows.graph import build_graph, recursion_limit
    from progenitor.workflows.waiting import drive

    config = {"configurable": {"thread_id": ctx.run.run_id},
              "recursion_limit": recursion_limit(ctx.spec.generations_total, ctx.spec.search.mode == "async")}
    status = "finished"
    try:
        with session(ctx), checkpointer(ctx) as saver, _StopWatch(ctx):
            graph = build_graph(ctx, saver)
            if reopen:  # a finished run goes on after its last promote: no stop reason, so to the architect
                graph.update_state(config, {"stop_reason": None}, as_node="promote")
            try:
                status = drive(ctx, graph, config, graph_input, detach)
            except RunStopped as exc:
                status = "stopped"
                ctx.emit(RunStoppedEvent(reason=str(exc)))
            values = graph.get_state(config).values
    except BaseException as exc:
        # The run is resumable from its last checkpoint; say so instead of "running" forever.
        why = str(exc) or type(exc).__name__
        ctx.run.update_meta(status="failed", stop_reason=f"{type(exc).__name__}: {why}"[:500])
        ctx.emit(RunFailed(error=why[:500], error_type=type(exc).__name__, resumable=not isinstance(exc, UserError)))
        raise
    return finish(ctx, values, status)


def finish(ctx: RunContext, values: dict, status: str = "finished") -> RunSummary:
    """Close a run that reached an end: its summary, in run.json and as the ``run.end`` event."""
    summary = summarize_run(ctx, values, status)
    ctx.run.update_meta(status=summary.status, stop_reason=summary.stop_reason,
                        summary=summary.model_dump(), ledger=summary.ledger)
    ctx.emit(RunEnd(**summary.model_dump()))
    return summary


def summarize_run(ctx: RunContext, values: dict, status: str) -> RunSummary:
    from progenitor.evaluation.after_scoring import drift
    from progenitor.lineage import champion_ref

    state = State.of(values)
    metric = ctx.spec.objective.metric
    counts: dict[str, int] = {}
    for gen in state.history:
        for cand_status, n in gen.counts.items():
            counts[cand_status] = counts.get(cand_status, 0) + n
    baseline, champion = state.baseline, state.champion
    if status == "finished" and not state.stop_reason:
        status = "stopped"
    from progenitor.workflows.selection import stalled

    if status == "finished" and stalled(ctx.spec.stall_generations, state.history) == state.stop_reason:
        status = "stalled"
    compared = 1 + counts.get("scored", 0)  # the baseline, and every candidate the scorer measured
    honesty = assess(ctx.spec, baseline, champion, compared, holdout_size(ctx.spec, ctx.run.data))
    honesty = evidence.summarize(ctx, state, honesty)
    waiting = ctx.run.meta.get("waiting") if status == "waiting" else None
    return RunSummary(
        run_id=ctx.run.run_id, repo=str(ctx.run.repo_root), status=status,
        stop_reason=state.stop_reason or ctx.run.stop_requested(), metric=metric, goal=ctx.spec.objective.goal,
        baseline=baseline.metrics.get(metric) if baseline else None,
        champion=champion.metrics.get(metric) if champion else None,
        champion_commit=champion.sha if champion else None, champion_ref=champion_ref(ctx.run.run_id),
        generations=len(state.history), counts=counts, tried=sum(counts.values()),
        seconds=round(ctx.ledger.run_wall_seconds(), 1), backend=ctx.backend, executor=ctx.options.executor,
        mode=ctx.spec.search.mode, slots=ctx.ledger.data.slots, idle_slot_seconds=ctx.ledger.totals().idle_slot_seconds,
        ledger=ctx.ledger.summary(), honesty=honesty, waiting=waiting,
        drift=drift(ctx.spec, baseline.metrics if baseline else {}, champion.metrics if champion else {}),
        sealed=ctx.run.meta.get("sealed", True), isolation=ctx.run.meta.get("isolation", ""),
        unenforced_limits=ctx.run.meta.get("unenforced_limits", {}),
    )
