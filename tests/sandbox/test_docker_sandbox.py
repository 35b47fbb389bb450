"""The docker backend beyond the shared conformance suite: what a candidate's container
looks like from inside and from the daemon, labels, removal, sweeping, missing images,
and the offline image build.

Marked ``docker``: CI runs them with ``-m docker`` after ``.ci/docker-setup.sh`` started a
daemon and made the base image; elsewhere they skip when no usable Docker answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from progenitor.errors import SandboxError
from progenitor.sandbox.base import Limits, SandboxSpec
from progenitor.sandbox.docker.images import DEFAULT_BASE, _tag, host_pins

PROBE = r'''
import json, os, socket
def read(path):
    try:
        return open(path).read().split()
    except OSError:
        return None
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
cg = {
    "memory": read("/sys/fs/cgroup/memory.max" if v2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "pids": read("/sys/fs/cgroup/pids.max" if v2 else "/sys/fs/cgroup/pids/pids.max"),
    "cpu": read("/sys/fs/cgroup/cpu.max") if v2 else
           read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") + read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
}
shm = os.statvfs("/dev/shm")
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "root_writable": writable("/probe") or writable("/etc/probe") or writable("/usr/probe"),
    "tmp_writable": writable("/tmp/probe"), "tree_writable": writable("probe"),
    "cap_eff": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "seccomp": status.get("Seccomp", "").strip(),
    "shm_bytes": shm.f_blocks * shm.f_frsize, "cgroup": cg, "cwd": os.getcwd(),
}))
'''


@pytest.fixture(scope="module")
def client(request):
    import docker

    from tests.conftest import skip_unless_docker

    try:
        client = docker.from_env()
        client.ping()
        client.images.get(DEFAULT_BASE)
    except Exception as exc:  # noqa: BLE001 - any failure here means: Docker is not usable
        skip_unless_docker(request.config, False, str(exc))
    return client


@pytest.fixture
def sandbox(client):
    from progenitor.sandbox.docker import DockerSandbox

    return DockerSandbox(client=client)


@pytest.fixture
def dirs():
    base = Path(tempfile.mkdtemp(prefix="progenitor-docker-test-"))
    os.chmod(base, 0o755)
    tree, out, data = base / "tree", base / "out", base / "data"
    for path in (tree, out, data):
        path.mkdir()
    (data / "train.txt").write_text("visible\n")
    yield tree, out, data
    shutil.rmtree(base, ignore_errors=True)


def _spec(dirs, command: str, run: str = "", **limits) -> SandboxSpec:
    tree, out, data = dirs
    labels = {"run": run or f"rtest-{uuid.uuid4().hex[:8]}", "generation": "1", "candidate": "0"}
    return SandboxSpec(command=command, tree=tree, out=out, data=data,
                       limits=Limits(**{"wall_time": 30.0, **limits}), labels=labels)


def _ours(client, run: str) -> list:
    return client.containers.list(all=True, ignore_removed=True, filters={"label": [f"progenitor.run={run}"]})


@pytest.mark.docker
def test_the_container_seen_from_inside(sandbox, dirs):
    (dirs[0] / "probe.py").write_text(PROBE)
    spec = _spec(dirs, "python3 probe.py", memory_bytes=512 << 20, cpus=1.5, processes=100)
    result = sandbox.run(spec)
    assert result.ok, result.reason
    seen = json.loads(result.stdout)
    assert seen["uid"] != 0 and seen["gid"] != 0, "not root"
    assert seen["interfaces"] == ["lo"], "no network but loopback"
    assert seen["root_writable"] is False, "read-only root"
    assert seen["tmp_writable"] and seen["tree_writable"]
    assert seen["cwd"] == "/sandbox/tree"
    assert int(seen["cap_eff"], 16) == 0, "every capability dropped"
    assert seen["no_new_privs"] == "1"
    assert seen["seccomp"] == "2", "the default seccomp profile filters system calls"
    assert seen["cgroup"]["memory"] == [str(512 << 20)]
    assert seen["cgroup"]["pids"] == ["100"]
    assert seen["cgroup"]["cpu"] == ["150000", "100000"], "1.5 CPUs of quota per period"
    assert seen["shm_bytes"] == 512 << 20, "/dev/shm sized for data loaders: the memory limit (counted in it), up to 1 GiB"


@pytest.mark.docker
def test_gpus_are_requested_by_device_id(sandbox, dirs):
    # No GPU here: create the container without starting it, and read its configuration.
    container = sandbox.create(_spec(dirs, "true", gpus=["0", "2"]))
    try:
        host = container.attrs["HostConfig"]
        requests = host["DeviceRequests"]
        assert [(r["DeviceIDs"], r["Capabilities"]) for r in requests] == [(["0", "2"], [["gpu"]])]
        assert "CUDA_VISIBLE_DEVICES=0,1" in container.attrs["Config"]["Env"], "renumbered inside"
        assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
        assert host["ReadonlyRootfs"] is True and host["NetworkMode"] == "none"
        assert "/tmp" in host["Tmpfs"]
    finally:
        container.remove(force=True)
    online = sandbox.create(_spec(dirs, "true").model_copy(update={"network": True}))
    try:
        assert not online.attrs["HostConfig"].get("DeviceRequests"), "no GPU asked, none given"
        assert online.attrs["HostConfig"]["NetworkMode"] == "bridge", "network only when the spec asks"
    finally:
        online.remove(force=True)


@pytest.mark.docker
def test_labelled_while_running_and_removed_after(client, sandbox, dirs):
    spec = _spec(dirs, "echo ready; sleep 0.5")
    run = spec.labels["run"]
    during: list = []

    def on_line(stream: str, line: str) -> None:
        if line == "ready":
            during.extend(_ours(client, run))

    result = sandbox.run(spec, on_line=on_line)
    assert result.ok, result.reason
    assert len(during) == 1
    labels = during[0].labels
    assert labels["progenitor"] == "1"
    assert (labels["progenitor.run"], labels["progenitor.generation"], labels["progenitor.candidate"]) == (run, "1", "0")
    assert _ours(client, run) == [], "removed after the run"


@pytest.mark.docker
def test_sweep_removes_what_a_crashed_run_left(client, sandbox, dirs):
    crashed, other = _spec(dirs, "sleep 60"), _spec(dirs, "sleep 60")
    left = [sandbox.create(crashed), sandbox.create(crashed), sandbox.create(other)]
    left[0].start()  # one still running, one never started
    try:
        assert sandbox.sweep(run=crashed.labels["run"]) == 2
        assert _ours(client, crashed.labels["run"]) == []
        assert len(_ours(client, other.labels["run"])) == 1, "another run's containers are left alone"
    finally:
        sandbox.sweep(run=other.labels["run"])


WATCHER = """
import sys
from pathlib import Path
from progenitor.sandbox.base import Limits, SandboxSpec
from progenitor.sandbox.docker import DockerSandbox
tree, out, data, run = sys.argv[1:]
DockerSandbox().run(SandboxSpec(command="sleep 60", tree=Path(tree), out=Path(out), data=Path(data),
                                limits=Limits(wall_time=30), labels={"run": run}))
"""


@pytest.mark.docker
def test_a_killed_watcher_leaves_a_container_the_next_sweep_removes(client, sandbox, dirs):
    run = f"rtest-{uuid.uuid4().hex[:8]}"
    root = Path(__file__).resolve().parents[2]
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, *map(str, dirs), run],
                               env={**os.environ, "PYTHONPATH": str(root)})
    try:
        deadline = time.monotonic() + 20
        while not [c for c in _ours(client, run) if c.status == "running"]:
            assert time.monotonic() < deadline and watcher.poll() is None, "the container never ran"
            time.sleep(0.1)
        watcher.kill()  # as a crash would: no cleanup runs
        watcher.wait()
        (left,) = _ours(client, run)
        assert left.attrs["Config"]["Cmd"][:4] == ["timeout", "-s", "KILL", "40"], "it would kill itself at 30 + 10 s"
        assert sandbox.sweep(run=run) == 1
        assert _ours(client, run) == []
    finally:
        watcher.kill()
        watcher.wait()
        sandbox.sweep(run=run)  # a failed assertion above must not leave a container for later tests


@pytest.mark.docker
def test_timeout_kills_the_container(client, sandbox, dirs):
    spec = _spec(dirs, "echo started; sleep 60", wall_time=2.0)
    started = time.monotonic()
    result = sandbox.run(spec)
    assert time.monotonic() - started < 8
    assert result.status == "timeout"
    assert result.stdout == "started\n"
    assert _ours(client, spec.labels["run"]) == []


@pytest.mark.docker
def test_oom_is_read_from_the_container_state(sandbox, dirs):
    spec = _spec(dirs, "python3 -c \"b = bytearray(512 << 20)\"", memory_bytes=128 << 20)
    result = sandbox.run(spec)
    assert result.status == "oom", result
    assert "OOM killer" in result.reason and "128 MiB" in result.reason


@pytest.mark.docker
def test_a_missing_image_says_how_to_build_it_and_is_never_pulled(client, dirs):
    from progenitor.sandbox.docker import DockerSandbox

    image = f"progenitor-task:missing{uuid.uuid4().hex[:6]}"
    sandbox = DockerSandbox(image=image, client=client)
    with pytest.raises(SandboxError, match="progenitor sandbox build"):
        sandbox.run(_spec(dirs, "true"))
    check = sandbox.check()
    assert not check.available and image in check.detail and "GPU" in check.detail
    assert not client.images.list(name=image), "nothing was pulled"


@pytest.mark.docker
def test_check_reports_daemon_image_and_gpu(sandbox):
    check = sandbox.check()
    assert check.available, check.detail
    assert "answers" in check.detail and DEFAULT_BASE in check.detail and "GPU" in check.detail


@pytest.mark.docker
def test_cli_check_and_sweep(client):
    from progenitor.cli.sandbox import sandbox as group

    runner = CliRunner()
    checked = runner.invoke(group, ["check"])
    assert checked.exit_code == 0 and checked.output.startswith("docker: ok"), checked.output
    swept = runner.invoke(group, ["sweep", "--run", "r-none-here"])
    assert swept.exit_code == 0 and swept.output == "removed 0 containers\n"
    missing = runner.invoke(group, ["build", "--base", "progenitor-base:nothere"])
    assert missing.exit_code == 3 and "progenitor sandbox base" in missing.output


@pytest.mark.docker
def test_task_image_is_built_offline_and_reused(client, sandbox, dirs, tmp_path):
    from progenitor.sandbox.docker import DockerSandbox
    from progenitor.sandbox.docker.images import build_task_image, task_image

    yaml = pytest.importorskip("yaml")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text("pyyaml>=5  # pinned to the host's version\n")
    tag = task_image(repo, client=client)
    fresh = not client.images.list(name=tag)
    try:
        assert build_task_image(repo, client=client) == tag
        lines: list[str] = []
        assert build_task_image(repo, client=client, log=lines.append) == tag
        assert lines == [f"reusing {tag}"]
        result = DockerSandbox(image=tag, client=client).run(
            _spec(dirs, "python -c 'import sys, yaml; print(yaml.__version__, sys.prefix)'"))
        assert result.ok, result.reason
        assert result.stdout.split() == [yaml.__version__, "/opt/venv"]
    finally:
        if fresh:
            client.images.remove(tag, force=True)


def test_host_pins_follow_what_is_installed():
    from importlib.metadata import version

    pins = host_pins("click>=1\n# comment\n-r other.txt\nclick-nonexistent-pkg==1\nclick<1\npyyaml ; python_version > '3'\n")
    assert f"click=={version('click')}" in pins, pins
    assert not any(p.startswith("click-nonexistent") for p in pins)
    assert pins.count(f"click=={version('click')}") == 1, "click<1 is not met by the host: not pinned"


def test_task_tag_hashes_base_requirements_and_pins():
    one = _tag("sha256:a", "torch\n", ["torch==2.0"], "3.11")
    assert one.startswith("progenitor-task:") and one == _tag("sha256:a", "torch\n", ["torch==2.0"], "3.11")
    assert len({one, _tag("sha256:b", "torch\n", ["torch==2.0"], "3.11"),
                _tag("sha256:a", "numpy\n", ["torch==2.0"], "3.11"),
                _tag("sha256:a", "torch\n", ["torch==2.1"], "3.11")}) == 4


@pytest.mark.docker
def test_doctor_reports_daemon_image_and_gpu_support(tmp_path):
    from click.testing import CliRunner

    from progenitor.cli import cli

    (tmp_path / "requirements.txt").write_text("an-unbuilt-requirement-for-doctor\n")
    result = CliRunner().invoke(cli, ["doctor", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "answers" in text and "GPU support" in text
    assert "task image" in text and "progenitor sandbox build" in text
