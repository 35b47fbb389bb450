"""The docker backend: every candidate in its own hardened, throwaway container.

``backend`` is the ``Sandbox``; ``container`` says what a container is (the hardening),
``supervise`` watches one run, ``images`` makes the base and task images with no registry.
The Docker SDK is imported only when a backend is used.
"""

from progenitor.sandbox.docker.backend import DockerSandbox

__all__ = ["DockerSandbox"]
