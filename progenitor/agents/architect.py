"""Architects propose the candidates of a generation.

One interface, several implementations: the offline **search architect** here (Optuna
ask/tell, seeded TPE, over the task's ``search_space``), and scripted or LLM architects
elsewhere. A proposal either sets config values (``params``, written by the offline coder)
or carries whole-file edits (``edits``, applied by the edit coder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Protocol

from pydantic import BaseModel

from progenitor.errors import UserError
from progenitor.spec import Param, TaskSpec


class Proposal(BaseModel):
    k: int
    """Index of the candidate in its generation."""
    hypothesis: str
    """Why this change should help: goes into the commit message and the record."""
    params: dict[str, Any] = {}
    """Config values to write into ``search_space.file`` (dotted keys)."""
    edits: dict[str, Optional[str]] = {}
    """Whole-file edits: path -> new content (None deletes the file)."""
    trial: Optional[int] = None
    """The Optuna trial behind this proposal, if any."""
    author: str = "search"


class Outcome(BaseModel):
    """What became of a proposal, told back to the architect."""

    status: str
    """scored, failed, rejected or pruned."""
    value: Optional[float] = None
    """The objective, when scored."""


class ProposeContext(BaseModel):
    gen: int
    count: int
    spec: TaskSpec
    champion_params: dict[str, Any] = {}
    """Current values of the search-space keys in the champion's config file."""
    journal: list[dict] = []
    """Records of earlier candidates (proposal, metrics, decision)."""
    feedback: list[str] = []
    """Comments from human decisions, newest last."""


class Architect(Protocol):
    name: str

    def propose(self, ctx: ProposeContext) -> list[Proposal]: ...

    def observe(self, proposal: Proposal, outcome: Outcome) -> None: ...


def _distribution(param: Param):
    import optuna

    if param.type == "categorical":
        return optuna.distributions.CategoricalDistribution(param.choices)
    if param.type == "int":
        step = int(param.step or 1)
        return optuna.distributions.IntDistribution(int(param.low), int(param.high), log=param.log, step=1 if param.log else step)
    return optuna.distributions.FloatDistribution(param.low, param.high, log=param.log, step=None if param.log else param.step)


def _within(param: Param, value: Any) -> bool:
    if param.type == "categorical":
        return value in (param.choices or [])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if param.type == "int" and not float(value).is_integer():
        return False
    return param.low <= value <= param.high


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class SearchArchitect:
    """Optuna ask/tell over the declared search space; the study lives in the run directory."""

    name = "search"

    def __init__(self, spec: TaskSpec, study_path: Path, study_name: str, seed: int = 0):
        if spec.search_space is None:
            raise UserError("progenitor.yaml has no 'search_space': the offline search architect needs one (or configure an LLM architect)")
        import optuna

        from progenitor.agents.sampler import make_sampler

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec = spec
        self.space = spec.search_space
        self.dists = {name: _distribution(p) for name, p in self.space.params.items()}
        self.seed = seed
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(study_path)))
        direction = "maximize" if spec.objective.goal == "maximize" else "minimize"
        self.study = optuna.create_study(
            storage=storage, study_name=study_name, direction=direction, load_if_exists=True,
        )
        # The sampler's random state is not stored with the study: seeding it with the number
        # of trials so far keeps a run reproducible without a resumed run repeating itself.
        self.study.sampler = make_sampler(seed + len(self.study.trials), spec.budget.candidates)

    def seed_baseline(self, params: dict[str, Any], value: float) -> None:
        """Tell the study what the human baseline scored, once, if its values lie in the space."""
        import optuna

        if any(t.user_attrs.get("baseline") for t in self.study.trials):
            return
        if not all(_within(p, params.get(name)) for name, p in self.space.params.items()):
            return  # the baseline sits outside the declared space: the search starts cold
        values = {name: params[name] for name in self.dists}
        try:
            trial = optuna.trial.create_trial(params=values, distributions=self.dists, value=value,
                                              user_attrs={"baseline": True})
        except ValueError:
            return
        self.study.add_trial(trial)

    def _fail_orphans(self) -> None:
        """Trials asked for by a run that died before saving its proposals: told failed, so
        that the sampler's constant liar does not weigh them forever."""
        from optuna.trial import TrialState

        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(trial.number, state=TrialState.FAIL)

    def propose(self, ctx: ProposeContext) -> list[Proposal]:
        self._fail_orphans()  # every trial of earlier generations was told in promote
        proposals = []
        for k in range(ctx.count):
            trial = self.study.ask(self.dists)
            changes = [f"{n} {_fmt(ctx.champion_params.get(n, '?'))}->{_fmt(v)}"
                       for n, v in trial.params.items() if ctx.champion_params.get(n) != v]
            hypothesis = (f"search trial {trial.number}: " + (", ".join(changes) if changes else "re-run the champion's settings")
                          + f" (TPE, seed {self.seed})")
            proposals.append(Proposal(k=k, hypothesis=hypothesis, params=dict(trial.params), trial=trial.number))
        return proposals

    def observe(self, proposal: Proposal, outcome: Outcome) -> None:
        from optuna.trial import TrialState

        if proposal.trial is None:
            return
        trial = self.study.trials[proposal.trial]
        if trial.state != TrialState.RUNNING:
            return  # told already (a resumed run)
        if outcome.status == "scored" and outcome.value is not None:
            self.study.tell(proposal.trial, outcome.value)
        elif outcome.status == "pruned":
            self.study.tell(proposal.trial, state=TrialState.PRUNED)
        else:
            self.study.tell(proposal.trial, state=TrialState.FAIL)
