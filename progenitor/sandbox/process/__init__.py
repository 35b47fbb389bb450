"""The process backend: the candidate's command as a child of this process, in a bubblewrap
whitelist view where the machine allows one, else a plain child under rlimits and a fresh uid.

``backend`` is the ``Sandbox``; ``bwrap`` builds the view, ``isolation`` probes what the machine
allows and sets up the child, ``child`` sees it from start to teardown, ``reaper`` is its pid 1.
"""

from progenitor.sandbox.process.backend import ProcessOptions, ProcessSandbox

__all__ = ["ProcessOptions", "ProcessSandbox"]
