"""What a run checks of its sandbox once, at the start: that candidates can be kept from the
run's own files, and that the kernel holds the task's limits.

The run directory holds the holdout labels, the trusted tree and every candidate's outputs.
Docker and both views of the process backend (bubblewrap's, or the one built in our own
mount namespace as root) show a candidate only its tree, its outputs and the visible data.
The plain child is all that is left to a user who is not root and has neither bubblewrap
nor Docker; it runs as that user and can read what they can, the labels included. A run
refuses it with one sentence saying what to install, unless the user opts in
(``--allow-unsealed``); the run then warns, and records it in run.json and its summary.

The task's memory, CPU and process limits are held by control groups: Docker's, or the
process backend's own (see ``process.limits``). Where one of them is not held (the process
backend without root or a delegated cgroup v2 subtree), a run refuses in one sentence unless
the user opts in (``--allow-unenforced-limits``); the run then warns, and records which
limits went unheld in run.json and its summary.
"""

from __future__ import annotations

from progenitor.errors import UserError
from progenitor.sandbox.base import Limits

__all__ = ["check_limits", "check_sealed", "process_options"]


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


def check_limits(backend: str, backend_options: dict, limits: Limits, allow_unenforced: bool) -> dict[str, str]:
    """The task's limits that the resolved ``backend`` does not hold here (limit -> why); a
    ``UserError`` when there is one and the user did not opt in."""
    from progenitor.sandbox import get_sandbox

    sandbox = get_sandbox(backend, **backend_options)
    if backend == "docker":
        remedy = "enable that cgroup controller on the Docker host, or use the process sandbox as root"
    else:
        from progenitor.sandbox.process.backend import UNENFORCED_REMEDY as remedy
    held = sandbox.check().limits
    refusal = held.refusal(backend, limits, remedy)
    if refusal and not allow_unenforced:
        raise UserError(refusal)
    return held.missing(limits)


def process_options(allow_unsealed: bool, allow_unenforced_limits: bool = False) -> dict:
    """The process backend's options for every worker of the run: the opt-ins travel with the
    jobs, so that a Ray node that can hide nothing, or hold no limit, refuses unless the user said yes."""
    options = {"allow_unsealed": True} if allow_unsealed else {}
    if allow_unenforced_limits:
        options["allow_unenforced_limits"] = True
    return options
