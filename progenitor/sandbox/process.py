"""The process backend: the candidate's command as a child process of this one.

With bubblewrap it runs in a whitelist view of the machine (see ``isolation``); without,
as a plain child. Either way: its own session (killed whole), rlimits, an unprivileged uid
when we are root, a minimal environment, and no network unless the spec asks for it.
One loop watches the child's two pipes, its exit, the wall clock and the cancel event, so
that a flood of output, a hung grandchild or a cancel can never block the caller.
"""

from __future__ import annotations

import contextlib
import math
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict

from progenitor.errors import SandboxError, UserError
from progenitor.sandbox import isolation as iso
from progenitor.sandbox.base import (
    Limits,
    LineCallback,
    SandboxCheck,
    SandboxResult,
    SandboxSpec,
)

__all__ = ["ProcessOptions", "ProcessSandbox"]

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "TORCH_NUM_THREADS")
"""Thread-pool sizes set from ``limits.cpus``, so that a 1-CPU candidate does not start 64 threads."""

POLL_SECONDS = 0.05
"""How often the loop looks at the cancel event and the clock when nothing else happens."""
DRAIN_SECONDS = 2.0
"""After the command ends, how long its pipes may still deliver output."""
READ_BYTES = 1 << 16
REAPER_SECONDS = 3.0
"""How long the plain mode's reaper gets to kill what the command left and exit."""


class ProcessOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    isolation: Literal["auto", "bwrap", "none"] = "auto"
    """auto: bubblewrap when it works here, else a plain child; bwrap: bubblewrap or fail; none: a plain child."""
    uid: Optional[int] = None
    """Who the command runs as when we are root, so that it owns nothing on the host and
    RLIMIT_NPROC (which root ignores) applies. None: a fresh unused uid for every run, so
    that sandboxes running at once neither share a process limit nor each other's files;
    a number (65534: nobody) pins it."""
    gid: Optional[int] = None
    """Group of the command when we are root (None: the same number as the uid)."""


class ProcessSandbox:
    """Runs a command as a sandboxed child process; see the module docstring."""

    name = "process"

    def __init__(self, **options: object) -> None:
        # Options meant for other backends (``image=`` for docker) arrive too: ignore them.
        known = {k: v for k, v in options.items() if k in ProcessOptions.model_fields}
        self.options = ProcessOptions(**known)

    # ------------------------------------------------------------------ check

    def _mode(self) -> tuple[str, str]:
        """("bwrap" | "none", why), or ("", why) when bwrap was required and does not work."""
        if self.options.isolation == "none":
            return "none", "isolation=none asked for"
        works, why = iso.probe_bwrap()
        if works:
            return "bwrap", why
        return ("", why) if self.options.isolation == "bwrap" else ("none", why)

    def _isolation(self, mode: str, network: bool) -> list[str]:
        root = iso.is_root()
        if mode == "bwrap":
            labels = ["mountns", "pidns", "ipcns"] + ([] if network else ["netns"])
            labels += ["uid", "nnp"] if root else []
        else:
            labels = ["netns"] if not network and iso.probe_netns() else []
            labels += ["uid", "nnp"] if root else ["nnp"]
        return [*labels, "rlimits", "session", "pdeathsig"]

    def check(self) -> SandboxCheck:
        mode, why = self._mode()
        if not mode:
            return SandboxCheck(backend=self.name, available=False, detail=f"bubblewrap asked for but unusable: {why}")
        if not iso.is_root():
            user = "our own uid"
        else:
            user = "a fresh uid per run" if self.options.uid is None else f"uid {self.options.uid}"
        if mode == "bwrap":
            detail = (f"{why}: whitelist view, private network/PID/IPC namespaces, runs as {user}, "
                      "memory and process rlimits")
        else:
            net = "network namespace" if iso.probe_netns() else "NO network isolation (cannot unshare)"
            detail = (f"plain child process ({why}): own session under a reaper, memory and process rlimits, "
                      f"runs as {user}, {net}; the host's files are guarded only by their permissions")
            other = self.options.uid if self.options.uid is not None else -1
            closed = iso.unreachable_parent(Path(os.path.realpath(sys.executable)), other) if iso.is_root() else None
            if closed is not None:
                detail += f"; this Python is out of the command's reach ({closed} is closed), it gets the system's"
        return SandboxCheck(backend=self.name, available=True, detail=detail,
                            isolation=self._isolation(mode, network=False))

    # ------------------------------------------------------------------ run

    def run(
        self,
        spec: SandboxSpec,
        on_line: Optional[LineCallback] = None,
        cancel: Optional[threading.Event] = None,
    ) -> SandboxResult:
        mode, why = self._mode()
        if not mode:
            raise SandboxError(f"the process sandbox was asked for bubblewrap, which cannot run here: {why}")
        tree, out = _existing(spec.tree, "tree"), _existing(spec.out, "out")
        data = _existing(spec.data, "data") if spec.data is not None else None
        command = fill_template(spec.command, tree=tree, data=data, out=out)
        user = self._user()
        scratch = None if mode == "bwrap" else Path(tempfile.mkdtemp(prefix="progenitor-home-"))
        try:
            env = build_env(spec, home="/tmp" if scratch is None else str(scratch))
            if mode == "bwrap":
                argv, setup = self._bwrap(spec, tree, out, data, env, command, user)
            else:
                argv, setup = self._plain(spec, tree, out, data, command, user)
            if user is not None:
                self._hand_over(spec, tree, out, data, scratch, user)
            outcome = _launch(argv, env, tree, setup, mode, spec.limits, on_line, cancel)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        result = judge(outcome, spec.limits)
        return result.model_copy(update={"backend": self.name, "isolation": self._isolation(mode, spec.network)})

    def _user(self) -> Optional[tuple[int, int]]:
        """(uid, gid) the command is dropped to, or None when we are not root (it keeps ours)."""
        if not iso.is_root():
            return None
        uid = self.options.uid if self.options.uid is not None else iso.fresh_uid()
        return uid, self.options.gid if self.options.gid is not None else uid

    def _hand_over(self, spec: SandboxSpec, tree: Path, out: Path, data: Optional[Path],
                   scratch: Optional[Path], user: tuple[int, int]) -> None:
        """As root: give the unprivileged command its writable dirs, and let it read the data.
        Extra mounts are the caller's own: their permissions are left as they are."""
        iso.hand_over([p for p in (tree, out, scratch) if p is not None], *user)
        if data is not None:
            iso.grant_read(data)

    def _bwrap(self, spec, tree, out, data, env, command, user) -> tuple[list[str], iso.ChildSetup]:
        view = iso.View(
            tree=tree, out=out, data=data, network=spec.network, gpus=spec.limits.gpus,
            binds=[(_existing(m.source, "mount"), Path(m.target or m.source), m.read_only) for m in spec.mounts],
            python_roots=iso.python_roots(env["PATH"]),
            tmp_bytes=spec.limits.memory_bytes,
        )
        argv = iso.bwrap_argv(view, iso.reaper_argv(command, *(user or (None, None))))
        argv[0] = shutil.which("bwrap") or "bwrap"
        setup = iso.ChildSetup(
            memory_bytes=spec.limits.memory_bytes, processes=iso.nproc_limit(spec.limits.processes),
        )
        return argv, setup

    def _plain(self, spec, tree, out, data, command, user) -> tuple[list[str], iso.ChildSetup]:
        for mount in spec.mounts:
            if mount.target is not None and Path(mount.target) != Path(mount.source):
                raise SandboxError(
                    f"the process sandbox without bubblewrap cannot show {mount.source} at {mount.target}")
        uid = user[0] if user else os.getuid()
        if user:
            for path in [tree, out, data] + [Path(m.source) for m in spec.mounts]:
                blocked = iso.unreachable_parent(path, uid) if path is not None else None
                if blocked is not None:
                    raise SandboxError(f"uid {uid} cannot reach {path}: {blocked} is closed to other users; "
                                       "put the sandbox's directories under a world-searchable one")
        setup = iso.ChildSetup(
            memory_bytes=spec.limits.memory_bytes,
            processes=iso.nproc_limit(spec.limits.processes),
            unshare_net=not spec.network and iso.probe_netns(),
        )
        return iso.reaper_argv(command, *(user or (None, None))), setup


# ---------------------------------------------------------------------- spec helpers


def _existing(path: Optional[Path], what: str) -> Path:
    try:
        resolved = Path(path).resolve(strict=True)  # type: ignore[arg-type]
    except (OSError, TypeError) as exc:
        raise SandboxError(f"the sandbox's {what} directory {path} does not exist") from exc
    return resolved


def fill_template(template: str, tree: Path, out: Path, data: Optional[Path]) -> str:
    """Put the paths into the command, shell-quoted (so write ``{out}``, not ``"{out}"``).
    Only the three placeholders are touched: the rest may use braces freely (awk, ``${VAR}``)."""
    if "{data}" in template and data is None:
        raise UserError("the command uses {data} but the sandbox was given no data directory")
    for key, value in (("{tree}", tree), ("{out}", out), ("{data}", data)):
        if value is not None:
            template = template.replace(key, shlex.quote(str(value)))
    return template


def build_env(spec: SandboxSpec, home: str) -> dict[str, str]:
    """The command's whole environment: never the host's (no API key may leak in)."""
    threads = str(max(1, math.floor(spec.limits.cpus)))
    path = os.pathsep.join(dict.fromkeys([os.path.dirname(sys.executable), *iso.SYSTEM_PATH]))
    env = {
        "PATH": path, "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        # A fresh uid has no passwd entry: getpass.getuser() and friends read these first.
        "USER": "sandbox", "LOGNAME": "sandbox",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
        "CUDA_VISIBLE_DEVICES": ",".join(spec.limits.gpus),
    }
    env.update({var: threads for var in THREAD_VARS})
    env.update(spec.env)
    return env


# ---------------------------------------------------------------------- the child and its loop


class _Tail:
    """One output stream: hands each line to ``on_line`` and keeps the last ``cap`` bytes."""

    MAX_LINE = 1 << 16  # a line longer than this is passed on in pieces

    def __init__(self, name: str, cap: int, on_line: Optional[LineCallback]) -> None:
        self.name, self.cap, self.on_line = name, cap, on_line
        self.kept = bytearray()
        self.partial = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.kept += chunk
        if len(self.kept) > 2 * self.cap:
            del self.kept[: len(self.kept) - self.cap]
        if self.on_line is None:
            return
        self.partial += chunk
        *lines, rest = self.partial.split(b"\n")
        while len(rest) > self.MAX_LINE:
            lines.append(rest[: self.MAX_LINE])
            rest = rest[self.MAX_LINE:]
        self.partial = bytearray(rest)
        for line in lines:
            self.on_line(self.name, line.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> None:
        if self.on_line is not None and self.partial:
            self.on_line(self.name, self.partial.decode("utf-8", "replace").rstrip("\r"))
        self.partial = bytearray()

    def text(self) -> str:
        tail = bytes(self.kept[-self.cap:]) if self.cap > 0 else b""
        if self.truncated:  # do not start in the middle of a UTF-8 character
            while tail and tail[0] & 0xC0 == 0x80:
                tail = tail[1:]
        return tail.decode("utf-8", "replace")

    @property
    def truncated(self) -> bool:
        return self.total > self.cap


def _launch(argv, env, cwd, setup, mode, limits: Limits, on_line, cancel) -> Outcome:
    """Start ``argv`` and see it through: output, exit, timeout or cancel, and teardown."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
            preexec_fn=iso.make_preexec(setup),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(f"could not start the sandboxed command: {exc}") from exc
    out = _Tail("stdout", limits.output_bytes, on_line)
    err = _Tail("stderr", limits.output_bytes, on_line)
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    try:
        ended_by = _watch(proc.pid, streams, started + limits.wall_time, cancel)
    except BaseException:
        out.on_line = err.on_line = None  # a failing callback (or Ctrl-C) must not stop the teardown
        raise
    finally:
        try:
            _kill(proc.pid, mode)
            _drain(streams, time.monotonic() + DRAIN_SECONDS)
        finally:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)  # we reaped it: keep Popen from trying
            for pipe in (proc.stdout, proc.stderr):
                pipe.close()
    return Outcome(
        ended_by=ended_by, returncode=proc.returncode, duration=time.monotonic() - started,
        cpu_seconds=usage.ru_utime + usage.ru_stime, stdout=out.text(), stderr=err.text(),
        truncated=out.truncated or err.truncated,
    )


def _watch(pid: int, streams: dict[int, _Tail], deadline: float, cancel: Optional[threading.Event]) -> str:
    """Read output until the child exits ("exit"), the clock runs out ("timeout") or the
    cancel event is set ("cancel"). The child is left unreaped, so its pid stays ours."""
    selector = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    pidfd = _pidfd(pid)
    if pidfd is not None:
        selector.register(pidfd, selectors.EVENT_READ)  # readable once the child has exited
    try:
        while not _exited(pid):
            if cancel is not None and cancel.is_set():
                return "cancel"
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            for key, _ in selector.select(min(POLL_SECONDS, left)):
                if key.fd in streams and not _read(key.fd, streams[key.fd]):
                    selector.unregister(key.fd)
        return "exit"
    finally:
        selector.close()
        if pidfd is not None:
            os.close(pidfd)


def _drain(streams: dict[int, _Tail], until: float) -> None:
    """Read what is left in the pipes, up to EOF or ``until`` (an escaped process may hold them)."""
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    try:
        while selector.get_map() and time.monotonic() < until:
            for key, _ in selector.select(max(0.0, until - time.monotonic())):
                if not _read(key.fd, streams[key.fd]):
                    selector.unregister(key.fd)
    finally:
        selector.close()
        for tail in streams.values():
            tail.close()


def _read(fd: int, tail: _Tail) -> bool:
    """Read one chunk into ``tail``; False at end of file."""
    try:
        chunk = os.read(fd, READ_BYTES)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    tail.feed(chunk)
    return True


def _pidfd(pid: int) -> Optional[int]:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None  # old kernel or Python: the loop polls instead


def _exited(pid: int) -> bool:
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill(pid: int, mode: str) -> None:
    """Stop the command and everything it started, and let ``pid`` exit once all is gone.

    Plain: SIGTERM asks the reaper (``pid``) to kill everything it collected, then exit.
    bwrap: SIGKILL to the reaper, the namespace's init: the kernel kills every process of
    the namespace before the init is gone and bwrap, which reaps it, exits. SIGKILL to the
    whole group is the last resort (bwrap still starting; a non-root command that killed
    its plain reaper): bwrap's parent-death signal then ends the namespace."""
    if not _exited(pid):
        targets = [pid] if mode != "bwrap" else _children(pid)
        for target in targets:
            _signal(target, signal.SIGTERM if mode != "bwrap" else signal.SIGKILL)
        until = time.monotonic() + (REAPER_SECONDS if targets else 0)
        while not _exited(pid) and time.monotonic() < until:
            time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: look at every process's parent
        found = []
        for entry in os.scandir("/proc"):
            try:
                with open(os.path.join(entry.path, "stat"), "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
        return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


# ---------------------------------------------------------------------- what happened, in one sentence


class Outcome(BaseModel):
    """What the loop saw, before it is judged."""

    ended_by: Literal["exit", "timeout", "cancel"]
    returncode: int
    """As from ``subprocess``: negative for a signal."""
    duration: float
    cpu_seconds: float
    stdout: str
    stderr: str
    truncated: bool


MEMORY_SIGNS = ("memoryerror", "std::bad_alloc", "cannot allocate memory", "unable to allocate",
                "can't allocate memory", "out of memory")
"""What a process that hit RLIMIT_DATA prints last (Python, C++, numpy, PyTorch, the shell)."""
FORK_SIGNS = ("cannot fork", "can't fork", "can't start new thread", "fork: resource temporarily unavailable",
              "fork: retry")


def judge(outcome: Outcome, limits: Limits) -> SandboxResult:
    """The status, exit code and one-sentence reason of a finished command."""
    code = outcome.returncode if outcome.returncode >= 0 else 128 - outcome.returncode
    last = _last_line(outcome.stderr)
    forks = _fork_note(outcome.stderr, limits)
    status, exit_code, reason = "failed", code, ""
    if outcome.ended_by == "timeout":
        status, exit_code = "timeout", None
        reason = f"killed after {limits.wall_time:g} s: wall-clock timeout{forks}"
    elif outcome.ended_by == "cancel":
        status, exit_code, reason = "killed", None, f"killed after {outcome.duration:.1f} s: cancelled"
    elif code == 0:
        status = "ok"
    elif _out_of_memory(outcome.stderr):
        limit = f" (limit {_size(limits.memory_bytes)})" if limits.memory_bytes else ""
        status, reason = "oom", f"out of memory{limit}: {last}"
    elif code == 128 + signal.SIGKILL:
        status = "oom"
        reason = "killed by SIGKILL (exit code 137), most likely by the kernel's out-of-memory killer"
    elif 128 < code < 128 + signal.NSIG:
        name = signal.Signals(code - 128).name
        reason = f"killed by {name} (exit code {code})" + (f": {last}" if last else "") + forks
    else:
        reason = f"exit code {code}" + (f": {last}" if last else "") + forks
    return SandboxResult(
        status=status, exit_code=exit_code, duration=round(outcome.duration, 3),
        cpu_seconds=round(outcome.cpu_seconds, 3), stdout=outcome.stdout, stderr=outcome.stderr,
        truncated=outcome.truncated, reason=reason,
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text[-4096:].splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _out_of_memory(stderr: str) -> bool:
    tail = "\n".join(stderr[-4096:].splitlines()[-5:]).lower()
    return any(sign in tail for sign in MEMORY_SIGNS)


def _fork_note(stderr: str, limits: Limits) -> str:
    lowered = stderr.lower()
    if any(sign in lowered for sign in FORK_SIGNS):
        return f" (it hit the limit of {limits.processes} processes)"
    return ""


def _size(n: Optional[int]) -> str:
    if n is None:
        return "none"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"
