"""The docker backend: every candidate in its own hardened, throwaway container.

The container has no network (unless the spec asks), no capabilities, no way to gain
privileges, a read-only root with a tmpfs ``/tmp``, a non-root user, and the memory /
CPU / pids limits of the spec. The candidate's tree is mounted read-write at
``/sandbox/tree`` (the working directory), its outputs at ``/sandbox/out`` and the data
read-only at ``/sandbox/data``; the command template is filled with those paths.

The SDK's own ``wait(timeout=...)`` is only an HTTP read timeout, so the wall-time limit
is enforced here: the container is killed when it is reached. Containers carry the label
``progenitor=1`` (plus run and candidate) so that ``sweep`` can remove what a crashed run
left behind; ``run`` removes its container whatever happens.
"""

from __future__ import annotations

import collections
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Optional

from progenitor.errors import SandboxError
from progenitor.sandbox.base import LineCallback, SandboxCheck, SandboxResult, SandboxSpec
from progenitor.sandbox.images import DEFAULT_BASE, PATH, connect, image_exists, missing_image_message

TREE, DATA, OUT = "/sandbox/tree", "/sandbox/data", "/sandbox/out"
LABEL = "progenitor"
NOBODY = (65534, 65534)
ISOLATION = ["container", "mountns", "pidns", "ipcns", "netns", "uid", "nnp", "cap-drop-all", "seccomp",
             "readonly-root", "cgroup-limits"]
"""What is in force (the process backend's words where they mean the same); "netns" only without network."""
TMPFS_BYTES = 1 << 30
"""Size of the tmpfs /tmp (it counts against the memory limit only as far as it is used)."""
STATS_EVERY = 0.5
"""Seconds between CPU-usage samples (the daemon's cgroup is gone once the container stops)."""
GUARD_SECONDS = 10
"""How long past its wall time a container whose watcher died kills itself."""
SHM_BYTES = 1 << 30
"""/dev/shm for PyTorch data loaders (Docker's 64 MB default breaks them); capped by half the memory limit."""


class DockerSandbox:
    """Runs a spec in a fresh container of ``image`` (default: the base image)."""

    name = "docker"

    def __init__(self, image: Optional[str] = None, client: Any = None, **_ignored: Any):
        self.image = image or DEFAULT_BASE
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    def check(self) -> SandboxCheck:
        try:
            client = self.client
            info = client.info()
        except SandboxError as exc:
            return SandboxCheck(backend=self.name, available=False, detail=str(exc))
        gpu = "nvidia" in (info.get("Runtimes") or {})
        gpu_text = "GPU support (nvidia runtime)" if gpu else "no GPU support (no nvidia runtime)"
        daemon = f"Docker {info.get('ServerVersion', '?')} answers"
        if not image_exists(client, self.image):
            return SandboxCheck(
                backend=self.name, available=False,
                detail=f"{daemon}, but {missing_image_message(self.image)}; {gpu_text}",
            )
        return SandboxCheck(
            backend=self.name, available=True, isolation=isolation(network=False),
            detail=f"{daemon}, image {self.image} present, {gpu_text}",
        )

    def run(
        self,
        spec: SandboxSpec,
        on_line: Optional[LineCallback] = None,
        cancel: Optional[threading.Event] = None,
    ) -> SandboxResult:
        import docker
        import requests

        started = time.monotonic()
        container = self.create(spec)
        try:
            return _supervise(self.client.api, container, spec, on_line, cancel, started)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            # E.g. someone else's sweep removed the container, or the daemon went away.
            raise SandboxError(f"docker failed while running sandbox container {container.name}: {exc}") from None
        finally:
            _remove(container)

    def create(self, spec: SandboxSpec) -> Any:
        """Create (not start) the container for ``spec``; the caller must remove it."""
        import docker

        if not image_exists(self.client, self.image):
            raise SandboxError(missing_image_message(self.image))
        user = _grant_access(spec)
        try:
            return self.client.containers.create(self.image, **container_options(spec, user))
        except docker.errors.APIError as exc:
            raise SandboxError(f"docker could not create the sandbox container: {exc.explanation or exc}") from None

    def sweep(self, run: Optional[str] = None) -> int:
        """Remove every progenitor container (of ``run`` only, if given); returns how many."""
        selector = [f"{LABEL}=1"] + ([f"{LABEL}.run={run}"] if run else [])
        leftovers = self.client.containers.list(all=True, filters={"label": selector})
        if run is None:  # and what an interrupted `progenitor sandbox build` left
            builds = self.client.containers.list(all=True, filters={"label": [f"{LABEL}.build"]})
            leftovers += [c for c in builds if c.labels.get(f"{LABEL}.build")]
        for container in leftovers:
            _remove(container)
        return len(leftovers)


def container_options(spec: SandboxSpec, user: str) -> dict[str, Any]:
    """Everything ``containers.create`` is given besides the image: the hardening lives here."""
    import docker

    limits = spec.limits
    options: dict[str, Any] = dict(
        # The wall time is enforced from outside (the container is killed); coreutils'
        # timeout is a second guard for when the process that watches it dies.
        command=["timeout", "-s", "KILL", str(int(limits.wall_time + GUARD_SECONDS)), "/bin/sh", "-c", fill_command(spec)],
        name=_name(spec.labels),
        labels={LABEL: "1", **{f"{LABEL}.{k}": str(v) for k, v in spec.labels.items()}},
        user=user,
        working_dir=TREE,
        environment=sandbox_env(spec),
        mounts=_mounts(spec),
        network_mode="bridge" if spec.network else "none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        read_only=True,
        tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={TMPFS_BYTES},mode=1777"},
        nano_cpus=int(limits.cpus * 1e9),
        pids_limit=limits.processes,
        shm_size=min(SHM_BYTES, limits.memory_bytes // 2) if limits.memory_bytes else SHM_BYTES,
        # The daemon keeps stdout/stderr on disk for the logs API; bound it.
        log_config=docker.types.LogConfig(type="json-file", config={"max-size": "64m", "max-file": "2"}),
        init=False,
        stdin_open=False,
        tty=False,
    )
    if limits.memory_bytes:
        # Same value for memory+swap: no swapping past the limit.
        options.update(mem_limit=limits.memory_bytes, memswap_limit=limits.memory_bytes)
    if limits.gpus:
        options["device_requests"] = [docker.types.DeviceRequest(device_ids=list(limits.gpus), capabilities=[["gpu"]])]
    return options


def fill_command(spec: SandboxSpec) -> str:
    """The command with ``{tree}``, ``{data}`` and ``{out}`` as the container sees them."""
    from progenitor.sandbox.process import fill_template

    return fill_template(spec.command, Path(TREE), Path(OUT), Path(DATA) if spec.data is not None else None)


def sandbox_env(spec: SandboxSpec) -> dict[str, str]:
    """The process backend's minimal environment, with the container's own PATH and GPU numbering."""
    from progenitor.sandbox.process import build_env

    env = build_env(spec, "/tmp")
    env.update({"MPLCONFIGDIR": "/tmp", "PATH": PATH})
    # Docker exposes only the requested GPUs, renumbered from 0 inside the container.
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(spec.limits.gpus)))
    env.update(spec.env)
    return env


def _mounts(spec: SandboxSpec) -> list[Any]:
    from docker.types import Mount

    mounts = [
        Mount(TREE, str(spec.tree.resolve()), type="bind", read_only=False),
        Mount(OUT, str(spec.out.resolve()), type="bind", read_only=False),
    ]
    if spec.data is not None:
        mounts.append(Mount(DATA, str(spec.data.resolve()), type="bind", read_only=True))
    for extra in spec.mounts:
        source = extra.source.resolve()
        mounts.append(Mount(extra.target or str(source), str(source), type="bind", read_only=extra.read_only))
    return mounts


def _name(labels: dict[str, str]) -> str:
    parts = [labels.get(k, "") for k in ("run", "generation", "candidate")]
    stem = "-".join(p for p in parts if p)
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in stem)[:60]
    return f"progenitor-{safe + '-' if safe else ''}{secrets.token_hex(4)}"


def _grant_access(spec: SandboxSpec) -> str:
    """The container's user, after making the mounted dirs usable by it.

    A non-root host user runs the container as itself, so the files it leaves are its own.
    Root runs it as nobody: the writable dirs are handed to nobody, the read-only ones are
    made readable by others where they are not.
    """
    if os.getuid() != 0:
        return f"{os.getuid()}:{os.getgid()}"
    writable = [spec.tree, spec.out] + [m.source for m in spec.mounts if not m.read_only]
    readable = ([spec.data] if spec.data is not None else []) + [m.source for m in spec.mounts if m.read_only]
    for path in writable:
        _walk(Path(path), lambda p: os.chown(p, *NOBODY, follow_symlinks=False))
    for path in readable:
        _walk(Path(path), _make_readable)
    return f"{NOBODY[0]}:{NOBODY[1]}"


def _walk(root: Path, action: Any) -> None:
    if not root.exists():
        raise SandboxError(f"cannot mount {root} into the sandbox: it does not exist")
    action(root)
    if root.is_dir() and not root.is_symlink():
        for parent, dirs, files in os.walk(root):
            for name in dirs + files:
                action(os.path.join(parent, name))


def _make_readable(path: str) -> None:
    import stat

    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return
    want = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else 0)
    if st.st_mode & want != want:
        os.chmod(path, st.st_mode | want)


class _Tail:
    """The last ``cap`` bytes of one stream, and whether anything was cut."""

    def __init__(self, cap: int):
        self.cap, self.size, self.truncated = cap, 0, False
        self.pieces: collections.deque[bytes] = collections.deque()

    def add(self, piece: bytes) -> None:
        if len(piece) > self.cap:
            piece, self.truncated = piece[-self.cap :], True
        self.pieces.append(piece)
        self.size += len(piece)
        while self.size > self.cap:
            first, excess = self.pieces.popleft(), self.size - self.cap
            if len(first) > excess:  # keep the end of a partly cut piece
                self.pieces.appendleft(first[excess:])
            self.size -= min(len(first), excess)
            self.truncated = True

    def text(self) -> str:
        return b"".join(self.pieces).decode(errors="replace")


MAX_LINE = 1 << 16
"""A line longer than this is handed on in pieces (one endless line must not fill memory)."""


def _pump(frames: Any, tails: dict[str, _Tail], on_line: Optional[LineCallback]) -> None:
    """Read the attached streams until the container's stdio closes, line by line."""
    pending = {"stdout": b"", "stderr": b""}
    try:
        for out, err in frames:
            for stream, chunk in (("stdout", out), ("stderr", err)):
                if chunk:
                    pending[stream] = _lines(pending[stream] + chunk, stream, tails[stream], on_line)
    except Exception:  # noqa: BLE001 - the container was removed under us; keep what we have
        pass
    finally:
        frames.close()
    for stream, rest in pending.items():
        if rest:
            _emit(rest, stream, tails[stream], on_line, newline=False)


def _lines(buffer: bytes, stream: str, tail: _Tail, on_line: Optional[LineCallback]) -> bytes:
    """Emit the complete lines of ``buffer`` (long ones in pieces); return what is left."""
    *complete, rest = buffer.split(b"\n")
    for raw in complete:
        _emit(raw, stream, tail, on_line, newline=True)
    while len(rest) > MAX_LINE:
        _emit(rest[:MAX_LINE], stream, tail, on_line, newline=False)
        rest = rest[MAX_LINE:]
    return rest


def _emit(raw: bytes, stream: str, tail: _Tail, on_line: Optional[LineCallback], newline: bool) -> None:
    tail.add(raw + b"\n" if newline else raw)
    if on_line is not None:
        try:
            on_line(stream, raw.decode(errors="replace").rstrip("\r"))
        except Exception:  # noqa: BLE001 - a failing listener must not lose the candidate's output
            pass


def _supervise(
    api: Any, container: Any, spec: SandboxSpec, on_line: Optional[LineCallback],
    cancel: Optional[threading.Event], started: float,
) -> SandboxResult:
    """Start the container, stream its output, enforce wall time and cancel, read its end."""
    tails = {s: _Tail(spec.limits.output_bytes) for s in ("stdout", "stderr")}
    # Attached before the start, so that nothing is missed; the stream ends when the
    # container's stdio closes. (Following the log instead can lose a last unterminated line.)
    frames = api.attach(container.id, stdout=True, stderr=True, stream=True, logs=False, demux=True)
    reader = threading.Thread(target=_pump, args=(frames, tails, on_line), daemon=True)
    try:
        container.start()
    except Exception as exc:  # noqa: BLE001 - docker.errors.APIError, told as one sentence
        frames.close()
        raise SandboxError(f"docker could not start the sandbox container: {_explain(exc, spec)}") from None
    reader.start()
    verdict, cpu = _wait(api, container, reader, spec.limits.wall_time, cancel, started)
    if verdict:
        _kill(container)
    reader.join(10)
    state = _final_state(container)
    return _result(spec, verdict, state, cpu, tails, time.monotonic() - started)


def _wait(
    api: Any, container: Any, reader: threading.Thread, wall_time: float,
    cancel: Optional[threading.Event], started: float,
) -> tuple[Optional[str], float]:
    """Until the output ends (the container stopped), the wall time passes or cancel is set."""
    deadline = started + wall_time
    cpu, next_sample = 0.0, time.monotonic() + STATS_EVERY
    while reader.is_alive():
        if cancel is not None and cancel.is_set():
            return "killed", cpu
        if time.monotonic() >= deadline:
            return "timeout", cpu
        reader.join(0.05)
        if time.monotonic() >= next_sample:
            cpu = max(cpu, _cpu_seconds(api, container.id))
            next_sample = time.monotonic() + STATS_EVERY
    return None, cpu


def _cpu_seconds(api: Any, container_id: str) -> float:
    """CPU seconds used so far, from the daemon's one-shot stats (0 when it cannot tell)."""
    try:
        stats = api.stats(container_id, stream=False, one_shot=True)
        return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
    except Exception:  # noqa: BLE001 - stats are best effort: the container may be gone
        return 0.0


def _kill(container: Any) -> None:
    try:
        container.kill()
    except Exception:  # noqa: BLE001 - already stopped
        pass


def _final_state(container: Any) -> dict:
    try:
        container.wait(timeout=30)
        container.reload()
        return container.attrs.get("State", {})
    except Exception as exc:  # noqa: BLE001
        raise SandboxError(f"lost track of sandbox container {container.name}: {exc}") from None


def _result(
    spec: SandboxSpec, verdict: Optional[str], state: dict, cpu: float,
    tails: dict[str, _Tail], duration: float,
) -> SandboxResult:
    """Judged like the process backend, except that Docker knows for sure about OOM kills."""
    from progenitor.sandbox.process import Outcome, judge

    code = state.get("ExitCode")
    outcome = Outcome(
        ended_by={"timeout": "timeout", "killed": "cancel"}.get(verdict or "", "exit"),
        returncode=code if isinstance(code, int) else -9, duration=duration, cpu_seconds=cpu,
        stdout=tails["stdout"].text(), stderr=tails["stderr"].text(),
        truncated=any(t.truncated for t in tails.values()),
    )
    result = judge(outcome, spec.limits)
    if verdict is None and state.get("OOMKilled"):
        limit = f" (limit {_size(spec.limits.memory_bytes)})" if spec.limits.memory_bytes else ""
        result = result.model_copy(update={
            "status": "oom", "reason": f"out of memory{limit}: the kernel's OOM killer stopped the container"})
    elif result.status == "oom" and not state.get("OOMKilled") and code == 137:
        result = result.model_copy(update={"status": "failed", "reason": "killed by SIGKILL (exit code 137)"})
    return result.model_copy(update={"backend": "docker", "isolation": isolation(spec.network)})


def isolation(network: bool) -> list[str]:
    return [label for label in ISOLATION if not (network and label == "netns")]


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


def _explain(exc: Exception, spec: SandboxSpec) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    if spec.limits.gpus and ("gpu" in text.lower() or "device driver" in text.lower()):
        return f"{text} (GPUs were asked for: install the NVIDIA Container Toolkit on the Docker host)"
    return text


def _remove(container: Any) -> None:
    try:
        container.remove(force=True)
    except Exception:  # noqa: BLE001 - already gone (removed, or swept by another process)
        pass
