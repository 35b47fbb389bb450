"""The evidence behind a promotion: whether a gain holds above the noise of the holdout.

Computed by ``evaluation.significance`` (the paired test) and the repeats node (the mean of
several seeds), kept on the candidate's record, shown on the gate's card and in the summary."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel

__all__ = ["BOOTSTRAP", "Evidence", "PairedTest"]

BOOTSTRAP = 4000
"""Resamples of the paired bootstrap (its p-value moves by about 0.004 from run to run of other seeds)."""


class PairedTest(BaseModel):
    """A paired test of one candidate against another model on the same holdout examples."""

    test: Literal["sign", "bootstrap"]
    """``sign``: exact sign (McNemar) test, for 0/1 scores; ``bootstrap``: paired bootstrap of the mean."""
    examples: int
    wins: int
    """Examples where the candidate scores better."""
    losses: int
    """Examples where it scores worse."""
    mean_gain: float
    """Mean per-example gain in the objective's direction (positive: the candidate is better)."""
    p_value: float
    level: float
    """The level the p-value is held to: ``objective.significance`` / ``compared``."""
    compared: int = 1
    """Candidates the tested one was the best of (the Bonferroni divisor)."""
    significant: bool

    def describe(self) -> str:
        """One sentence a person reads on the gate's card and in the summary."""
        how = "exact sign test" if self.test == "sign" else f"paired bootstrap, {BOOTSTRAP} resamples"
        verdict = "holds above the noise" if self.significant else "does not hold above the noise"
        share = f" = {self.level * self.compared:g}/{self.compared}" if self.compared > 1 else ""
        return (f"its gain {verdict}: {self.wins} example(s) better, {self.losses} worse of {self.examples} "
                f"({how}, p = {self.p_value:.3g} {'<' if self.significant else '>='} {self.level:.3g}{share})")


class Evidence(BaseModel):
    """How far a candidate's gain over the champion stands above the noise."""

    against: str = ""
    """The model it was compared with (``g<gen>/c<k>``; ``g0/c0``: the human baseline)."""
    paired: Optional[PairedTest] = None
    """The paired test over the holdout examples (when the scorer writes per-example scores)."""
    repeats: list[float] = []
    """Its objective, one per training seed (``objective.repeats``), its first training first."""
    against_repeats: list[float] = []
    """The same for the model it was compared with."""
    verdict: str = ""
    """One sentence: why the evidence does or does not let it be promoted."""
