"""What only the process backend does: its isolation modes and how it reports them, the
bubblewrap whitelist view, uids, the reaper of the plain mode, and its helpers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from progenitor.errors import SandboxError, UserError
from progenitor.sandbox import get_sandbox
from progenitor.sandbox.base import Mount
from progenitor.sandbox.env import fill_template
from progenitor.sandbox.process import ProcessSandbox, isolation
from progenitor.sandbox.process.bwrap import python_roots
from tests.helpers.waiting import HOLDER, WAIT_READY, lock_released, wait_for

BWRAP, BWRAP_WHY = isolation.probe_bwrap()
needs_bwrap = pytest.mark.skipif(not BWRAP, reason=f"bubblewrap unusable here: {BWRAP_WHY}")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root drops the command to another uid")
MODES = ["auto", pytest.param("unshare", marks=needs_root), "none"]
VIEWS = [pytest.param("bwrap", marks=needs_bwrap), pytest.param("unshare", marks=needs_root)]
REPO = Path(__file__).resolve().parents[2]


def test_registry_builds_it_and_other_backends_options_are_ignored():
    sandbox = get_sandbox("process", image="progenitor-task:abc", isolation="none")
    assert isinstance(sandbox, ProcessSandbox)
    assert sandbox.options.isolation == "none"


@needs_bwrap
def test_check_reports_the_bubblewrap_view():
    check = ProcessSandbox().check()
    assert check.available
    assert "whitelist view" in check.detail and "\n" not in check.detail
    assert {"mountns", "pidns", "netns", "rlimits", "session"} <= set(check.isolation)
    assert ("uid" in check.isolation) == (os.geteuid() == 0)


def test_check_reports_the_plain_fallback():
    check = ProcessSandbox(isolation="none").check()
    assert check.available
    assert check.detail.startswith("plain child process (isolation=none asked for)")
    assert "mountns" not in check.isolation
    assert ("netns" in check.isolation) == isolation.probe_netns()


@pytest.fixture
def no_bwrap(monkeypatch, tmp_path):
    """This process sees no bwrap on its PATH (the probe is cached: redo it, and again after)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    isolation.probe_bwrap.cache_clear()
    yield
    monkeypatch.undo()
    isolation.probe_bwrap.cache_clear()


def test_without_bwrap_auto_falls_back_and_bwrap_refuses(no_bwrap, box_for):
    auto = ProcessSandbox().check()
    if os.geteuid() == 0:  # root builds the same view itself
        assert auto.available and auto.detail.startswith(
            "whitelist view in our own mount namespace (bubblewrap unusable: bwrap not found)")
        assert "mountns" in auto.isolation
    else:  # a plain child, which a run refuses unless the user opts in
        assert auto.available and auto.detail.startswith("plain child process (bubblewrap unusable: bwrap not found")
        with pytest.raises(SandboxError, match="cannot hide the holdout labels.*install bubblewrap"):
            box_for(ProcessSandbox()).run("true")
        assert box_for(ProcessSandbox(allow_unsealed=True)).run("true").ok
    required = ProcessSandbox(isolation="bwrap")
    check = required.check()
    assert not check.available and "bwrap not found" in check.detail
    with pytest.raises(SandboxError, match="bubblewrap"):
        box_for(required).run("true")


@pytest.mark.parametrize("view", VIEWS)
def test_view_holds_only_what_was_whitelisted(box_for, tmp_path, view):
    box = box_for(ProcessSandbox(isolation=view))
    (box.base / "holdout_labels.txt").write_text("labels\n")  # world-readable, next to the tree
    os.chmod(box.base / "holdout_labels.txt", 0o644)
    home = Path(os.path.expanduser("~"))
    result = box.run(f"ls -A /; echo --; ls -A {box.base}; echo --; "
                     f"ls -A {REPO} {home} 2>/dev/null; test -e {REPO}/.git && echo git-visible; true")
    assert result.ok, result.reason
    top, siblings, rest = result.stdout.split("--\n")
    allowed = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev", "proc", "tmp"}
    allowed |= {Path(p).parts[1] for p in [box.base, *python_roots(os.environ.get("PATH", ""))]}
    assert set(top.split()) <= allowed
    assert sorted(siblings.split()) == ["data", "out", "tree"]
    assert "git-visible" not in rest and "pyproject.toml" not in rest and "holdout" not in rest


@needs_root
@pytest.mark.parametrize("mode", MODES)
def test_each_run_gets_a_fresh_uid_that_owns_its_outputs(box_for, mode):
    box = box_for(ProcessSandbox(isolation=mode))
    first = box.run("id -u; echo x > {out}/a")
    second = box.run("id -u; echo x > {out}/b")
    uids = {int(first.stdout), int(second.stdout)}
    assert len(uids) == 2 and 0 not in uids
    assert (box.out / "b").stat().st_uid == int(second.stdout)


@needs_root
def test_a_pinned_uid_is_used(box_for):
    box = box_for(ProcessSandbox(uid=65534, gid=65534))
    assert box.run("id -u; id -g").stdout.split() == ["65534", "65534"]


@needs_root
@pytest.mark.parametrize("mode", MODES)
def test_data_closed_to_others_is_made_readable(box_for, mode):
    box = box_for(ProcessSandbox(isolation=mode))
    os.chmod(box.data / "train.txt", 0o600)
    os.chmod(box.data, 0o700)
    result = box.run("cat {data}/train.txt")
    assert result.stdout == "visible data\n", result.reason


@pytest.mark.loop
@pytest.mark.parametrize("mode", MODES)
def test_nothing_of_a_fork_bomb_survives(box_for, mode):
    box = box_for(ProcessSandbox(isolation=mode))
    bomb = ("id -u; bomb() { [ $1 -gt 0 ] || { sleep 10; return; }; bomb $(($1 - 1)) & bomb $(($1 - 1)) & wait; }; "
            "bomb 9; sleep 10")
    result = box.run(bomb, limits={"processes": 48, "wall_time": 1.5})
    assert result.status == "timeout"
    assert result.reason == "killed after 1.5 s: wall-clock timeout (it hit the limit of 48 processes)"
    uid = int(result.stdout.split()[0])
    if uid != os.getuid():  # our own uid has other processes
        assert isolation.count_tasks(uid) == 0, "processes (or zombies) of the run are left"


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.loop
def test_plain_timeout_kills_a_grandchild_that_left_the_session(box_for):
    box = box_for(ProcessSandbox(isolation="none"))
    result = box.run("setsid sleep 60 & echo $!; sleep 60 & echo $!; sleep 60", limits={"wall_time": 1.0})
    assert result.status == "timeout"
    pids = [int(p) for p in result.stdout.split()]
    assert len(pids) == 2 and all(_gone(p) for p in pids)


def test_plain_mode_leaves_no_escaped_process_after_a_normal_exit(box_for):
    box = box_for(ProcessSandbox(isolation="none"))
    started = time.monotonic()
    result = box.run("setsid sleep 60 & echo $!")
    assert result.ok and time.monotonic() - started < 40, "the run waited for its escaped process"
    assert _gone(int(result.stdout))


@pytest.mark.loop
@needs_bwrap
def test_torch_imports_under_a_2_gib_limit_and_allocating_past_it_is_oom(box_for):
    pytest.importorskip("torch")
    box = box_for(ProcessSandbox())
    command = "python -c 'import torch; print(torch.ones(4).sum().item()); torch.ones(1 << 30)'"
    result = box.run(command, limits={"memory_bytes": 2 << 30, "wall_time": 180})  # 2 GiB touched: slow when busy
    assert result.stdout == "4.0\n", result.reason  # imported and computed under the limit
    assert result.status == "oom"
    assert result.reason.startswith("out of memory (limit 2 GiB): the kernel's OOM killer stopped it"), result.reason
    assert result.memory_peak is not None and result.memory_peak <= (2 << 30) * 1.1, result.memory_peak


@pytest.mark.parametrize("mode", MODES)
def test_cpu_time_and_signals_are_reported(box_for, mode):
    box = box_for(ProcessSandbox(isolation=mode))
    busy = box.run("python3 -c 'import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass'")
    assert busy.ok and busy.cpu_seconds >= 0.25, busy
    crash = box.run("kill -SEGV $$")
    assert (crash.status, crash.exit_code) == ("failed", 139)
    assert crash.reason.startswith("killed by SIGSEGV")


@pytest.mark.parametrize("mode", MODES)
def test_network_can_be_asked_for(box_for, mode):
    box = box_for(ProcessSandbox(isolation=mode))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('reached')"
        probe = f'python3 -c "{connect}"'
        assert box.run(probe, network=True).stdout == "reached\n"
        assert box.run(probe).status == "failed"
    assert "netns" not in box.run("true", network=True).isolation


@needs_bwrap
def test_extra_mounts_are_placed_and_protected(box_for, host_dir):
    box = box_for(ProcessSandbox())
    (host_dir / "weights.bin").write_text("w")
    shared = host_dir / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    mounts = [Mount(source=host_dir / "weights.bin", target="/opt/model/weights.bin"),
              Mount(source=shared, read_only=False)]
    result = box.run(f"cat /opt/model/weights.bin; echo more >> /opt/model/weights.bin 2>/dev/null || echo ro; "
                     f"echo hi > {shared}/note", mounts=mounts)
    assert result.stdout == "wro\n", result.reason
    assert (shared / "note").read_text() == "hi\n"
    plain = box_for(ProcessSandbox(isolation="none"))
    with pytest.raises(SandboxError, match="cannot show"):
        plain.run("true", mounts=mounts[:1])


DRIVER = """
import sys
from pathlib import Path
from progenitor.sandbox.base import Limits, SandboxSpec
from progenitor.sandbox.process import ProcessSandbox
tree, out, mode, holder = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
command = "id -u > {out}/uid; exec " + holder  # the command's own process holds the lock
ProcessSandbox(isolation=mode).run(SandboxSpec(command=command, tree=tree, out=out, limits=Limits(wall_time=60)))
"""


@pytest.mark.loop
@pytest.mark.parametrize("mode", MODES)
def test_a_killed_driver_takes_its_candidate_along(box_for, mode):
    box = box_for(ProcessSandbox(isolation=mode))
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(box.tree), str(box.out), mode, HOLDER], cwd=REPO)
    try:
        assert wait_for(lambda: (box.out / "ready").exists(), 60), "the candidate never started"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert lock_released(box.out), "the candidate outlived its driver"
    # A driver killed outright cannot remove the plain mode's scratch home: do it here.
    uid = int((box.out / "uid").read_text())
    for home in Path(tempfile.gettempdir()).glob("progenitor-home-*"):
        if uid != os.getuid() and home.stat().st_uid == uid:
            shutil.rmtree(home)


def test_a_failing_callback_still_tears_the_command_down(box_for):
    box = box_for(ProcessSandbox())

    def on_line(stream: str, line: str) -> None:
        raise RuntimeError("callback broke")

    with pytest.raises(RuntimeError, match="callback broke"):
        box.run(f"{HOLDER} & {WAIT_READY}; echo first; sleep 60", on_line=on_line)
    assert lock_released(box.out), "the command outlived the failing callback"


def test_missing_directories_are_a_clear_error(box_for, tmp_path):
    box = box_for(ProcessSandbox())
    with pytest.raises(SandboxError, match=r"tree directory .* does not exist"):
        box.sandbox.run(box.spec("true").model_copy(update={"tree": tmp_path / "nope"}))


def test_template_fills_only_the_three_placeholders():
    tree, out = Path("/w/my tree"), Path("/w/out")
    command = fill_template("awk '{print $1}' {tree}/x ${HOME} > {out}/y", tree=tree, out=out, data=None)
    assert command == "awk '{print $1}' '/w/my tree'/x ${HOME} > /w/out/y"
    with pytest.raises(UserError, match="uses {data}, which has no value here"):
        fill_template("cat {data}/x", tree=tree, out=out, data=None)


def test_python_in_a_project_checkout_is_bound_without_the_checkout(tmp_path):
    project = tmp_path / "project"
    for sub in ("bin", "lib", ".git", "secret-notes"):
        (project / sub).mkdir(parents=True)
    (project / "bin" / "python3").write_text(textwrap.dedent("#!/bin/sh\n"))
    roots = python_roots(str(project / "bin"))
    assert project / "bin" in roots and project / "lib" in roots
    assert project not in roots and all(project / "secret-notes" != r for r in roots)
    assert Path(sys.prefix).resolve() in [r.resolve() for r in roots] or any(
        r in Path(sys.prefix).resolve().parents for r in roots)
