"""The offline search architect: Optuna ask/tell over the task's declared ``search_space``.

The default architect when no language model is configured, so that everything runs with no
network and no API key. Each generation, a share of its proposals (``search.local``) tunes the
values of the node each candidate is built on (a small step from its parent's values:
``local``), and the rest are asked of the sampler (``search.sampler``: TPE or CMA-ES), which is
told every result, the local steps' too. The study lives in the run directory as an Optuna
journal, so a resumed (or continued) run goes on with it; every trial carries the key of the
candidate it became (``g<gen>/c<k>``), so results are told back by key and a resumed run never
tells a trial twice. A proposal only sets config values; the offline coder writes them.
"""

from __future__ import annotations

import math
import random
from typing import Any, Optional

from progenitor.agents.architect import lessons as computed
from progenitor.agents.architect.local import neighbour
from progenitor.agents.base import AgentContext, Baseline, Observation, Outcome, Parent, ProposeContext
from progenitor.candidate import Lesson, Proposal
from progenitor.candidate.keys import candidate_name
from progenitor.errors import UserError
from progenitor.task.search_space import outside_space
from progenitor.task.spec import Param

__all__ = ["SearchArchitect", "local_slots"]


def _distribution(param: Param):
    import optuna

    if param.type == "categorical":
        return optuna.distributions.CategoricalDistribution(param.choices)
    if param.type == "int":
        step = int(param.step or 1)
        return optuna.distributions.IntDistribution(int(param.low), int(param.high), log=param.log, step=1 if param.log else step)
    return optuna.distributions.FloatDistribution(param.low, param.high, log=param.log, step=None if param.log else param.step)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def local_slots(count: int, share: float) -> list[int]:
    """Which of a generation's ``count`` candidates tune their parent locally: ``share`` of them,
    spread out (0.5 of 4: candidates 1 and 3)."""
    return [k for k in range(count) if math.floor((k + 1) * share + 1e-9) > math.floor(k * share + 1e-9)]


class SearchArchitect:
    """Optuna ask/tell over the declared search space; the study lives in the run directory."""

    name = "search"

    def __init__(self, ctx: AgentContext):
        spec = ctx.spec
        if spec.search_space is None:
            raise UserError("progenitor.yaml has no 'search_space': the offline search architect needs one (or configure an LLM architect)")
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = spec.search_space
        self.search = spec.search
        self.goal = spec.objective.goal
        self.dists = {name: _distribution(p) for name, p in self.space.params.items()}
        self.seed_value = ctx.seed
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(ctx.workdir / "study.log")))
        direction = "maximize" if self.goal == "maximize" else "minimize"
        self.study = optuna.create_study(
            storage=storage, study_name=ctx.run_id, direction=direction, load_if_exists=True,
        )
        self._sampler()

    def _sampler(self) -> None:
        """(Re)make the study's sampler. Its random state is not stored with the study: seeding it
        with the number of trials so far keeps a run reproducible without a resumed run
        repeating itself."""
        from progenitor.agents.architect.sampler import make_sampler

        self.study.sampler = make_sampler(self.seed_value + len(self.study.trials), self.search.sampler)

    def seed(self, baseline: Baseline) -> None:
        """Tell the study what the human baseline scored, once, if its values lie in the space."""
        import optuna

        if any(t.user_attrs.get("baseline") for t in self.study.trials):
            return
        params = baseline.params
        if outside_space(self.space, params):
            return  # the baseline sits outside the declared space: the search starts cold
        values = {name: params[name] for name in self.dists}
        try:
            trial = optuna.trial.create_trial(params=values, distributions=self.dists, value=baseline.value,
                                              user_attrs={"baseline": True})
        except ValueError:
            return
        self.study.add_trial(trial)
        self._sampler()

    def _fail_orphans(self, pending: list[str]) -> None:
        """Trials asked for (or queued) by a run that died before saving its proposals: told
        failed, so that the sampler's constant liar does not weigh them forever. The trials of
        candidates still under way (``pending``: the asynchronous mode) keep running."""
        from optuna.trial import TrialState

        for _ in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            self.study.tell(self.study.ask(self.dists), state=TrialState.FAIL)
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.user_attrs.get("candidate") not in pending:
                self.study.tell(trial.number, state=TrialState.FAIL)

    def _ask(self, ctx: ProposeContext, k: int, parent: Optional[Parent], local: bool) -> tuple[Any, str]:
        """One trial for candidate ``k``, and how it was made."""
        if local and parent is not None:
            rng = random.Random(f"progenitor-local/{self.seed_value}/{ctx.gen}/{k}")
            values = neighbour(self.space, parent.params, rng)
            self.study.enqueue_trial(values, skip_if_exists=False)
            how = f"a local step from {parent.name}'s values"
        else:
            how = f"{self.search.sampler.upper() if self.search.sampler == 'tpe' else 'CMA-ES'}, seed {self.seed_value}"
        trial = self.study.ask(self.dists)
        trial.set_user_attr("candidate", candidate_name(ctx.gen, k))
        return trial, how

    def propose(self, ctx: ProposeContext) -> list[Proposal]:
        self._fail_orphans(ctx.pending)  # every other trial was told when its candidate was decided
        local = set(local_slots(ctx.count, self.search.local))
        proposals = []
        for k in range(ctx.count):
            parent = ctx.parent(k) or Parent(name="the champion", sha="", params=ctx.champion_params)
            trial, how = self._ask(ctx, k, parent, k in local)
            changes = [f"{n} {_fmt(parent.params.get(n, '?'))}->{_fmt(v)}"
                       for n, v in trial.params.items() if parent.params.get(n) != v]
            hypothesis = (f"search trial {trial.number}: " + (", ".join(changes) if changes else "re-run the parent's settings")
                          + f" ({how})")
            if ctx.feedback:
                hypothesis += f"; the human's last comment: {ctx.feedback[-1]}"
            proposals.append(Proposal(gen=ctx.gen, k=k, hypothesis=hypothesis, params=dict(trial.params), author=self.name))
        return proposals

    def observe(self, proposal: Proposal, observation: Observation) -> None:
        from optuna.trial import TrialState

        key = candidate_name(proposal.gen, proposal.k)
        # The running trial of that name (an orphan of a killed run, told failed, may carry it too).
        trial = next((t for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                      if t.user_attrs.get("candidate") == key), None)
        if trial is None:
            return  # not one of ours, or told already (a resumed run)
        if observation.status == "scored" and observation.value is not None:
            self.study.tell(trial.number, observation.value)
        elif observation.status == "pruned":
            self.study.tell(trial.number, state=TrialState.PRUNED)
        else:
            self.study.tell(trial.number, state=TrialState.FAIL)

    def reflect(self, gen: int, outcomes: list[Outcome]) -> list[Lesson]:
        """Lessons computed from the numbers: better or worse than the parent, above the noise or not."""
        return [computed.compute(o, self.goal) for o in outcomes]
