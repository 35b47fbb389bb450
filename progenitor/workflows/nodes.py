"""The nodes of the loop up to the trusted score. Each takes the typed ``State``, does its side
effects idempotently (keyed by run / generation / candidate, results on disk), and returns an
``Update`` of the fields it changes. Agents are asked here and only here; what they return is
turned into events, records and commits here, and nowhere else. Selection, oversight and
promotion are in ``selection``, the human gates and the nodes around them in ``gates``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable, Optional, TypeVar

from progenitor.agents import safety
from progenitor.agents.base import Baseline, CodeChange
from progenitor.agents.coder.offline import read_params
from progenitor.boundary import tree_files
from progenitor.candidate import Candidate, Champion, DiffStats, Proposal
from progenitor.candidate.keys import CandidateKey
from progenitor.compute.jobs import training_findings
from progenitor.errors import CandidateError, LlmBudgetSpent, ModelBehaviorError, UnsafePathError, UserError
from progenitor.evaluation import after_scoring
from progenitor.evaluation.scorer import prepare_data
from progenitor.lineage import base_ref, champion_ref
from progenitor.lineage.git import restore_worktree
from progenitor.oversight.policy import held_for_person
from progenitor.run.events import (
    ArchitectFailed,
    ArchitectProposal,
    BaselineEnd,
    BaselineStart,
    CoderCommit,
    CoderDuplicate,
    CoderFailed,
    PrepareData,
    PrepareVisible,
    SafetyBase,
    SafetyReview,
    SafetyTask,
)
from progenitor.run.events import Score as ScoreEvent
from progenitor.run.rundir import read_json, write_json
from progenitor.workflows import advice, archive
from progenitor.workflows.journal import fingerprints, propose_context
from progenitor.workflows.scoring import score_dir, test_metrics
from progenitor.workflows.state import RunContext, State, Update
from progenitor.workflows.training import train

__all__ = ["architect", "coder", "each", "prepare", "safety_review", "scorer", "settle_baseline", "submit_baseline",
           "test_metrics", "trainer"]

BASE_SHOWN = 20
"""Findings of the base's own code listed in the run-start event (all are counted)."""

T = TypeVar("T")
R = TypeVar("R")

# An agent that misbehaves (``ModelBehaviorError``) is not asked again here: its call had its
# whole budget of retries and repairs already (``progenitor.llm.session``), and asking again
# would multiply it. The failure is recorded on the candidate (or the generation) and shown.


# -- helpers ----------------------------------------------------------------------------------
def each(ctx: RunContext, work: Callable[[T], R], items: list[T]) -> list[R]:
    """``work`` over ``items``, in order; at most ``llm.parallel`` at once when the run's agents
    call a language model (their calls are what takes time), one after another otherwise."""
    width = min(len(items), ctx.spec.llm.parallel if ctx.spec.llm is not None else 1)
    if width <= 1:
        return [work(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="progenitor-agent") as pool:
        return list(pool.map(work, items))


def save(ctx: RunContext, cand: Candidate, publish: bool = False) -> None:
    """Keep a candidate's record in the run directory; ``publish``: also as its git note
    (done once its record is final, so the notes ref gets one commit per candidate)."""
    record = cand.record()
    write_json(ctx.run.record_file(cand.gen, cand.k), record)
    if publish and cand.sha and ctx.lineage.read_note(cand.sha) != record:
        ctx.lineage.write_note(cand.sha, record)


def written(change: Callable[[Path], CodeChange]) -> Callable[[Path], str]:
    """An edit for ``Lineage.commit_candidate``: ask the coder for its change of the tree, put the
    tree back as it was (a coder reads the tree, it does not write it: what it wrote by itself is
    not committed), write the change's edits (never through a link, never into ``.git``:
    ``tree_files``), give its message."""
    def edit(tree: Path) -> str:
        pointer = (tree / ".git").read_bytes()
        made = change(tree)
        if (tree / ".git").read_bytes() != pointer:
            raise ModelBehaviorError("the coder changed the worktree's .git pointer; refusing to go on")
        restore_worktree(tree)
        for e in made.edits:
            try:
                if e.content is None:
                    tree_files.remove(tree, e.path)
                else:
                    tree_files.write_text(tree, e.path, e.content)
            except UnsafePathError as exc:  # the coder's edit, not the tree's fault: the candidate fails
                raise ModelBehaviorError(f"edit target {exc}") from None
            except (OSError, UnicodeError) as exc:
                raise ModelBehaviorError(f"edit of {e.path!r} failed: {getattr(exc, 'strerror', None) or exc}") from None
        return made.message

    return edit


def constitution(ctx: RunContext):
    """The base's constitution, loaded and checked once per run session.

    A task the constitution itself rejects (a required guard it does not declare) would
    reject every candidate: that is one clear error at the start instead."""
    if ctx.constitution is None:
        rules, problems = safety.check_task(ctx.spec, ctx.run.trusted)
        blocking = safety.blocking(problems, ctx.spec.safety.block_at)
        if blocking:
            raise UserError(f"the task breaks its own constitution: {blocking[0].message}")
        for finding in problems:
            ctx.emit(SafetyTask(rule=finding.rule, severity=finding.severity, message=finding.message))
        ctx.constitution = rules
    return ctx.constitution


def base_context(ctx: RunContext) -> None:
    """What the base's own code already has (the rules and bandit), shown once when the run
    starts: context, never held against a candidate, which is judged on what it changes."""
    found = safety.base_findings(ctx.spec, ctx.run.trusted, constitution(ctx))
    rules = Counter(f.rule for f in found)
    ctx.emit(SafetyBase(findings=len(found), rules=dict(rules.most_common()),
                        shown=[f"{f.file}:{f.line} {f.rule} ({f.severity}): {f.message}" for f in found[:BASE_SHOWN]]))


# -- prepare ----------------------------------------------------------------------------------
def prepare(ctx: RunContext, state: State) -> Update:
    base, run_id = state.base, ctx.run.run_id
    trusted = ctx.run.trusted
    if not (trusted / ".exported").exists():
        try:
            ctx.lineage.export(base, trusted)
        except CandidateError as exc:
            raise UserError(f"the base commit {base[:10]} cannot be used: {exc}") from None
        tree_files.write_text(trusted, ".exported", base)  # the base's own tree: no link followed
    constitution(ctx)  # a broken constitution or task is the user's to fix before anything runs
    base_context(ctx)
    ctx.emit(PrepareData())
    names = prepare_data(ctx.spec, trusted, ctx.run.data, ctx.run.visible)
    ctx.emit(PrepareVisible(files=names))
    ctx.lineage.set_ref(base_ref(run_id), base, "progenitor: run base")
    if not ctx.lineage.resolve(champion_ref(run_id)):
        ctx.lineage.set_ref(champion_ref(run_id), base, "progenitor: baseline champion")
    ctx.emit(BaselineStart(commit=base))
    key = CandidateKey(run=run_id, gen=0, k=0)
    if ctx.spec.search.mode == "async":
        # The first candidates train beside the baseline: it is settled (its score, the
        # champion's figures) before the first decision (``asynchronous.harvest``).
        submit_baseline(ctx, base)
        if ctx.ledger is not None:
            ctx.ledger.mark("prepared")
        provisional = Champion(sha=base, metrics={}, params=read_params(trusted, ctx.spec))
        return Update(champion=provisional, generation=1, history=[], feedback=[], candidates=[], stop_reason=None)
    record = train(ctx, [(key, base)], splits=_baseline_splits(ctx))[key]
    baseline = settle_baseline(ctx, base, record)
    if ctx.ledger is not None:
        ctx.ledger.mark("prepared")  # where the first generation's time (and idle slots) begins
    return Update(baseline=baseline, champion=baseline, generation=1, history=[], feedback=[], candidates=[],
                  stop_reason=None)


def _baseline_splits(ctx: RunContext) -> tuple[str, ...]:
    """Scored on the holdout and the test split side by side, the moment its training ends."""
    return ("holdout", "test") if ctx.spec.scorer.test is not None else ("holdout",)


def submit_baseline(ctx: RunContext, base: str) -> None:
    """Hand the human baseline's training to the pool without waiting (the asynchronous mode)."""
    from progenitor.workflows import pool

    pool.of(ctx).submit(CandidateKey(run=ctx.run.run_id, gen=0, k=0), base, splits=_baseline_splits(ctx))


def settle_baseline(ctx: RunContext, base: str, record) -> Champion:
    """The human baseline as the first champion, once trained (``record``): scored on the holdout
    and the test split, told to the architect and written to the run; a baseline that failed to
    train or be scored ends the run with what to do."""
    key = CandidateKey(run=ctx.run.run_id, gen=0, k=0)
    if record.status != "ok":
        raise advice.baseline_failed(base, ctx.spec.train.command, record.reason, record.log_tail)
    scored = score_dir(ctx, key)
    if not scored.ok:
        raise advice.baseline_unscored(base, ctx.spec.scorer.command, scored.reason)
    baseline = Champion(sha=base, metrics=scored.metrics, params=read_params(ctx.run.trusted, ctx.spec),
                        test_metrics=test_metrics(ctx, key))
    if ctx.spec.scorer.test is not None and not baseline.test_metrics:
        raise UserError(f"the human baseline (commit {base[:10]}) could not be scored on the test split: "
                        f"{score_dir(ctx, key, split='test').reason}")
    ctx.architect.seed(Baseline(params=baseline.params, metrics=baseline.metrics,
                                value=baseline.metrics[ctx.spec.objective.metric]))
    ctx.run.update_meta(baseline=baseline.model_dump())
    ctx.emit(BaselineEnd(metrics=baseline.metrics))
    return baseline


# -- architect --------------------------------------------------------------------------------
def _proposals(ctx: RunContext, state: State, gen: int) -> list[Proposal]:
    """The generation's proposals: asked of the architect once, then read from the run. An
    architect that fails says why, in full; the generation then has no candidate."""
    saved = read_json(ctx.run.proposals(gen))
    if saved is not None:
        return [Proposal.model_validate(p) for p in saved]
    with ctx.lineage.tree(state.champion.sha) as tree:  # its blobs, as reviewed and trained
        pctx = propose_context(ctx, state, gen, tree)
        try:
            proposals = ctx.architect.propose(pctx)
        except (ModelBehaviorError, LlmBudgetSpent) as exc:
            reason = f"the architect could not propose: {exc}"
            write_json(ctx.run.architect_failure(gen), {"reason": reason})
            ctx.emit(ArchitectFailed(gen=gen, reason=reason))
            proposals = []
    if ctx.spec.search.mode == "async":
        proposals = proposals[:1]  # a generation of one: a slot freed for one candidate
    # Numbered here, whatever the architect wrote: keys must be unique and of this generation.
    proposals = [p.model_copy(update={"gen": gen, "k": k}) for k, p in enumerate(proposals)]
    write_json(ctx.run.proposals(gen), [p.model_dump() for p in proposals])
    return proposals


def architect(ctx: RunContext, state: State) -> Update:
    from progenitor.oversight.reverts import follow

    restored = follow(ctx, state.champion, state.generation)  # a generation reverted meanwhile: build on it
    state = state.model_copy(update={"champion": restored or state.champion})
    gen = state.generation
    proposals = _proposals(ctx, state, gen)
    parents = archive.parents_for(ctx, state, gen, len(proposals))
    cands = []
    for proposal in proposals:
        node = parents[proposal.k]
        cand = Candidate.new(proposal, ctx.run.run_id, node.sha, ctx.spec.objective.metric).with_(
            parent_name=node.name, step=node.kind)
        save(ctx, cand)
        ctx.emit(ArchitectProposal(gen=gen, k=cand.k, hypothesis=proposal.hypothesis))
        cands.append(cand)
    update = Update(candidates=cands, selection=None, decision=None, approved=[], request=None)
    if restored:
        update.champion = restored
    return update


# -- coder ------------------------------------------------------------------------------------
COMMIT_FAILURES = (ModelBehaviorError, UserError, CandidateError)
"""What fails one candidate's commit (of a proposal, or of a fix), never the run. A spent
budget (``LlmBudgetSpent``) is not a failure: the candidate ends with the status ``budget``."""


def _commit(ctx: RunContext, cand: Candidate, state: State) -> Candidate:
    edit = written(lambda tree: ctx.coder.apply(cand.proposal, tree))
    try:
        sha = ctx.lineage.commit_candidate(cand.ref, cand.parent, edit)
    except LlmBudgetSpent as exc:
        cand = cand.advance("budget", reason=f"not coded: {exc}")
        ctx.emit(CoderFailed(gen=cand.gen, k=cand.k, reason=cand.reason, status="budget"))
        return cand
    except COMMIT_FAILURES as exc:
        cand = cand.fail(f"the coder could not apply the proposal: {exc}")
        ctx.emit(CoderFailed(gen=cand.gen, k=cand.k, reason=cand.reason))
        return cand
    ctx.emit(CoderCommit(gen=cand.gen, k=cand.k, commit=sha, ref=cand.ref))
    return cand.advance("committed", sha=sha, diff=DiffStats(**ctx.lineage.diff_stats(cand.parent, sha)),
                        params={**archive.params_of(ctx, state, cand.parent), **cand.proposal.params})


def _repeat(cand: Candidate, seen: dict[str, str]) -> Optional[str]:
    """The earlier candidate whose change this one repeats (same fingerprint), if any. Only a
    reasoning architect's proposals (with a plan) are compared: the search keeps its own
    memory, and a scripted architect repeats itself on purpose."""
    if cand.status != "committed" or not cand.proposal.plan or cand.diff is None or not cand.diff.fingerprint:
        return None
    return seen.get(cand.diff.fingerprint)


def coder(ctx: RunContext, state: State) -> Update:
    _ = ctx.coder  # made here, once: the candidates are then coded side by side (``each``)

    def work(cand: Candidate) -> Candidate:
        if cand.status != "proposed":
            return cand
        cand = _commit(ctx, cand, state)
        save(ctx, cand)
        return cand

    out = each(ctx, work, state.candidates)
    seen = fingerprints(ctx, before=state.generation)
    for i, cand in enumerate(out):
        earlier = _repeat(cand, seen)
        if earlier is not None and earlier != cand.key.name:
            cand = cand.fail(f"the same change as {earlier} (its diff, whitespace aside): not tried again")
            ctx.emit(CoderDuplicate(gen=cand.gen, k=cand.k, reason=cand.reason, of=earlier))
            save(ctx, cand)
            out[i] = cand
        elif cand.diff is not None and cand.diff.fingerprint:
            seen.setdefault(cand.diff.fingerprint, cand.key.name)
    return Update(candidates=out)


# -- safety review ----------------------------------------------------------------------------
def _review(ctx: RunContext, cand: Candidate, base: str) -> Candidate:
    """Review the candidate's change against ``base``, the node it was built on (for a fix: the
    crashed change and its fix together)."""
    changed = [safety.ChangedFile(**c) for c in ctx.lineage.changed_files(base, cand.sha)]
    try:
        with ctx.lineage.tree(cand.sha) as tree:  # its blobs, as they will be trained
            findings = _findings(ctx, cand, base, tree, changed)
    except CandidateError as exc:  # a tree beyond the boundary's bounds: never reviewed, never run
        return cand.fail(f"its tree cannot be reviewed: {exc}")
    except _BudgetStop as stop:
        return cand.advance("budget", findings=safety.sort_findings(stop.findings), reason=stop.reason)
    findings = safety.sort_findings(findings)
    blockers = safety.blocking(findings, ctx.spec.safety.block_at)
    if blockers and held_for_person(ctx.spec, findings, blockers):
        return cand.advance("escalated", findings=findings, reason="held for a person: " + blockers[0].message)
    if blockers:
        return cand.advance("rejected", findings=findings, reason="rejected by the safety review: " + blockers[0].message)
    return cand.advance("reviewed", findings=findings)


class _BudgetStop(Exception):
    """The LLM budget ran out during a review: the findings so far, and why it stopped."""

    def __init__(self, findings: list[safety.Finding], reason: str):
        super().__init__(reason)
        self.findings, self.reason = findings, reason


def _findings(ctx: RunContext, cand: Candidate, base: str, tree, changed: list) -> list[safety.Finding]:
    """Every reviewer's findings on the candidate's tree (written from its blobs) against ``base``;
    ``_BudgetStop`` when the LLM budget is spent before every reviewer has looked and nothing
    found so far blocks the candidate already."""
    findings: list[safety.Finding] = []
    parents = {}  # the base's version of each changed Python file: what it had is not the candidate's
    for c in changed:
        old = c.old_path or c.path
        if c.status != "A" and c.path.endswith(".py") and (blob := ctx.lineage.blob(base, old)) is not None:
            parents[old] = blob
    change = safety.ReviewInput(spec=ctx.spec, base_tree=ctx.run.trusted, candidate_tree=tree, changed=changed,
                                constitution=constitution(ctx), gen=cand.gen, k=cand.k,
                                hypothesis=cand.proposal.hypothesis, diff=ctx.lineage.diff_text(base, cand.sha),
                                parent_files=parents)
    for reviewer in ctx.reviewers:
        try:
            findings += reviewer.review(change)
        except LlmBudgetSpent as exc:
            if safety.blocking(findings, ctx.spec.safety.block_at):
                break  # rejected (or held) by what was found already: the spent budget changes nothing
            raise _BudgetStop(findings, f"not reviewed by the {reviewer.name} reviewer: {exc}") from exc
        except ModelBehaviorError as exc:
            # A review that could not be done is not a pass.
            findings.append(safety.Finding(rule="review-failed", severity="high",
                                           message=f"the {reviewer.name} reviewer could not review it: {exc}"))
    return findings


def safety_review(ctx: RunContext, state: State) -> Update:
    _ = ctx.reviewers, constitution(ctx)  # made and loaded here, once: the reviews then run side by side

    def work(cand: Candidate) -> Candidate:
        if cand.status != "committed":
            return cand
        cand = _review(ctx, cand, archive.built_on(cand, state.candidates))
        ctx.emit(SafetyReview(gen=cand.gen, k=cand.k, status=cand.status, findings=len(cand.findings),
                              reason=cand.reason))
        save(ctx, cand)
        return cand

    out = each(ctx, work, state.candidates)
    record_escalations(ctx, out)
    return Update(candidates=out)


def record_escalations(ctx: RunContext, cands: list[Candidate]) -> None:
    """Put every escalating finding in the audit log, once (keys make it idempotent).

    Called right after the safety review, so that an escalation is on record even when the
    whole generation is rejected and never reaches the oversight node, and again there."""
    run_id = ctx.run.run_id
    for cand in cands:
        for finding in cand.findings:
            if finding.escalate:
                ctx.audit.append(
                    key=f"{cand.key.job}/escalation/{finding.rule}", action="escalate",
                    actor=f"policy:{ctx.spec.oversight.mode}", run=run_id, gen=cand.gen, commit=cand.sha,
                    payload=finding.model_dump(), comment=f"needs a human decision: {finding.message}",
                )


# -- trainer ----------------------------------------------------------------------------------
def trainer(ctx: RunContext, state: State) -> Update:
    cands = state.candidates
    todo = [(c.key, c.sha) for c in cands if c.status == "reviewed"]
    records = train(ctx, todo, champion=state.champion)  # each scored as it ends: ``scorer`` looks the scores up
    out = []
    for cand in cands:
        record = records.get(cand.key)
        if record is not None:
            # The reason of a trained candidate says what was cut from its outputs, if anything.
            cand = cand.advance("trained" if record.status == "ok" else record.status, train=record, reason=record.reason,
                                findings=[*cand.findings, *training_findings(record)])
            save(ctx, cand)
        out.append(cand)
    return Update(candidates=out)


# -- scorer -----------------------------------------------------------------------------------
def scorer(ctx: RunContext, state: State) -> Update:
    metric = ctx.spec.objective.metric
    history = [state.baseline.metrics[metric], *[h.champion_value for h in state.history]]
    out = []
    for cand in state.candidates:
        if cand.status == "trained":
            result = score_dir(ctx, cand.key)
            if result.ok:
                after = after_scoring.check_after_training(ctx.spec, cand.train.self_reported, result.metrics, history)
                cand = cand.advance("scored", metrics=result.metrics, findings=[*cand.findings, *after])
            else:
                cut = cand.reason  # an outputs cut explains a scorer that found nothing
                cand = cand.advance("failed", reason="; ".join(r for r in (result.reason, cut) if r),
                                    scorer_log=result.log)
            ctx.emit(ScoreEvent(gen=cand.gen, k=cand.k, status=cand.status, value=cand.value, reason=cand.reason))
            save(ctx, cand)
        out.append(cand)
    return Update(candidates=out)
