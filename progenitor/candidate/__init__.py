"""What a candidate is: its typed record and the status machine it moves by (``record``), how it
is named (``keys``), what an architect proposes (``proposal``), what the safety review finds
(``findings``), what its training left (``training``), and the champion it may become
(``champion``). Everything above reads and writes candidates through these models."""

from progenitor.candidate.champion import Champion
from progenitor.candidate.findings import SEVERITIES, Finding, Severity
from progenitor.candidate.keys import CandidateKey
from progenitor.candidate.lesson import Lesson
from progenitor.candidate.proposal import Proposal
from progenitor.candidate.record import (
    SCHEMA,
    TERMINAL,
    TRAINING_ENDS,
    TRANSITIONS,
    Candidate,
    CandidateCost,
    Decision,
    DiffStats,
    IllegalTransition,
)
from progenitor.candidate.training import TrainRecord

__all__ = [
    "SCHEMA", "SEVERITIES", "TERMINAL", "TRAINING_ENDS", "TRANSITIONS", "Candidate", "CandidateCost", "CandidateKey",
    "Champion", "Decision", "DiffStats", "Finding", "IllegalTransition", "Lesson", "Proposal", "Severity", "TrainRecord",
]
