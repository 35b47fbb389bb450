"""A real two-node Ray cluster on this machine: a head and a worker node started as separate
``ray start`` processes, each with one CPU and a custom resource of its own, joined by the
executor through its address; candidates are shown to have trained on both nodes.

The executor is given ``127.0.0.1:<port>``; Ray itself turns a loopback address into the
machine's own, so the nodes listen there (with token authentication) and nothing leaves
the host.

Teardown stops exactly the processes this test started (``ray start --block`` stops its
node's daemons on SIGTERM; whatever survives is killed by pid). ``ray stop`` is not used: it
kills every Ray process on the machine by name, another session's included.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from progenitor.compute.ray_executor import RayExecutor
from tests.compute.test_ray_executor import PY, job, outputs

pytestmark = pytest.mark.ray

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(log: Path, env: dict, *args: str) -> subprocess.Popen:
    # Every port a node opens is a free one, so that another Ray on this machine (the
    # session's local instance, say) cannot collide with the test's cluster.
    ports = [f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
             f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}",
             f"--node-manager-port={_free_port()}", f"--object-manager-port={_free_port()}"]
    return subprocess.Popen(
        [RAY, "start", "--block", "--num-cpus=1",
         f"--object-store-memory={128 << 20}", *ports, *args],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(pid))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stop(nodes: list[subprocess.Popen]) -> list[int]:
    """SIGTERM each ``ray start --block`` (it stops its daemons), then kill any survivor by pid."""
    started = [p for node in nodes for p in _descendants(node.pid)]
    for node in reversed(nodes):  # the worker node first, then the head
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait(10)
    deadline = time.monotonic() + 15
    while any(map(_alive, started)) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [pid for pid in started if _alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    return survivors


def _wait_for_nodes(address: str, count: int, env: dict, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = subprocess.run([RAY, "status", f"--address={address}"], capture_output=True, text=True, env=env)
        if status.returncode == 0 and status.stdout.count("node_") >= count:
            return
        time.sleep(1)
    raise AssertionError(f"the cluster at {address} did not come up with {count} nodes:\n{status.stdout}{status.stderr}")


@pytest.fixture
def cluster(tmp_path):
    # Token authentication, as a real cluster should have, with a token made for this test
    # only. Ray reads the mode when it is imported, so the driver runs in a process of its
    # own that sees the token from the start (which also leaves this process's Ray alone).
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    nodes = [_start_node(tmp_path / "head.log", env, "--head", f"--port={port}", "--include-dashboard=false",
                         '--resources={"node_a": 1}')]
    try:
        _wait_for_nodes(address, 1, env)
        nodes.append(_start_node(tmp_path / "worker.log", env, f"--address={address}", '--resources={"node_b": 1}'))
        _wait_for_nodes(address, 2, env)
        yield address, env
    finally:
        survivors = _stop(nodes)
        _forget(port)
        assert survivors == [], f"Ray processes survived the teardown: {survivors}"


def _forget(port: int) -> None:
    """``ray start --head`` notes its address for later ``ray.init()`` calls; a dead cluster's
    note would send them to it, so remove it if it is still ours (what ``ray stop`` does)."""
    note = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        if note.read_text().strip().endswith(f":{port}"):
            note.unlink()
    except OSError:
        pass


def drive(address: str, data: str) -> None:
    """The driver, run in its own process: train four candidates on the cluster, print JSON."""
    import ray

    # Each job takes its node's only CPU for 3 s, so two at a time must be on different nodes.
    script = "import sys, time; n = open(sys.argv[1] + '/train.txt').read().strip(); time.sleep(3); open(sys.argv[2] + '/seen.txt', 'w').write(n)"
    jobs = [job(f"r/g1/c{k}", f"{PY} train.py {{data}} {{out}}", {"train.py": script}) for k in range(4)]
    executor = RayExecutor(Path(data), address=address)
    try:
        results = list(executor.run(jobs))
        resources = {n["NodeID"]: sorted(n["Resources"]) for n in ray.nodes() if n["Alive"]}
    finally:
        executor.close()
    print(json.dumps({
        "disconnected": not ray.is_initialized(),
        "resources": resources,
        "results": [{"key": r.key, "status": r.sandbox.status, "reason": r.sandbox.reason, "node": r.node,
                     "outputs": outputs(r)} for r in results],
    }))


def test_candidates_train_on_both_nodes(cluster, tmp_path):
    address, env = cluster
    data = tmp_path / "visible"
    data.mkdir()
    (data / "train.txt").write_text("7\n")
    root = str(Path(__file__).resolve().parents[2])
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-c", f"import tests.compute.test_ray_cluster as t; t.drive({address!r}, {str(data)!r})"],
        capture_output=True, text=True, env=env, cwd=root, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    results = report["results"]
    assert report["disconnected"]  # close() let go of the cluster it joined
    assert sorted(r["key"] for r in results) == [f"r/g1/c{k}" for k in range(4)]
    assert all(r["status"] == "ok" for r in results), results
    assert all(r["outputs"] == {"seen.txt": "7"} for r in results)
    names = set()
    for result in results:
        node_id = result["node"].rsplit("/", 1)[-1]
        names |= {name for name in ("node_a", "node_b") if name in report["resources"][node_id]}
    assert names == {"node_a", "node_b"}
