"""One container's run, watched: its output streamed line by line, the wall time and cancel
enforced from here (the SDK's ``wait(timeout=...)`` is only an HTTP read timeout), and its
end judged like the process backend's. An OOM kill is the daemon's word (the container
state's ``OOMKilled``, which it has from the kernel), never what the command printed."""

from __future__ import annotations

import threading
import time
from typing import Any, Literal, Optional

from progenitor.errors import SandboxError
from progenitor.sandbox.base import LineCallback, SandboxResult, SandboxSpec
from progenitor.sandbox.capture import Tail
from progenitor.sandbox.docker.container import isolation
from progenitor.sandbox.outcome import Outcome, judge

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
    ended_by, counted = _wait(api, container, reader, spec.limits.wall_time, cancel, started)
    if ended_by != "exit":
        _kill(container)
    reader.join(10)
    state = _final_state(container)
    return _result(spec, ended_by, state, counted, tails, time.monotonic() - started)


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
) -> tuple[EndedBy, Counted]:
    """Until the output ends (the container stopped), the wall time passes or cancel is set."""
    deadline = started + wall_time
    counted, next_sample = Counted(), time.monotonic() + STATS_EVERY
    while reader.is_alive():
        if cancel is not None and cancel.is_set():
            return "cancel", counted
        if time.monotonic() >= deadline:
            return "timeout", counted
        reader.join(0.05)
        if time.monotonic() >= next_sample:
            counted.sample(api, container.id)
            next_sample = time.monotonic() + STATS_EVERY
    return "exit", counted


class Counted:
    """What the daemon's one-shot stats said so far: CPU seconds and the memory high-water mark
    (0 / None when it cannot tell: the container may be gone, or the kernel keeps no peak)."""

    def __init__(self) -> None:
        self.cpu_seconds, self.memory_peak = 0.0, None

    def sample(self, api: Any, container_id: str) -> None:
        try:
            stats = api.stats(container_id, stream=False, one_shot=True)
        except Exception:  # noqa: BLE001 - stats are best effort
            return
        try:
            self.cpu_seconds = max(self.cpu_seconds, stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9)
        except (KeyError, TypeError):
            pass
        peak = (stats.get("memory_stats") or {}).get("max_usage")
        if isinstance(peak, int):
            self.memory_peak = max(self.memory_peak or 0, peak)


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
    spec: SandboxSpec, ended_by: EndedBy, state: dict, counted: Counted, tails: dict[str, Tail], duration: float,
) -> SandboxResult:
    """Judged like the process backend; OOM kills are the container state's ``OOMKilled``."""
    code = state.get("ExitCode")
    outcome = Outcome(
        ended_by=ended_by, returncode=code if isinstance(code, int) else -9, duration=duration,
        cpu_seconds=counted.cpu_seconds, stdout=tails["stdout"].text(), stderr=tails["stderr"].text(),
        truncated=any(t.truncated for t in tails.values()), oom_killed=bool(state.get("OOMKilled")),
        memory_peak=counted.memory_peak,
    )
    result = judge(outcome, spec.limits)
    return result.model_copy(update={"backend": "docker", "isolation": isolation(spec.network)})


def _explain(exc: Exception, spec: SandboxSpec) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    if spec.limits.gpus and ("gpu" in text.lower() or "device driver" in text.lower()):
        return f"{text} (GPUs were asked for: install the NVIDIA Container Toolkit on the Docker host)"
    return text
