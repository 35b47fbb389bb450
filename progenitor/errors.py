"""Every error progenitor raises, split by who is at fault.

- ``UserError``: the input was wrong (a bad ``progenitor.yaml``, an unknown run, a
  directory that is not a git repository). The CLI prints its message as one sentence and
  exits with code 2.
- ``ModelBehaviorError``: an agent (LLM) produced something unusable. It is fed back to
  the agent with retries capped, never shown as a crash.
- ``SandboxError`` / ``ComputeError``: the machinery that runs candidates failed (no
  Docker daemon, Ray could not start). Exit code 3.
- Flow exceptions (``ApprovalRequired``, ``BudgetExceeded``, ``RunStopped``) carry a
  message and are used to steer the loop, not to report bugs.
"""

from __future__ import annotations


class ProgenitorError(Exception):
    """Root of every error progenitor raises on purpose.

    Its message is one sentence; ``details`` (optional) holds lines that back it up, such
    as the last lines a failing command printed, shown below the sentence."""

    exit_code = 1

    def __init__(self, message: str = "", *, details: str = ""):
        super().__init__(message)
        self.details = details


class UserError(ProgenitorError):
    """Bad input from the person or program using progenitor."""

    exit_code = 2


class SpecError(UserError):
    """A ``progenitor.yaml`` that does not validate; the message names file and field."""


class ModelBehaviorError(ProgenitorError):
    """An agent's output could not be used (fed back to the agent, retries capped)."""


class SandboxError(ProgenitorError):
    """A sandbox backend could not run a command (not: the command failed)."""

    exit_code = 3


class ComputeError(ProgenitorError):
    """The executor (local pool or Ray) could not run the work."""

    exit_code = 3


class ApprovalRequired(ProgenitorError):
    """The run waits for a human decision."""


class BudgetExceeded(ProgenitorError):
    """A budget cap (generations, CPU/GPU-hours, wall time, dollars) was reached."""


class RunStopped(ProgenitorError):
    """The run was asked to stop (Ctrl-C, ``progenitor stop``); it stays resumable."""

    exit_code = 130
