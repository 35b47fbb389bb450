"""Every error progenitor raises, split by who is at fault.

- ``UserError``: the input was wrong (a bad ``progenitor.yaml``, an unknown run, a
  directory that is not a git repository). The CLI prints its message as one sentence and
  exits with code 2.
- ``ModelBehaviorError``: an agent (LLM) produced something unusable. It is fed back to
  the agent with retries capped, never shown as a crash.
- ``CandidateError``: one candidate could not be built (its tree holds a link, git refused
  one of its paths). That candidate fails with the message as its reason; the run goes on.
- ``SandboxError`` / ``ComputeError`` / ``LlmUnavailable``: the machinery failed (no
  Docker daemon, Ray could not start, no LLM provider answered after litellm's retries and
  fallbacks). Exit code 3; a run stays resumable.
- Flow exceptions (``BudgetExceeded``, ``RunStopped``) carry a message and are used to
  steer the loop, not to report bugs. A run that waits for a person is not an exception: its
  graph stops at the human gate's ``interrupt()`` (``workflows/gates.py``).
"""

from __future__ import annotations

from typing import Optional


class ProgenitorError(Exception):
    """Root of every error progenitor raises on purpose.

    Its message is one sentence; ``details`` (optional) holds lines that back it up, such
    as the last lines a failing command printed, shown below the sentence."""

    exit_code = 1

    def __init__(self, message: str = "", *, details: str = ""):
        super().__init__(message)
        self.details = details


class UserError(ProgenitorError):
    """Bad input from the person or program using progenitor.

    ``problems`` lists each problem as its own sentence when the message tells several (a
    spec with three mistakes), so that ``progenitor check`` can show one line each."""

    exit_code = 2

    def __init__(self, message: str = "", *, details: str = "", problems: Optional[list[str]] = None):
        super().__init__(message, details=details)
        self.problems = list(problems) if problems else [message]


class SpecError(UserError):
    """A ``progenitor.yaml`` that does not validate; the message names file and field."""


class ModelBehaviorError(ProgenitorError):
    """An agent's output could not be used (fed back to the agent, retries capped)."""


class CandidateError(ProgenitorError):
    """One candidate could not be built or committed: it fails with this message, the run goes on."""


class UnsafePathError(CandidateError):
    """A host-side access into a tree would follow a link, leave the tree or touch git's own files."""


class CandidateDataError(CandidateError):
    """Bytes a candidate controls that the host will not parse: too large, too deep, too many
    entries, a path too long, or not of the kind promised (``progenitor.boundary``)."""


class SandboxError(ProgenitorError):
    """A sandbox backend could not run a command (not: the command failed)."""

    exit_code = 3


class ComputeError(ProgenitorError):
    """The executor (local pool or Ray) could not run the work."""

    exit_code = 3


class LlmUnavailable(ProgenitorError):
    """No configured model answered (after litellm's retries and fallbacks): not the model's
    fault, nor one candidate's; the run stops, resumable, with finished calls kept."""

    exit_code = 3


class AlreadyDecided(UserError):
    """A second decision for a gate that was decided already (the first one stands)."""


class LlmRefused(ProgenitorError):
    """The LLM layer started no new paid request: its account refused (``llm.calls.Refusal``).
    Raised by the LLM layer, turned by the workflow at a node's edge into what it means there."""


class LlmStopAsked(LlmRefused):
    """Refused because the run was asked to stop: the node ends, and the run with ``RunStopped``."""


class LlmBudgetSpent(LlmRefused):
    """Refused because ``budget.dollars`` is spent: the candidate (or generation) it was for ends
    with the status ``budget``, not as a failure; the run ends after the generation."""


class NotAllowed(UserError):
    """No account, a token that belongs to none, or a role that does not allow the act."""


class BudgetExceeded(ProgenitorError):
    """A budget cap (generations, CPU/GPU-hours, wall time, dollars) was reached."""


class RunStopped(ProgenitorError):
    """The run was asked to stop (Ctrl-C, ``progenitor stop``); it stays resumable."""

    exit_code = 130
