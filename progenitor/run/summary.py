"""What a run reports about itself: a finished generation, the whole run, and how far to trust
its final numbers. Plain data: ``evaluation.honesty`` computes ``Honesty``, the graph's nodes and
the runner fill the rest; the events ``generation.end`` and ``run.end`` carry them."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel

from progenitor.candidate.evidence import PairedTest

__all__ = ["GenerationSummary", "Honesty", "RunSummary"]


class Honesty(BaseModel):
    """What the closing summary says about its own numbers."""

    test_metric: Optional[str] = None
    """``test_<objective>``, when the task has a test split."""
    baseline_test: Optional[float] = None
    champion_test: Optional[float] = None
    holdout_test_gap: Optional[float] = None
    """The champion's holdout figure minus its test figure (optimism shows as a gain in the goal's direction)."""
    holdout_n: Optional[int] = None
    compared: int = 0
    """Candidates whose holdout scores were compared (the baseline included)."""
    selection_luck: Optional[float] = None
    """``eps`` of the bound above (needs ``objective.range`` and the holdout size)."""
    paired: Optional[PairedTest] = None
    """The champion against the human baseline, example by example (per-example scores only)."""
    champion_repeats: list[float] = []
    """The champion's objective, one per training seed (``objective.repeats``): its figure is their mean."""
    baseline_repeats: list[float] = []
    """The same for the human baseline."""
    held_by_noise: int = 0
    """Generations whose best candidate beat the champion on the holdout, but not above the noise."""
    notes: list[str] = []
    """Warnings and caveats, one sentence each."""


class GenerationSummary(BaseModel):
    """One finished generation: what was promoted, the champion after it, how its candidates ended, its spend."""

    gen: int
    promoted: Optional[int] = None
    """The promoted candidate's index (None: the champion stayed)."""
    champion: str
    champion_value: float
    best_value: Optional[float] = None
    noise: Optional[str] = None
    """Set when its best candidate beat the champion on the holdout but was not promoted: its gain
    did not hold above the noise (the paired test), in one sentence."""
    counts: dict[str, int] = {}
    """Candidates by final status."""
    spend: dict = {}
    """The ledger's totals for the generation (seconds, hours, LLM dollars and tokens)."""
    trained: int = 0
    """Its candidates that reached training (a run in which none does for ``budget.stall_after``
    generations in a row ends, exit code 3)."""
    untrained: str = ""
    """When none was trained: why, in a sentence (the architect's failure, or each candidate's end)."""
    promotions: list[int] = []
    """Every candidate of it promoted, in order (async mode may promote several; ``promoted`` is the last)."""
    wall_seconds: Optional[float] = None
    """Its time on the run's clock: from the end of the generation before (of the baseline, for the first)."""
    ended: Optional[float] = None
    """The run's clock when it ended (``Ledger.run_wall_seconds``)."""
    idle_slot_seconds: Optional[float] = None
    """``slots x wall_seconds`` minus what training used of that time: slot-seconds left idle."""


class RunSummary(BaseModel):
    """How a run ended (or waits): what ``start_run`` / ``resume_run`` return and ``run.end`` carries."""

    run_id: str
    repo: str
    status: str
    """finished, stopped, waiting (at a gate, for a person's decision) or stalled (no candidate was
    trained in ``budget.stall_after`` consecutive generations: the CLI exits 3)."""
    waiting: Optional[dict] = None
    """What the run waits for: gate, kind, gen, description (when waiting)."""
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
    mode: str = "generations"
    """``search.mode``: generations or async."""
    slots: Optional[int] = None
    """Training slots of the executor."""
    idle_slot_seconds: Optional[float] = None
    """``slots x seconds`` minus the training seconds: what the run left idle (its preparation included)."""
    ledger: dict = {}
    """CPU-, GPU- and wall-seconds (and hours), LLM dollars and tokens, of the whole run."""
    honesty: Honesty = Honesty()
    """The test split's figures, the holdout/test gap, the bound on selection luck, and caveats."""
    drift: dict[str, dict] = {}
    """How far each guarded metric moved from the baseline to the champion."""
    sealed: bool = True
    """False when the run was let run (``--allow-unsealed``) where candidates could read its files."""
    isolation: str = ""
    """The sandbox's isolation, in words."""
    unenforced_limits: dict[str, str] = {}
    """The task's limits the kernel did not hold for the sandbox (``--allow-unenforced-limits``), with why."""
