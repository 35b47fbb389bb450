"""The process backend's control groups: where they are made (v1, v2, both), what is written
to and read from them, that nothing outlives them, and that a dead driver's groups are swept.

The v1 tests make real groups in this machine's hierarchies; the v2 mechanics (a leaf below
the limits, ``cgroup.kill``, ``cpu.stat``) are tried on a real v2 mount where there is one
(the unified tree beside v1 controllers counts). The v2 limit files are checked against a
directory laid out like one, as no machine has a controller in both versions at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from progenitor.sandbox.process.cgroup import LEAF, Group, sweep
from progenitor.sandbox.process.cgroup_tree import (
    BASE_NAME,
    LIMITED,
    Layout,
    Place,
    inside,
    layout,
    parse_groups,
    parse_mounts,
)
from tests.helpers.waiting import wait_for

HYBRID = """\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 /docker/abc /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
36 30 0:32 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,xattr,name=systemd
"""
GROUPS = """\
12:pids:/docker/abc/inner
4:memory:/user.slice
3:cpu,cpuacct:/
1:name=systemd:/user.slice/session-1.scope
0::/user.slice/session-1.scope
"""


def test_a_hybrid_layout_is_read_controller_by_controller():
    mounts = {m[1]: m for m in parse_mounts(HYBRID)}
    groups = parse_groups(GROUPS)
    assert set(mounts) == {"/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu,cpuacct",
                           "/sys/fs/cgroup/pids", "/sys/fs/cgroup/systemd"}
    assert mounts["/sys/fs/cgroup/cpu,cpuacct"][3] == ("rw", "cpu", "cpuacct")
    assert groups["cpu"] == groups["cpuacct"] == "/" and groups[""] == "/user.slice/session-1.scope"
    assert inside(mounts["/sys/fs/cgroup/memory"], groups["memory"]) == Path("/sys/fs/cgroup/memory/user.slice")
    assert inside(mounts["/sys/fs/cgroup/cpu,cpuacct"], "/") == Path("/sys/fs/cgroup/cpu,cpuacct")
    # A mount of a subtree (a container's view): paths are taken relative to its root, and a
    # group outside it is not visible at all.
    assert inside(mounts["/sys/fs/cgroup/pids"], groups["pids"]) == Path("/sys/fs/cgroup/pids/inner")
    assert inside(mounts["/sys/fs/cgroup/pids"], "/elsewhere") is None


def _root_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip("cgroup v1 groups are root's to make (a user without root runs degraded, and says so)")


def test_this_machine_places_every_limit_controller():
    _root_or_skip()
    found = layout()
    assert not found.missing, f"as root every limit controller must be usable here: {found.missing}"
    assert set(LIMITED) <= set(found.places), found
    assert "cgroup v" in found.words()


def _joined(group: Group) -> callable:
    files = group.procs_files

    def join() -> None:
        for path in files:
            with open(path, "w") as f:
                f.write(str(os.getpid()))
    return join


def test_a_group_kills_what_escaped_its_session_and_is_removed():
    _root_or_skip()
    group = Group(layout(), memory_bytes=64 << 20, cpus=0.5, processes=16)
    try:
        # The child starts a grandchild in a session of its own and exits: only the group still holds it.
        code = "import os, time\nif os.fork() == 0:\n    os.setsid(); time.sleep(60)\n"
        subprocess.run([sys.executable, "-c", code], preexec_fn=_joined(group), check=True)
        left = wait_for(group.pids, 10)
        assert len(left) == 1, left
        counted = group.finish()
        assert group.pids() == [] and not _alive(left[0])
        assert counted.cpu_seconds is not None and counted.cpu_seconds > 0
        assert counted.oom_kills == 0 and counted.forks_refused == 0
    finally:
        group.remove()
    assert not any(path.exists() for path in group.dirs.values())


def test_groups_of_a_dead_driver_are_swept():
    _root_or_skip()
    found = layout()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    left = []
    for place in found.places.values():
        place.base.mkdir(exist_ok=True)
        left.append(place.base / f"{pid}-deadbeef")
        left[-1].mkdir(exist_ok=True)
    mine = Group(found, memory_bytes=None, cpus=1.0, processes=8)  # a live maker's group stays
    try:
        assert not any(path.exists() for path in left), "making a group sweeps the dead driver's"
        assert all(path.exists() for path in mine.dirs.values())
        sweep(found)
        assert all(path.exists() for path in mine.dirs.values()), "a live maker's group is never swept"
    finally:
        mine.remove()


def test_v2_limit_files_are_written_and_read_as_the_kernel_lays_them_out(tmp_path):
    tree = Layout(places={name: Place(version=2, base=tmp_path / BASE_NAME) for name in (*LIMITED, "cpuacct")})
    group = Group(tree, memory_bytes=256 << 20, cpus=0.25, processes=32)
    path = tmp_path / BASE_NAME / group.name
    assert group.procs_files == [str(path / LEAF / "cgroup.procs")], "processes go in the leaf, below the limits"
    assert (path / "memory.max").read_text() == str(256 << 20)
    assert (path / "cpu.max").read_text() == "25000 100000"
    assert (path / "pids.max").read_text() == "32"
    (path / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n")
    (path / "memory.peak").write_text(str(200 << 20) + "\n")
    (path / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    (path / "pids.events").write_text("max 5\n")
    counted = group.usage()
    assert (counted.oom_kills, counted.memory_peak, counted.cpu_seconds, counted.forks_refused) == (
        2, 200 << 20, 1.5, 5)


def test_v2_mechanics_on_a_real_v2_mount():
    """A leaf below the group, ``cgroup.kill`` and ``cpu.stat``, on this machine's cgroup2 mount."""
    _root_or_skip()
    mount = next((m for m in parse_mounts(Path("/proc/self/mountinfo").read_text()) if m[0] == "cgroup2"), None)
    assert mount is not None, "no cgroup2 mount here (Debian 12 has one, beside or instead of v1)"
    here = inside(mount, parse_groups(Path("/proc/self/cgroup").read_text()).get(""))
    tree = Layout(places={"cpuacct": Place(version=2, base=Path(mount[1]) / BASE_NAME)})
    if here is None or here != Path(mount[1]):
        tree = Layout(places={"cpuacct": Place(version=2, base=here / BASE_NAME)})
    group = Group(tree, memory_bytes=None, cpus=1.0, processes=8)
    try:
        proc = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                                 "while time.process_time() - t < 0.3: pass\ntime.sleep(60)"],
                                preexec_fn=_joined(group))
        assert wait_for(lambda: proc.pid in group.pids(), 10)
        assert wait_for(lambda: (group.usage().cpu_seconds or 0) >= 0.25, 30), group.usage()
        group.kill()  # cgroup.kill: the whole group at once
        assert proc.wait(10) == -signal.SIGKILL
        assert group.pids() == []
    finally:
        group.remove()
    assert not any(path.exists() for path in group.dirs.values())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # a zombie waiting for its reaper counts as gone
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except OSError:
            return False
        time.sleep(0.05)
    return True


DELEGATED = r"""
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from progenitor.sandbox.process import cgroup_tree
from progenitor.sandbox.process.cgroup import Group
mount = next(m for m in cgroup_tree.parse_mounts(Path("/proc/self/mountinfo").read_text()) if m[0] == "cgroup2")
ours = cgroup_tree.parse_groups(Path("/proc/self/cgroup").read_text())[""]
parent, why = cgroup_tree._v2_parent(mount, ours, [])
moved = cgroup_tree.parse_groups(Path("/proc/self/cgroup").read_text())[""]
group = Group(cgroup_tree.Layout(places={"cpuacct": cgroup_tree.Place(version=2, base=parent / "progenitor")}),
              memory_bytes=None, cpus=1.0, processes=8)
made = sorted(os.listdir(parent))
group.remove()
print("RESULT " + json.dumps({"uid": os.getuid(), "ours": ours, "moved": moved, "parent": str(parent), "why": why,
                              "made": made, "left": sorted(os.listdir(parent))}))
"""


def test_a_delegated_v2_subtree_is_used_without_root(tmp_path):
    """A user's own cgroup v2 group (as ``systemd-run --user --scope -p Delegate=yes`` gives):
    the driver moves itself into a leaf, and makes the sandboxes' groups beside it."""
    from progenitor.sandbox.access import unreachable_parent
    from tests.sandbox.test_no_bwrap import NOBODY, ROOT, as_nobody

    _root_or_skip()
    for top in (ROOT, Path(sys.prefix)):  # as the no-bubblewrap tests: the user runs this checkout's code
        if unreachable_parent(top, NOBODY) is not None:
            pytest.skip(f"{top} is closed to other users")
    mount = next((m for m in parse_mounts(Path("/proc/self/mountinfo").read_text()) if m[0] == "cgroup2"), None)
    assert mount is not None, "no cgroup2 mount here"
    delegated = Path(mount[1]) / f"progenitor-test-{os.getpid()}"
    delegated.mkdir()
    try:
        for path in (delegated, delegated / "cgroup.procs", delegated / "cgroup.subtree_control",
                     delegated / "cgroup.threads"):
            os.chown(path, NOBODY, NOBODY)

        def join() -> None:
            with open(delegated / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
        repo = Path(__file__).resolve().parents[2]
        proc = subprocess.run(as_nobody([sys.executable, "-c", DELEGATED, str(repo)]), preexec_fn=join,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        result = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))[7:])
        rel = "/" + str(delegated.relative_to(mount[1]))
        assert result["uid"] == NOBODY and result["ours"] == rel, result
        assert result["moved"] == rel + "/progenitor-driver", "the driver moved itself into a leaf"
        assert result["parent"] == str(delegated) and result["why"] == ""
        assert {"progenitor", "progenitor-driver"} <= set(result["made"]), result["made"]
        assert "progenitor" not in result["left"], "the last group out removes the base"
    finally:
        for leaf in sorted(delegated.rglob("*"), key=lambda p: -len(p.parts)):
            if leaf.is_dir():
                leaf.rmdir()
        delegated.rmdir()
