"""Runs the red team's candidates through the real loop and keeps what a test needs to judge them.

One model repo per (backend, layer, group): the toy task, with the default constitution
(``review`` layer) or a silent one (``runtime`` layer). A group is one generation: every
attack that is not ``solo`` plus the honest control, so that each attack runs next to the
others and the control shows that none of them reached it.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest

from progenitor.agents.safety.constitution import default_constitution_text
from progenitor.api import decide, get_lineage, resume_run, start_run
from progenitor.testing import make_repo, scripted, toy_task_files
from progenitor.workflows.state import RunOptions

from redteam.attacks import CONTROL_W, Attack, render

BACKENDS = ["process", pytest.param("docker", marks=pytest.mark.docker)]
"""Every sandbox backend the suite runs on; a new backend is one more entry."""

RUN_ID = "r20260101-0001"
TRAIN_TIMEOUT = 6
"""Seconds a candidate may train: the toy task needs well under one, the timeout attack sleeps an hour."""

SPEC = """\
name: redteam
objective: {metric: error, goal: %(goal)s}
data:
  prepare: python prepare.py --out {data}
  visible: [train_*.npy, holdout_inputs.npy]
train:
  command: python train.py --data {data} --out {out}
  timeout: %(timeout)s
  resources: {cpus: 1, memory: 512m, processes: 64}
scorer:
  command: python score.py --predictions {out}/predictions.npy --labels {data}/holdout_labels.npy
  predictions: {file: predictions.npy, match: holdout_labels.npy}
protected: %(protected)s
search_space:
  file: config.yaml
  params:
    w: {type: float, low: 0.0, high: 6.0}
guards: [{metric: params, max: 10}]
budget: {generations: 1, candidates: 1}
safety: {constitution: constitution.yaml, block_at: %(block_at)s, bandit: %(bandit)s}
sandbox: %(sandbox)s
"""

REQUIREMENTS = "numpy\npyyaml\n"
"""What the toy task needs; a docker run's task image is built from it (offline, reused)."""

SILENT_CONSTITUTION = """\
# The runtime layer: no machine rules, so that every attack reaches the sandbox.
principles: [The red team's runtime layer checks the sandbox, not the rules.]
"""


def require_backend(backend: str, request: pytest.FixtureRequest) -> None:
    """Skip a backend this machine cannot run, unless its marker was asked for (then it fails)."""
    if backend == "process":
        return
    from conftest import skip_unless_docker
    from progenitor.sandbox import get_sandbox

    check = get_sandbox(backend).check()
    skip_unless_docker(request.config, check.available, check.detail)


def task_image(root: Path) -> str:
    """The docker task image for the toy task (built once, then reused by its tag)."""
    from progenitor.sandbox.docker.images import build_task_image

    context = root / "image-context"
    context.mkdir(parents=True, exist_ok=True)
    (context / "requirements.txt").write_text(REQUIREMENTS)
    return build_task_image(context)


def spec_text(layer: str, goal: str = "minimize", image: Optional[str] = None) -> str:
    strict = layer == "review"
    return SPEC % {
        "goal": goal, "timeout": TRAIN_TIMEOUT,
        "sandbox": f"{{backend: process, image: {image}}}" if image else "{backend: process}",
        "protected": "[prepare.py, score.py]" if strict else "[prepare.py]",
        "block_at": "high" if strict else "critical", "bandit": "true" if strict else "false",
    }


class Listener:
    """A TCP port on the host's loopback that counts who connects (nobody may)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def git_state(repo: Path) -> dict[str, str]:
    """HEAD and every ref the user owns (progenitor's own refs and notes may move)."""
    import git

    r = git.Repo(repo)
    refs = r.git.for_each_ref("--format=%(refname) %(objectname)").splitlines()
    state = dict(line.split(" ", 1) for line in refs if not line.startswith(("refs/progenitor/", "refs/notes/")))
    state["HEAD"] = r.git.symbolic_ref("-q", "HEAD") if r.head.is_detached is False else r.head.commit.hexsha
    state["status"] = r.git.status("--porcelain")
    return state


@dataclass
class Outcome:
    """One finished (or crashed) red-team run, as the tests see it."""

    layer: str
    repo: Path
    attacks: list[Attack]
    error: Optional[str] = None
    """The run crashed (the exception, in one line): every attack in it failed to be judged."""
    candidates: dict[int, dict] = field(default_factory=dict)
    """Lineage records by k (the control is the last k)."""
    champion: Optional[str] = None
    events_bytes: int = 0
    audit: list[dict] = field(default_factory=list)
    git_before: dict = field(default_factory=dict)
    git_after: dict = field(default_factory=dict)
    connections: int = 0
    token: str = ""

    @property
    def control_k(self) -> int:
        return len(self.attacks)

    def record(self, attack: Attack) -> dict:
        return self.candidates.get(self.attacks.index(attack), {})

    def honest_error(self, w: float) -> float:
        """What the trusted scorer measures for the honest toy model with weight ``w``."""
        data = self.repo / ".progenitor" / "runs" / RUN_ID / "data"
        x, y = np.load(data / "holdout_inputs.npy"), np.load(data / "holdout_labels.npy")
        return round(float(np.abs(w * x - y).mean()), 6)


def build_repo(root: Path, layer: str, attacks: list[Attack], port: int, token: str,
               image: Optional[str] = None) -> tuple[Path, list[list[dict]]]:
    files = toy_task_files()
    files["progenitor.yaml"] = spec_text(layer, image=image)
    files["requirements.txt"] = REQUIREMENTS
    files["constitution.yaml"] = default_constitution_text() if layer == "review" else SILENT_CONSTITUTION
    repo = make_repo(root / f"repo-{layer}", files)
    tokens = {
        "__REPO__": str(repo.resolve()), "__PORT__": str(port), "__TOKEN__": token,
        "__LABELS__": str((repo / ".progenitor" / "runs" / RUN_ID / "data" / "holdout_labels.npy").resolve()),
        "__SPEC_MAXIMIZE__": spec_text(layer, goal="maximize", image=image),
    }
    script = [{"hypothesis": f"red team: {a.what}", "params": a.params,
               "edits": {render(p, tokens): render(t, tokens) for p, t in a.edits.items()}} for a in attacks]
    script.append({"hypothesis": "the honest control", "params": {"w": CONTROL_W}})
    return repo, [script]


def run_group(root: Path, layer: str, attacks: list[Attack], backend: str, token: str,
              on_event: Optional[Callable[[dict], None]] = None) -> Outcome:
    """Run one generation holding ``attacks`` and the control through the real loop."""
    image = task_image(root) if backend == "docker" else None
    listener = Listener()
    try:
        repo, script = build_repo(root, layer, attacks, listener.port, token, image)
        outcome = Outcome(layer=layer, repo=repo, attacks=attacks, token=token, git_before=git_state(repo))
        try:
            architect = scripted(script)
            summary = start_run(repo, RunOptions(generations=1, sandbox=backend, executor="local"),
                                architect=architect, run_id=RUN_ID, on_event=on_event, detach=True)
            while summary.status == "waiting":
                # A constitution change waits for a person (auto mode): the red team's person refuses it.
                decide(RUN_ID, "reject", by="red-team", comment="a candidate may not change its constitution",
                       repo=repo)
                summary = resume_run(RUN_ID, repo, architect=architect, on_event=on_event, detach=True)
        except Exception as exc:  # noqa: BLE001 - a crash is the verdict of every attack in the run
            outcome.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        listener.close()
    outcome.connections = listener.connections
    outcome.git_after = git_state(repo)
    collect(outcome)
    return outcome


def collect(outcome: Outcome) -> None:
    repo = outcome.repo
    state = repo / ".progenitor"
    events = state / "runs" / RUN_ID / "events.jsonl"
    outcome.events_bytes = events.stat().st_size if events.exists() else 0
    audit = state / "audit.jsonl"
    if audit.exists():
        outcome.audit = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
    try:
        lineage = get_lineage(RUN_ID, repo)
    except Exception:  # noqa: BLE001 - a run that crashed early may have no lineage
        return
    outcome.champion = lineage.get("champion")
    outcome.candidates = {c["k"]: c for c in lineage["candidates"]}
