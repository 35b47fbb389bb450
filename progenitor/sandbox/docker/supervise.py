"""One container's run, watched: its output streamed line by line, the wall time and cancel
enforced from here (the SDK's ``wait(timeout=...)`` is only an HTTP read timeout), and its
end judged like the process backend's, except that Docker knows for sure about OOM kills."""

from __future__ import annotations

import threading
import time
from typing import Any, Literal, Optional

from progenitor.errors import SandboxError
from progenitor.sandbox.base import LineCallback, SandboxResult, SandboxSpec
from progenitor.sandbox.capture import Tail
from progenitor.sandbox.docker.container import isolation
from progenitor.sandbox.outcome import Outcome, judge, limit_note

__all__ = ["supervise"]

STATS_EVERY = 0.5
"""Seconds between CPU-usage samples (the daemon's cgroup is gone once the container stops)."""
EndedBy = Literal["exit", "timeout", "cancel"]


def supervise(
    api: Any, container: Any, spec: SandboxSpec, on_line: Optional[LineCallback],
    cancel: Optional[threading.Event], started: float,
) -> SandboxResult:
    """Start the container, stream its output, enforce wall time and cancel, read its end."""
    listener = _forgiving(on_line)
    tails = {s: Tail(s, spec.limits.output_bytes, listener) for s in ("stdout", "stderr")}
    # Attached before the start, so that nothing is missed; the stream ends when the
    # container's stdio closes. (Following the log instead can lose a last unterminated line.)
    frames = api.attach(container.id, stdout=True, stderr=True, stream=True, logs=False, demux=True)
    reader = threading.Thread(target=_pump, args=(frames, tails), daemon=True)
    try:
        container.start()
    except Exception as exc:  # noqa: BLE001 - docker.errors.APIError, told as one sentence
        frames.close()
        raise SandboxError(f"docker could not start the sandbox container: {_explain(exc, spec)}") from None
    reader.start()
    ended_by, cpu = _wait(api, container, reader, spec.limits.wall_time, cancel, started)
    if ended_by != "exit":
        _kill(container)
    reader.join(10)
    state = _final_state(container)
    return _result(spec, ended_by, state, cpu, tails, time.monotonic() - started)


def _forgiving(on_line: Optional[LineCallback]) -> Optional[LineCallback]:
    """``on_line``, made unable to stop the reader thread: a failing listener must not lose
    the candidate's output."""
    if on_line is None:
        return None

    def call(stream: str, line: str) -> None:
        try:
            on_line(stream, line)
        except Exception:  # noqa: BLE001
            pass

    return call


def _pump(frames: Any, tails: dict[str, Tail]) -> None:
    """Read the attached streams until the container's stdio closes."""
    try:
        for out, err in frames:
            for stream, chunk in (("stdout", out), ("stderr", err)):
                if chunk:
                    tails[stream].feed(chunk)
    except Exception:  # noqa: BLE001 - the container was removed under us; keep what we have
        pass
    finally:
        frames.close()
    for tail in tails.values():
        tail.close()


def _wait(
    api: Any, container: Any, reader: threading.Thread, wall_time: float,
    cancel: Optional[threading.Event], started: float,
) -> tuple[EndedBy, float]:
    """Until the output ends (the container stopped), the wall time passes or cancel is set."""
    deadline = started + wall_time
    cpu, next_sample = 0.0, time.monotonic() + STATS_EVERY
    while reader.is_alive():
        if cancel is not None and cancel.is_set():
            return "cancel", cpu
        if time.monotonic() >= deadline:
            return "timeout", cpu
        reader.join(0.05)
        if time.monotonic() >= next_sample:
            cpu = max(cpu, _cpu_seconds(api, container.id))
            next_sample = time.monotonic() + STATS_EVERY
    return "exit", cpu


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
    spec: SandboxSpec, ended_by: EndedBy, state: dict, cpu: float, tails: dict[str, Tail], duration: float,
) -> SandboxResult:
    """Judged like the process backend, except that Docker knows for sure about OOM kills."""
    code = state.get("ExitCode")
    outcome = Outcome(
        ended_by=ended_by, returncode=code if isinstance(code, int) else -9, duration=duration,
        cpu_seconds=cpu, stdout=tails["stdout"].text(), stderr=tails["stderr"].text(),
        truncated=any(t.truncated for t in tails.values()),
    )
    result = judge(outcome, spec.limits)
    if ended_by == "exit" and state.get("OOMKilled"):
        result = result.model_copy(update={
            "status": "oom",
            "reason": f"out of memory{limit_note(spec.limits)}: the kernel's OOM killer stopped the container"})
    elif result.status == "oom" and not state.get("OOMKilled") and code == 137:
        result = result.model_copy(update={"status": "failed", "reason": "killed by SIGKILL (exit code 137)"})
    return result.model_copy(update={"backend": "docker", "isolation": isolation(spec.network)})


def _explain(exc: Exception, spec: SandboxSpec) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    if spec.limits.gpus and ("gpu" in text.lower() or "device driver" in text.lower()):
        return f"{text} (GPUs were asked for: install the NVIDIA Container Toolkit on the Docker host)"
    return text
