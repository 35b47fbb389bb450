"""The LLM architect: a language model reads the task, the research brief, the champion's
code and the lineage, and proposes code changes, each with a hypothesis, a plan, the effect
it expects and its risk.

What it reads is chosen here, not by the model: the champion's editable files only (never
protected ones, never the scorer's or the data preparation's code; the holdout labels are
not in any tree), the lineage summarised when long, the human's comments. Its reply is JSON
validated with pydantic; one that does not validate goes back to it with the error
(``llm.repairs`` times). Pure: each request is settled with the session's account as it ends
(the run's charges the ledger), nothing of it rides on what the architect returns.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from progenitor.agents import prompts
from progenitor.agents.architect.journal import for_prompt
from progenitor.agents.base import AgentContext, Baseline, Observation, Outcome, ProposeContext
from progenitor.agents.repo_view import read_brief, view
from progenitor.candidate import Lesson, Proposal
from progenitor.errors import UserError
from progenitor.llm.replies import ReplyError, parse_json
from progenitor.task.search_space import check_value
from progenitor.task.spec import TaskSpec

__all__ = ["Draft", "Drafts", "LessonDraft", "LessonDrafts", "LlmArchitect", "architect_prompt", "reflect_prompt"]


class Draft(BaseModel):
    """One proposal as the model writes it."""

    model_config = ConfigDict(extra="ignore")

    hypothesis: str = Field(min_length=1)
    plan: str = Field(min_length=1)
    expected_effect: str = ""
    risk: str = ""
    params: dict[str, Any] = {}


class Drafts(BaseModel):
    model_config = ConfigDict(extra="ignore")

    proposals: list[Draft] = Field(min_length=1)


def _check_params(drafts: Drafts, spec: TaskSpec) -> Drafts:
    """Config values must be declared knobs within their ranges: said back to the model if not."""
    space = spec.search_space
    for i, draft in enumerate(drafts.proposals):
        for name, value in draft.params.items():
            if space is None or name not in space.params:
                known = ", ".join(space.params) if space else "none"
                raise ReplyError(f"proposals.{i}.params: {name!r} is not a config knob of this task (knobs: {known})")
            _, problem = check_value(name, space.params[name], value)
            if problem:
                raise ReplyError(f"proposals.{i}.params: {problem}")
    return drafts


def _task(spec: TaskSpec) -> dict:
    res = spec.train.resources
    guards = []
    for g in spec.guards:
        bounds = [f">= {g.min}" if g.min is not None else "", f"<= {g.max}" if g.max is not None else "",
                  f"no worse than the champion by more than {g.max_regression}" if g.max_regression is not None else ""]
        guards.append(f"{g.metric} " + ", ".join(b for b in bounds if b))
    return {"name": spec.name, "metric": spec.objective.metric, "goal": spec.objective.goal,
            "target": spec.objective.target, "guards": guards, "train_command": spec.train.command,
            "timeout": spec.train.timeout, "protected": spec.protected_paths,
            "resources": f"{res.cpus:g} CPUs, {res.gpus:g} GPUs, {res.memory} memory"}


def _knobs(spec: TaskSpec) -> list[str]:
    if spec.search_space is None:
        return []
    out = []
    for name, p in spec.search_space.params.items():
        out.append(f"{name}: one of {p.choices}" if p.type == "categorical"
                   else f"{name}: {p.type} in [{p.low:g}, {p.high:g}]{' (log scale)' if p.log else ''}")
    return out


def architect_prompt(ctx: ProposeContext) -> list[dict]:
    """The conversation the architect starts each generation with."""
    if ctx.champion_tree is None:
        raise UserError("the LLM architect needs the champion's tree (ProposeContext.champion_tree)")
    spec = ctx.spec
    tree = view(ctx.champion_tree, spec)
    journal, earlier = for_prompt(ctx.journal, spec.objective.goal)
    champion = next((e for e in reversed(ctx.journal) if e.verdict == "promoted"), None)
    return prompts.messages(
        "architect", "user", task=_task(spec), gen=ctx.gen, count=ctx.count,
        brief=read_brief(ctx.champion_tree, spec).strip(),
        champion={"gen": champion.gen if champion else 0, "k": champion.k if champion else 0,
                  "params": ctx.champion_params},
        scores=_scores(ctx), noise=_noise(ctx), budget_left=ctx.budget_left,
        repo_map=[f.model_dump() for f in tree.files], files=tree.shown(), omitted=tree.omitted,
        journal=journal, earlier=earlier, feedback=ctx.feedback, search_space=_knobs(spec),
        search_space_file=spec.search_space.file if spec.search_space else "",
        earlier_runs=[e.model_dump() for e in ctx.earlier], parents=_parents(ctx), pending=ctx.pending,
    )


def _scores(ctx: ProposeContext) -> list[dict]:
    """Each metric of the baseline beside the champion's (drift is measured from the baseline)."""
    names = list(dict.fromkeys([*ctx.baseline_metrics, *ctx.champion_metrics]))
    return [{"name": n, "baseline": ctx.baseline_metrics.get(n), "champion": ctx.champion_metrics.get(n)} for n in names]


def _noise(ctx: ProposeContext) -> str:
    """How much of a score difference chance alone explains, in one sentence ("" when unknown)."""
    words = []
    if ctx.holdout_size:
        words.append(f"The holdout has {ctx.holdout_size} examples: one of them is worth {1 / ctx.holdout_size:.4f} "
                     "of an accuracy-like score.")
    if ctx.selection_luck is not None:
        words.append(f"Choosing the best of the candidates compared so far (this generation's included) can "
                     f"flatter a score by up to {ctx.selection_luck:.4f} on its own (Hoeffding, 95 %): a gain "
                     "smaller than that is not evidence.")
    return " ".join(words)


def _parents(ctx: ProposeContext) -> list[dict]:
    """The node each proposal builds on, with ``search.parents: archive`` (else all build on the champion)."""
    if ctx.spec.search.parents != "archive":
        return []
    return [p.model_dump() for p in ctx.parents[: ctx.count]]


class LessonDraft(BaseModel):
    """One lesson as the model writes it."""

    model_config = ConfigDict(extra="ignore")

    candidate: str = ""
    verdict: Literal["confirmed", "refuted", "inconclusive", "failed", "not run"]
    lesson: str = Field(min_length=1)
    next: str = ""


class LessonDrafts(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lessons: list[LessonDraft] = Field(min_length=1)


def reflect_prompt(spec: TaskSpec, gen: int, outcomes: list[Outcome]) -> list[dict]:
    """The conversation in which the architect writes a generation's lessons."""
    variables = dict(task=_task(spec), gen=gen, outcomes=[o.model_dump() for o in outcomes])
    return [{"role": "system", "content": prompts.render("architect", "reflect_system", **variables)},
            {"role": "user", "content": prompts.render("architect", "reflect", **variables)}]


class LlmArchitect:
    """Proposes code changes with a language model (``llm.architect``, else ``llm.model``)."""

    name = "llm"
    debugs = True
    """It may be handed a candidate that crashed in training, to fix (``search.parents: archive``)."""

    def __init__(self, ctx: AgentContext):
        self.spec = ctx.spec
        self.llm = ctx.require_llm("llm architect")

    def seed(self, baseline: Baseline) -> None:
        pass  # it reads the champion's scores from each ProposeContext

    def drafts(self, ctx: ProposeContext) -> list[Draft]:
        """The model's drafts, at most ``ctx.count``."""
        def parse(text: str) -> Drafts:
            return _check_params(parse_json(text, Drafts), self.spec)

        reply = self.llm.ask("architect", ctx.gen, None, architect_prompt(ctx), parse, schema=Drafts,
                             repair=lambda error: prompts.render("architect", "repair", error=error))
        return reply.proposals[: ctx.count]

    def propose(self, ctx: ProposeContext) -> list[Proposal]:
        return [Proposal(gen=ctx.gen, k=k, hypothesis=d.hypothesis.strip(), plan=d.plan.strip(),
                         expected=d.expected_effect.strip(), risk=d.risk.strip(), params=d.params, author=self.name)
                for k, d in enumerate(self.drafts(ctx))]

    def observe(self, proposal: Proposal, observation: Observation) -> None:
        pass  # it reads what became of every proposal from the lineage journal

    def reflect(self, gen: int, outcomes: list[Outcome]) -> list[Lesson]:
        """The model's lesson for each outcome, in order (one it left out: computed by the node)."""
        def parse(text: str) -> LessonDrafts:
            return parse_json(text, LessonDrafts)

        reply = self.llm.ask("architect", gen, None, reflect_prompt(self.spec, gen, outcomes), parse, schema=LessonDrafts,
                             repair=lambda error: prompts.render("architect", "repair", error=error))
        by_name = {d.candidate.strip(): d for d in reply.lessons if d.candidate.strip()}
        out = []
        for i, o in enumerate(outcomes):
            d = by_name.get(o.name) or (reply.lessons[i] if i < len(reply.lessons) and not by_name else None)
            out.append(None if d is None else Lesson(verdict=d.verdict, text=d.lesson.strip()[:600],
                                                     next=d.next.strip()[:400], by=self.name, parent=o.parent))
        return out
