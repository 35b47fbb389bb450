"""The process backend: the candidate's command as a child process of this one.

With bubblewrap it runs in a whitelist view of the machine (see ``bwrap``); without, as root,
in the same view built with our own mount namespace (see ``mountns``); else as a plain child,
which a run accepts only when the user opts in. Either way: its own session (killed whole), rlimits, an unprivileged uid when
we are root, a minimal environment, and no network unless the spec asks for it. The child's
life, from start to teardown, is ``child.launch``; its verdict is ``outcome.judge``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict

from progenitor.errors import SandboxError
from progenitor.sandbox.access import grant_read, hand_over, is_root, unreachable_parent
from progenitor.sandbox.base import Enforcement, LineCallback, SandboxCheck, SandboxResult, SandboxSpec
from progenitor.sandbox.env import build_env, fill_template
from progenitor.sandbox.outcome import Outcome, judge
from progenitor.sandbox.process.bwrap import View, bwrap_argv, python_roots
from progenitor.sandbox.process.cgroup import Group
from progenitor.sandbox.process.child import launch
from progenitor.sandbox.process.isolation import (
    ChildSetup,
    fresh_uid,
    nproc_limit,
    probe_bwrap,
    probe_netns,
    probe_unshare,
)
from progenitor.sandbox.process.limits import enforcement, make_group
from progenitor.sandbox.process.mountns import view_plan, view_root
from progenitor.sandbox.process.reaper import reaper_argv

__all__ = ["UNENFORCED_REMEDY", "ProcessOptions", "ProcessSandbox"]


class ProcessOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    isolation: Literal["auto", "bwrap", "unshare", "none"] = "auto"
    """auto: bubblewrap when it works here, else (as root) the view built with our own mount
    namespace, else a plain child (only with ``allow_unsealed``); bwrap / unshare: that one or
    fail; none: a plain child."""
    uid: Optional[int] = None
    """Who the command runs as when we are root, so that it owns nothing on the host and
    RLIMIT_NPROC (which root ignores) applies. None: a fresh unused uid for every run, so
    that sandboxes running at once neither share a process limit nor each other's files;
    a number (65534: nobody) pins it."""
    gid: Optional[int] = None
    """Group of the command when we are root (None: the same number as the uid)."""
    allow_unsealed: bool = False
    """Let ``auto`` fall back to the plain child, which hides nothing from the command that
    its uid may read (without root: everything you can read, the holdout labels included).
    Set by ``progenitor run --allow-unsealed``; off, such a machine refuses to run."""
    allow_unenforced_limits: bool = False
    """Run a spec whose memory, CPU or process limit the kernel does not hold here (no control
    group to make: not root, no delegated cgroup v2 subtree), with the rlimits that are left.
    Set by ``progenitor run --allow-unenforced-limits``; off, such a spec is refused."""


UNENFORCED_REMEDY = ("run as root, in a delegated cgroup v2 subtree (systemd-run --user --scope -p Delegate=yes), "
                     "or with Docker")
"""What the refusal of a limit the kernel does not hold here tells the user to do."""

UNSEALED = ("the process sandbox cannot hide the holdout labels here ({why}): install bubblewrap "
            "(apt-get install bubblewrap) or Docker, or run as root; or pass --allow-unsealed to run "
            "with candidates able to read every file you can")
"""The one sentence a run (or a worker) refuses with where no mode can hide the run's files."""


class ProcessSandbox:
    """Runs a command as a sandboxed child process; see the module docstring."""

    name = "process"

    def __init__(self, **options: object) -> None:
        # Options meant for other backends (``image=`` for docker) arrive too: ignore them.
        known = {k: v for k, v in options.items() if k in ProcessOptions.model_fields}
        self.options = ProcessOptions(**known)

    # ------------------------------------------------------------------ check

    def mode(self) -> tuple[str, str]:
        """("bwrap" | "unshare" | "none", why), or ("", why) when the mode asked for does not work here."""
        asked = self.options.isolation
        if asked == "none":
            return "none", "isolation=none asked for"
        not_bwrap = "isolation=unshare asked for"
        if asked in ("auto", "bwrap"):
            works, why = probe_bwrap()
            if works:
                return "bwrap", why
            if asked == "bwrap":
                return "", why
            not_bwrap = f"bubblewrap unusable: {why}"
        works, why = probe_unshare()
        if works:
            return "unshare", not_bwrap
        if asked == "unshare":
            return "", why
        return "none", f"{not_bwrap}; {why}"

    def sealed(self) -> tuple[bool, str]:
        """Whether the mode this machine gives hides every host file the command was not
        given (the run directory's labels above all); and the mode in words."""
        mode, why = self.mode()
        return mode in ("bwrap", "unshare"), _MODE_WORDS.get(mode, "unusable") + f" ({why})"

    def _isolation(self, mode: str, network: bool, cgroup: bool) -> list[str]:
        root = is_root()
        if mode in ("bwrap", "unshare"):
            labels = ["mountns", "ipcns"] + (["pidns"] if mode == "bwrap" else []) + ([] if network else ["netns"])
            labels += ["uid", "nnp"] if root else []
        else:
            labels = ["netns"] if not network and probe_netns() else []
            labels += ["uid", "nnp"] if root else ["nnp"]
        return [*labels, *(["cgroup-limits"] if cgroup else []), "rlimits", "session", "pdeathsig"]

    def enforcement(self) -> Enforcement:
        """Which of the memory, CPU and process limits the kernel holds here (see ``limits``)."""
        mode, _ = self.mode()
        return enforcement(mode or "none")

    def check(self) -> SandboxCheck:
        mode, why = self.mode()
        if not mode:
            asked = self.options.isolation
            return SandboxCheck(backend=self.name, available=False, detail=f"{asked} asked for but unusable: {why}")
        if not is_root():
            user = "our own uid"
        else:
            user = "a fresh uid per run" if self.options.uid is None else f"uid {self.options.uid}"
        held = enforcement(mode)
        limits = _limits_words(held)
        if mode == "bwrap":
            detail = f"{why}: whitelist view, private network/PID/IPC namespaces, runs as {user}, {limits}"
        elif mode == "unshare":
            detail = (f"whitelist view in our own mount namespace ({why}): private network/IPC namespaces, "
                      f"runs as {user}, {limits}")
        else:
            net = "network namespace" if probe_netns() else "NO network isolation (cannot unshare)"
            detail = (f"plain child process ({why}): own session under a reaper, runs as {user}, {net}, {limits}; "
                      "UNSEALED: the host's files are guarded only by their permissions")
            other = self.options.uid if self.options.uid is not None else -1
            closed = unreachable_parent(Path(os.path.realpath(sys.executable)), other) if is_root() else None
            if closed is not None:
                detail += f"; this Python is out of the command's reach ({closed} is closed), it gets the system's"
        return SandboxCheck(backend=self.name, available=True, detail=detail, limits=held,
                            isolation=self._isolation(mode, network=False,
                                                      cgroup=any(h.startswith("cgroup") for h in held.held.values())))

    # ------------------------------------------------------------------ run

    def run(
        self,
        spec: SandboxSpec,
        on_line: Optional[LineCallback] = None,
        cancel: Optional[threading.Event] = None,
    ) -> SandboxResult:
        mode, why = self.mode()
        if not mode:
            asked = {"bwrap": "bubblewrap", "unshare": "its own mount namespace"}[self.options.isolation]
            raise SandboxError(f"the process sandbox was asked for {asked}, which cannot run here: {why}")
        if mode == "none" and self.options.isolation == "auto" and not self.options.allow_unsealed:
            raise SandboxError(UNSEALED.format(why=why))
        refusal = enforcement(mode).refusal(self.name, spec.limits, UNENFORCED_REMEDY)
        if refusal and not self.options.allow_unenforced_limits:
            raise SandboxError(refusal)
        try:
            group = make_group(spec.limits)
        except OSError as exc:
            raise SandboxError(f"could not make the sandbox's control group: {exc}") from exc
        try:
            outcome = self._launch(spec, mode, group, on_line, cancel)
        finally:
            if group is not None:
                group.remove()
        result = judge(outcome, spec.limits)
        return result.model_copy(update={"backend": self.name,
                                         "isolation": self._isolation(mode, spec.network, group is not None)})

    def _launch(self, spec: SandboxSpec, mode: str, group: Optional[Group], on_line: Optional[LineCallback],
                cancel: Optional[threading.Event]) -> Outcome:
        """Lay out the command's directories and view for ``mode``, and run it in ``group``."""
        tree, out = _existing(spec.tree, "tree"), _existing(spec.out, "out")
        data = _existing(spec.data, "data") if spec.data is not None else None
        user = self._user()
        # The plain child's HOME (the views have a /tmp of their own).
        scratch = Path(tempfile.mkdtemp(prefix="progenitor-home-")) if mode == "none" else None
        try:
            if mode == "none" and data is not None and user is not None:
                data = _reachable_data(data, scratch, user[0])
            command = fill_template(spec.command, tree=tree, data=data, out=out)
            env = build_env(spec, home=str(scratch) if mode == "none" else "/tmp")
            if mode == "bwrap":
                argv, setup = self._bwrap(spec, tree, out, data, env, command, user)
            elif mode == "unshare":
                argv, setup = self._unshare(spec, tree, out, data, env, command, user, view_root())
            else:
                argv, setup = self._plain(spec, tree, out, data, command, user)
            if user is not None:
                self._hand_over(spec, tree, out, data, scratch if mode == "none" else None, user)
            setup = _in_group(setup, group)
            return launch(argv, env, tree, setup, mode, spec.limits, on_line, cancel, group)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    def _user(self) -> Optional[tuple[int, int]]:
        """(uid, gid) the command is dropped to, or None when we are not root (it keeps ours)."""
        if not is_root():
            return None
        uid = self.options.uid if self.options.uid is not None else fresh_uid()
        return uid, self.options.gid if self.options.gid is not None else uid

    def _hand_over(self, spec: SandboxSpec, tree: Path, out: Path, data: Optional[Path],
                   scratch: Optional[Path], user: tuple[int, int]) -> None:
        """As root: give the unprivileged command its writable dirs, and let it read the data.
        Extra mounts are the caller's own: their permissions are left as they are."""
        writable = [out] if spec.read_only_tree else [tree, out]
        hand_over([p for p in (*writable, scratch) if p is not None], *user)
        for path in writable:  # no other uid (another candidate) may look in
            os.chmod(path, 0o700)
        if spec.read_only_tree:  # readable, not its own: a plain child cannot write it either
            grant_read(tree)
        if data is not None:
            grant_read(data)

    def _bwrap(self, spec: SandboxSpec, tree: Path, out: Path, data: Optional[Path], env: dict[str, str],
               command: str, user: Optional[tuple[int, int]]) -> tuple[list[str], ChildSetup]:
        view = _view(spec, tree, out, data, env)
        argv = bwrap_argv(view, reaper_argv(command, *(user or (None, None))))
        argv[0] = shutil.which("bwrap") or "bwrap"
        return argv, _setup(spec)

    def _unshare(self, spec: SandboxSpec, tree: Path, out: Path, data: Optional[Path], env: dict[str, str],
                 command: str, user: Optional[tuple[int, int]], root: Path) -> tuple[list[str], ChildSetup]:
        """The bwrap view, built by the reaper in its own mount namespace (see ``mountns``)."""
        view = _view(spec, tree, out, data, env)
        plan = view_plan(view, root)
        setup = _setup(spec).model_copy(update={"unshare_net": not spec.network})
        return reaper_argv(command, *(user or (None, None)), plan=plan), setup

    def _plain(self, spec: SandboxSpec, tree: Path, out: Path, data: Optional[Path], command: str,
               user: Optional[tuple[int, int]]) -> tuple[list[str], ChildSetup]:
        for mount in spec.mounts:
            if mount.target is not None and Path(mount.target) != Path(mount.source):
                raise SandboxError(
                    f"the process sandbox without bubblewrap cannot show {mount.source} at {mount.target}")
        uid = user[0] if user else os.getuid()
        if user:
            for path in [tree, out, data] + [Path(m.source) for m in spec.mounts]:
                blocked = unreachable_parent(path, uid) if path is not None else None
                if blocked is not None:
                    raise SandboxError(f"uid {uid} cannot reach {path}: {blocked} is closed to other users; "
                                       "put the sandbox's directories under a world-searchable one")
        setup = _setup(spec).model_copy(update={"unshare_net": not spec.network and probe_netns()})
        return reaper_argv(command, *(user or (None, None))), setup


_MODE_WORDS = {"bwrap": "bubblewrap whitelist view", "unshare": "whitelist view in our own mount namespace",
               "none": "UNSEALED plain child process"}


def _view(spec: SandboxSpec, tree: Path, out: Path, data: Optional[Path], env: dict[str, str]) -> View:
    return View(
        tree=tree, out=out, data=data, network=spec.network, gpus=spec.limits.gpus, read_only_tree=spec.read_only_tree,
        binds=[(_existing(m.source, "mount"), Path(m.target or m.source), m.read_only) for m in spec.mounts],
        python_roots=python_roots(env["PATH"]),
        tmp_bytes=spec.limits.memory_bytes,
    )


def _setup(spec: SandboxSpec) -> ChildSetup:
    return ChildSetup(memory_bytes=spec.limits.memory_bytes, processes=nproc_limit(spec.limits.processes),
                      file_bytes=spec.limits.disk_bytes)


def _in_group(setup: ChildSetup, group: Optional[Group]) -> ChildSetup:
    """The child joins ``group``; RLIMIT_DATA goes where the group holds the memory (it would
    stop one process's heap short of the limit the whole group is given)."""
    if group is None:
        return setup
    memory = None if "memory" in group.dirs else setup.memory_bytes
    return setup.model_copy(update={"cgroup_procs": group.procs_files, "memory_bytes": memory})


def _limits_words(held: Enforcement) -> str:
    words = [f"{name} by {how}" for name, how in held.held.items()]
    words += [f"{name} NOT held ({why})" for name, why in held.not_held.items()]
    return "limits: " + "; ".join(words)


def _reachable_data(data: Path, scratch: Path, uid: int) -> Path:
    """The plain child sees the host's directories: data inside a closed run directory is
    copied next to its scratch home, where its uid can reach it."""
    if unreachable_parent(data, uid) is None:
        return data
    copy = scratch / "data"
    os.chmod(scratch, 0o711)
    shutil.copytree(data, copy, symlinks=False)
    return copy


def _existing(path: Optional[Path], what: str) -> Path:
    try:
        resolved = Path(path).resolve(strict=True)  # type: ignore[arg-type]
    except (OSError, TypeError) as exc:
        raise SandboxError(f"the sandbox's {what} directory {path} does not exist") from exc
    return resolved
