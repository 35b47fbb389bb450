"""The conformance suite every ``Sandbox`` backend must pass (``sandbox`` is parameterised
over the backends in conftest). Commands name the sandbox's directories only through
``{tree}``, ``{data}`` and ``{out}``, so that the suite holds for a backend that shows them
at other paths; host paths appear only where a test checks they are *not* reachable."""

from __future__ import annotations

import glob
import os
import socket
import threading
import time
import uuid

import pytest

from progenitor.sandbox.base import Limits
from progenitor.sandbox.outcome import size
from tests.helpers.limits import BUSY, FORKER, HOG, MEMORY_KINDS, SLACK, Busy, Peak, last_held
from tests.helpers.waiting import HOLDER, WAIT_READY, lock_released


def test_exit_code_and_output_are_captured(box):
    result = box.run("echo hello; echo oops >&2; exit 3")
    assert result.status == "failed"
    assert result.exit_code == 3
    assert result.stdout == "hello\n"
    assert "oops" in result.stderr
    assert result.reason.startswith("exit code 3") and "oops" in result.reason
    assert result.backend == box.sandbox.name
    assert result.isolation, "a backend says what isolation was in force"


@pytest.mark.parametrize("how, said", [("exit 168", "killed by signal 40 (exit code 168)"),
                                       ("exit 160", "killed by signal 32 (exit code 160)"),
                                       ("kill -s RTMIN+6 $$", "(exit code 168)")])
def test_an_exit_code_of_a_signal_python_has_no_name_for_is_a_reason(box, how, said):
    """Every exit code is the candidate's choice: one of a real-time signal is a failure with a
    reason, not an exception out of the backend (which ended the run, and its resume)."""
    result = box.run(how)
    assert result.status == "failed" and result.exit_code == int(said.split("(exit code ")[1][:3])
    assert said in result.reason, result.reason


def test_success_has_no_reason(box):
    result = box.run("echo fine")
    assert (result.status, result.exit_code, result.reason, result.ok) == ("ok", 0, "", True)
    assert result.duration > 0


def test_failure_reason_names_the_last_error_line(box):
    result = box.run("python3 -c '1/0'")
    assert result.status == "failed"
    assert "ZeroDivisionError" in result.reason


def test_working_directory_is_the_writable_tree(box):
    result = box.run('[ "$(pwd -P)" = "$(cd {tree} && pwd -P)" ] && echo same; cat train.py; echo made > made.txt')
    assert result.ok, result.reason
    assert result.stdout.splitlines() == ["same", "print('training')"]
    assert (box.tree / "made.txt").read_text() == "made\n"


def test_a_read_only_tree_is_readable_and_keeps_nothing(box):
    """The scoring sandbox's tree: the candidate's code runs from it, nothing it writes there stays."""
    result = box.run("cat train.py; touch new.txt 2>/dev/null && echo wrote || echo refused; "
                     "echo x >> train.py 2>/dev/null && echo appended || echo refused; echo ok > {out}/o.txt",
                     read_only_tree=True)
    assert result.ok, result.reason
    assert result.stdout.splitlines() == ["print('training')", "refused", "refused"]
    assert sorted(p.name for p in box.tree.iterdir()) == ["train.py"]
    assert (box.tree / "train.py").read_text().strip() == "print('training')"
    assert (box.out / "o.txt").read_text() == "ok\n"


def test_data_is_readable_but_read_only(box):
    result = box.run("cat {data}/train.txt; touch {data}/new 2>/dev/null && echo wrote || echo refused; "
                     "echo x >> {data}/train.txt 2>/dev/null || echo refused")
    assert result.stdout == "visible data\nrefused\nrefused\n"
    assert sorted(p.name for p in box.data.iterdir()) == ["train.txt"]
    assert (box.data / "train.txt").read_text() == "visible data\n"


def test_outputs_land_on_the_host(box):
    result = box.run("mkdir -p {out}/sub && echo 0.93 > {out}/sub/metrics.txt")
    assert result.ok, result.reason
    assert (box.out / "sub" / "metrics.txt").read_text() == "0.93\n"


def test_a_secret_outside_the_sandbox_cannot_be_read(box, tmp_path):
    secret = tmp_path / "holdout_labels.txt"
    secret.write_text("the labels\n")
    result = box.run(f"cat {secret}; ls {tmp_path}")
    assert "the labels" not in result.stdout
    assert "holdout_labels" not in result.stdout
    assert result.status == "failed"


def test_cannot_write_outside_tree_and_out(box, host_dir):
    result = box.run(f"for d in {host_dir} /etc /usr /; do touch $d/progenitor-escape 2>/dev/null && echo wrote $d; "
                     "done; echo done")
    assert result.stdout == "done\n"
    assert list(host_dir.iterdir()) == []
    assert not os.path.exists("/etc/progenitor-escape")


def test_command_does_not_run_as_root(box):
    result = box.run("id -u")
    assert result.ok, result.reason
    assert result.stdout.strip() != "0"


NETWORK_PROBE = """
import socket, sys
names = sorted(name for _, name in socket.if_nameindex())
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
    reached = "reached"
except OSError:
    reached = "unreachable"
print(",".join(names), reached)
"""


def test_no_network(box):
    with socket.socket() as server:  # a service on the host's loopback
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        (box.tree / "probe.py").write_text(NETWORK_PROBE)
        result = box.run(f"python3 probe.py {port}")
    assert result.ok, result.reason
    assert result.stdout.split() == ["lo", "unreachable"]


def test_host_environment_does_not_leak(box, monkeypatch):
    monkeypatch.setenv("PROGENITOR_CANARY_API_KEY", "sk-canary")
    result = box.run("env", env={"ASKED_FOR": "yes"})
    assert "sk-canary" not in result.stdout
    assert "PROGENITOR_CANARY_API_KEY" not in result.stdout
    assert "ASKED_FOR=yes" in result.stdout.splitlines()


def test_thread_counts_follow_cpus(box):
    cpus = 2.0 if (os.cpu_count() or 1) >= 2 else 1.0
    result = box.run("echo $OMP_NUM_THREADS $MKL_NUM_THREADS $OPENBLAS_NUM_THREADS $TORCH_NUM_THREADS "
                     "[$CUDA_VISIBLE_DEVICES]", limits={"cpus": cpus})
    n = str(int(cpus))
    assert result.stdout.split() == [n, n, n, n, "[]"]


@pytest.mark.loop
def test_wall_timeout_kills_grandchildren(box):
    started = time.monotonic()
    # The grandchild takes its lock before the clock runs out (4 s: room for Python to start
    # on a busy machine); the command would then sleep for a minute.
    result = box.run(f"( {HOLDER} & ); {WAIT_READY}; echo ready; sleep 60", limits={"wall_time": 4.0})
    assert time.monotonic() - started < 40, "the run was not stopped at its wall time"
    assert result.status == "timeout" and "timeout" in result.reason
    assert "ready" in result.stdout, "the grandchild never took its lock"
    assert lock_released(box.out), "the grandchild outlived the timeout"


def test_background_process_is_not_left_behind(box):
    started = time.monotonic()
    result = box.run(f"{HOLDER} & {WAIT_READY}; echo started")
    assert result.ok, result.reason
    assert time.monotonic() - started < 60, "the run waited for its background process (ten minutes)"
    assert lock_released(box.out), "the background process outlived the run"


@pytest.mark.loop
def test_memory_limit_reports_oom(box, limits_held):
    fits = box.run("python3 -c \"b = b'x' * (32 << 20); print('fits')\"", limits={"memory_bytes": 256 << 20})
    assert fits.ok, fits.reason
    result = box.run("python3 -c \"b = b'x' * (768 << 20); print('escaped')\"", limits={"memory_bytes": 256 << 20})
    assert result.status == "oom", result
    assert "escaped" not in result.stdout
    assert "memory" in result.reason


BOMB = "bomb() { [ $1 -gt 0 ] || { sleep 10; return; }; bomb $(($1 - 1)) & bomb $(($1 - 1)) & wait; }; bomb 9; sleep 10"
"""Doubling ten times, 1,024 sleepers: bounded even if a backend's limit failed to hold."""


@pytest.mark.loop
def test_fork_bomb_is_contained_and_reported(box):
    started = time.monotonic()
    result = box.run(BOMB, limits={"processes": 64, "wall_time": 2.0})
    assert time.monotonic() - started < 15, "the bomb ran past its wall time (it sleeps 20 s)"
    assert result.status in ("timeout", "failed")
    assert "fork" in result.stderr.lower(), "the bomb should have hit the process limit"
    assert result.reason
    after = box.run("echo alive")
    assert after.ok, after.reason


@pytest.mark.loop
def test_stdout_flood_keeps_the_tail(box):
    cap = 10_000
    result = box.run("python3 -c \"[print(i) for i in range(200000)]\"; echo END", limits={"output_bytes": cap})
    assert result.ok, result.reason
    assert result.truncated
    assert len(result.stdout.encode()) <= cap
    assert result.stdout.endswith("199999\nEND\n")


def test_one_endless_line_is_capped(box):
    cap = 10_000
    result = box.run("head -c 3000000 /dev/zero | tr '\\0' x; echo; echo END", limits={"output_bytes": cap})
    assert result.ok, result.reason
    assert result.truncated and len(result.stdout.encode()) <= cap
    assert result.stdout.endswith("xxx\nEND\n")


def test_cancel_stops_the_run(box):
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    result = box.run("echo waiting; sleep 60", cancel=cancel)
    assert time.monotonic() - started < 40, "the cancel did not stop the minute-long command"
    assert result.status == "killed"
    assert "cancel" in result.reason


@pytest.mark.loop
def test_lines_are_streamed_as_they_come(box):
    seen: list[tuple[str, str, float]] = []
    started = time.monotonic()

    def on_line(stream: str, line: str) -> None:
        seen.append((stream, line, time.monotonic() - started))

    result = box.run("echo one; echo two >&2; sleep 1; printf 'three\\nlast-without-newline'", on_line=on_line)
    assert result.ok, result.reason
    assert [(s, line) for s, line, _ in seen if s == "stdout"] == [
        ("stdout", "one"), ("stdout", "three"), ("stdout", "last-without-newline")]
    assert [line for s, line, _ in seen if s == "stderr"] == ["two"]
    first = next(t for s, line, t in seen if line == "one")
    three = next(t for s, line, t in seen if line == "three")
    assert three - first > 0.5, "'one' was delivered only at the end"


# --- resource limits, held by the kernel and measured from outside -----------------------------

MEMORY_LIMIT = 256 << 20


@pytest.fixture
def limits_held(box):
    """The backend says the kernel holds memory, CPU and processes here. Where it does not, the
    test fails as root (CI: the machine lacks what the suite needs) and is skipped otherwise
    (a user without root or a delegated cgroup: the documented degraded mode)."""
    missing = box.sandbox.check().limits.missing(Limits(memory_bytes=MEMORY_LIMIT))
    if missing:
        why = "; ".join(f"{name}: {reason}" for name, reason in missing.items())
        if os.geteuid() == 0:
            pytest.fail(f"the {box.sandbox.name} sandbox does not hold its limits here ({why})")
        pytest.skip(f"not root, and no cgroup holds the limits here ({why})")


@pytest.mark.loop
@pytest.mark.parametrize("kind", MEMORY_KINDS)
def test_memory_held_any_way_is_stopped_at_the_limit_as_oom(box, limits_held, kind):
    token = f"progenitor-hog-{uuid.uuid4().hex[:8]}"
    (box.tree / "hog.py").write_text(HOG)
    try:
        result = box.run(f"python3 hog.py {kind} {MEMORY_LIMIT} {token}",
                         limits={"memory_bytes": MEMORY_LIMIT, "wall_time": 60})
    finally:  # the plain child writes the host's own /tmp and /dev/shm: what it left there goes
        for path in glob.glob(f"/tmp/{token}-*") + glob.glob(f"/dev/shm/{token}-*"):
            os.unlink(path)
    held = last_held(result.stdout)
    print(f"{box.sandbox.name} {kind}: held {size(held)} (kernel's peak {size(result.memory_peak)}) "
          f"under {size(MEMORY_LIMIT)}, then {result.status}")
    if kind == "tmp" and "mountns" not in result.isolation and not _tmpfs("/tmp"):
        # The plain child writes the host's own /tmp, which is a disk here: page cache, not
        # memory it holds (the job's disk quota does not reach it either: docs/sandboxes.md).
        assert result.memory_peak is not None and result.memory_peak <= MEMORY_LIMIT * SLACK, result
        return
    assert "ESCAPED" not in result.stdout, result
    assert result.status == "oom", result
    assert result.reason.startswith("out of memory (limit 256 MiB): the kernel's OOM killer"), result.reason
    assert held <= MEMORY_LIMIT * SLACK, f"it held {size(held)} under a limit of {size(MEMORY_LIMIT)}"
    assert held >= MEMORY_LIMIT // 4, "the hog was stopped long before its limit: it measured nothing"
    if result.memory_peak is not None:
        assert result.memory_peak <= MEMORY_LIMIT * SLACK, size(result.memory_peak)


@pytest.mark.loop
def test_four_busy_processes_share_a_quarter_core(box, limits_held):
    token = f"progenitor-busy-{uuid.uuid4().hex[:8]}"
    command = " & ".join([BUSY.format(token=token)] * 4) + " & wait"
    with Busy(token, count=4, seconds=4.0) as busy:
        result = box.run(command, limits={"cpus": 0.25, "wall_time": 60}, cancel=busy.done)
    print(f"{box.sandbox.name}: 4 busy processes used {busy.cores} cores under a quota of 0.25 "
          f"(the backend counted {result.cpu_seconds:.2f} CPU-s in {result.duration:.2f} s)")
    assert busy.seen == 4 and busy.cores is not None, f"saw {busy.seen} of the 4 busy processes: {result}"
    assert result.status == "killed", result
    assert busy.cores <= 0.25 * SLACK, f"4 busy processes used {busy.cores:.3f} cores under cpus: 0.25"
    assert busy.cores > 0.005, "the busy processes never ran: the measurement saw nothing"
    assert result.cpu_seconds <= 0.25 * SLACK * result.duration + 0.1, result


@pytest.mark.loop
def test_process_limit_holds_counted_from_outside(box, limits_held):
    token = f"progenitor-forker-{uuid.uuid4().hex[:8]}"
    (box.tree / "forker.py").write_text(FORKER)
    with Peak(token) as peak:
        result = box.run(f"python3 forker.py {token}", limits={"processes": 32, "wall_time": 60})
    print(f"{box.sandbox.name}: at most {peak.most} forker processes at once under a limit of 32; {result.stdout.strip()}")
    assert "refused after" in result.stdout and "ESCAPED" not in result.stdout, result
    assert 8 <= peak.most <= 32, f"{peak.most} processes at once under a limit of 32"


@pytest.mark.parametrize("command", [
    "echo 'MemoryError: Unable to allocate 64.0 GiB (out of memory)' >&2; exit 1",
    "echo 'OSError: [Errno 28] No space left on device' >&2; exit 1",
    "echo 'Killed' >&2; kill -9 $$",
    "exit 153",
])
def test_a_status_is_never_what_the_command_printed(box, command):
    result = box.run(command, limits={"memory_bytes": MEMORY_LIMIT})
    assert result.status == "failed", result


def _tmpfs(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        points = {line.split(" - ")[0].split()[4]: line.split(" - ")[1].split()[0] for line in f}
    return points.get(path) == "tmpfs"
