"""Whether a run's candidates can be kept from the run's own files: checked once, at the start.

The run directory holds the holdout labels, the trusted tree and every candidate's outputs.
Docker and both views of the process backend (bubblewrap's, or the one built in our own
mount namespace as root) show a candidate only its tree, its outputs and the visible data.
The plain child is all that is left to a user who is not root and has neither bubblewrap
nor Docker; it runs as that user and can read what they can, the labels included. A run
refuses it with one sentence saying what to install, unless the user opts in
(``--allow-unsealed``); the run then warns, and records it in run.json and its summary.
"""

from __future__ import annotations

from progenitor.errors import UserError

__all__ = ["check_sealed", "process_options"]


def check_sealed(backend: str, allow_unsealed: bool) -> tuple[bool, str]:
    """(sealed, the isolation in words) of the resolved ``backend``; a ``UserError`` when it
    cannot hide the run's files and the user did not opt in."""
    if backend == "docker":
        return True, "docker container"
    from progenitor.sandbox.process import ProcessSandbox
    from progenitor.sandbox.process.backend import UNSEALED

    sandbox = ProcessSandbox()
    sealed, words = sandbox.sealed()
    if not sealed and not allow_unsealed:
        raise UserError(UNSEALED.format(why=sandbox.mode()[1]))
    return sealed, words


def process_options(allow_unsealed: bool) -> dict:
    """The process backend's options for every worker of the run: the opt-in travels with the
    jobs, so that a Ray node that can hide nothing refuses unless the user said yes."""
    return {"allow_unsealed": True} if allow_unsealed else {}
