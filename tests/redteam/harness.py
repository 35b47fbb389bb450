"""Runs the red team's candidates through the real loop and keeps what a test needs to judge them.

One model repo per (backend, layer, group): the toy task, with the default constitution
(``review`` layer) or a silent one (``runtime`` layer). A group is one generation: every
attack that is not ``solo`` (nor in a group of its own) plus the honest control, so that
each attack runs next to the others and the control shows that none of them reached it. A
group may be preceded by generations of its own (``Attack.before``), run with early stopping
(``Attack.early_stop``), be stopped once proposed and resumed (``Attack.resume``), or hold a
commit the harness planted (``Attack.links``); the last generation is the one judged.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest

from progenitor.api import get_lineage, start_run
from progenitor.options import RunOptions
from progenitor.task.constitution import default_constitution_text
from progenitor.testing import make_repo, scripted, toy_task_files
from tests.helpers.jobdisk import JobDisk
from tests.redteam.attacks import CONTROL_W, HONEST_CURVE, Attack, render

BACKENDS = ["process", pytest.param("docker", marks=pytest.mark.docker)]
"""Every sandbox backend the suite runs on; a new backend is one more entry."""

RUN_ID = f"r20260101-{secrets.token_hex(2)}"
"""One id per test session: a run sweeps the containers of its own id when it starts, so two
sessions sharing a Docker daemon (two engineers' red teams) must not share one."""
TRAIN_TIMEOUT = 6
"""Seconds a candidate may train: the toy task needs well under one, the timeout attack sleeps an hour."""
DISK = "96m"
"""Each candidate's disk quota (tree and outputs): the disk filler is killed at it."""
DISK_BYTES = 96 << 20
FILES = 20_000
"""Each candidate's quota of files and directories: the 300,000-files writer is killed at it."""
OUTPUTS = "16m"
"""What may come back of a candidate's outputs: the big-output attack leaves 24 MiB."""

SPEC = """\
name: redteam
objective: {metric: error, goal: %(goal)s}
data:
  prepare: python prepare.py --out {data}
  visible: [train_*.npy, holdout_inputs.npy]
train:
  command: python train.py --data {data} --out {out}
  timeout: %(timeout)s
  resources: {cpus: 1, memory: 512m, processes: 64, disk: %(disk)s, files: %(files)s, outputs: %(outputs)s}%(early_stop)s
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
    from progenitor.sandbox import get_sandbox
    from tests.conftest import skip_unless_docker

    check = get_sandbox(backend).check()
    skip_unless_docker(request.config, check.available, check.detail)


def task_image(root: Path) -> str:
    """The docker task image for the toy task (built once, then reused by its tag)."""
    from progenitor.sandbox.docker.images import build_task_image

    context = root / "image-context"
    context.mkdir(parents=True, exist_ok=True)
    (context / "requirements.txt").write_text(REQUIREMENTS)
    return build_task_image(context)


EARLY_STOP = "\n  early_stop: {metric: error, goal: minimize, rule: median, warmup_steps: 3}"


def spec_text(layer: str, goal: str = "minimize", image: Optional[str] = None, early_stop: bool = False,
              timeout: Optional[float] = None) -> str:
    strict = layer == "review"
    return SPEC % {
        "goal": goal, "timeout": timeout or TRAIN_TIMEOUT, "disk": DISK, "files": FILES, "outputs": OUTPUTS,
        "early_stop": EARLY_STOP if early_stop else "",
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
    """Lineage records of the judged (last) generation by k (the control is the last k)."""
    records: dict[tuple[int, int], dict] = field(default_factory=dict)
    """Every generation's records by (gen, k)."""
    generations: int = 1
    champion: Optional[str] = None
    previous_champion: Optional[str] = None
    """The champion the judged generation was built on."""
    events: list[dict] = field(default_factory=list)
    base: str = ""
    stopped: bool = False
    """The run was stopped once its proposals were saved (``Attack.resume``)."""
    resumed: bool = False
    events_bytes: int = 0
    audit: list[dict] = field(default_factory=list)
    git_before: dict = field(default_factory=dict)
    git_after: dict = field(default_factory=dict)
    connections: int = 0
    token: str = ""
    job_peaks: dict[str, int] = field(default_factory=dict)
    """The most bytes each job directory of the run held (its tree and outputs), sampled every 0.05 s."""

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
    early_stop = any(a.early_stop for a in attacks)
    timeout = max((a.train_timeout for a in attacks if a.train_timeout), default=None)
    files = toy_task_files()
    files["progenitor.yaml"] = spec_text(layer, image=image, early_stop=early_stop, timeout=timeout)
    files["requirements.txt"] = REQUIREMENTS
    files["constitution.yaml"] = default_constitution_text() if layer == "review" else SILENT_CONSTITUTION
    if early_stop:
        files["train.py"] = HONEST_CURVE
    repo = make_repo(root / f"repo-{layer}", files)
    tokens = {
        "__REPO__": str(repo.resolve()), "__PORT__": str(port), "__TOKEN__": token,
        "__LABELS__": str((repo / ".progenitor" / "runs" / RUN_ID / "data" / "holdout_labels.npy").resolve()),
        "__SPEC_MAXIMIZE__": spec_text(layer, goal="maximize", image=image, early_stop=early_stop, timeout=timeout),
    }

    def proposal(a: Attack) -> dict:
        return {"hypothesis": f"red team: {a.what}", "params": a.params,
                "edits": {render(p, tokens): render(t, tokens) for p, t in a.edits.items()}}

    before = attacks[0].before
    assert all(a.before == before for a in attacks), "the attacks of one group share their earlier generations"
    script = [[proposal(attacks[0]) if earlier is None else {"hypothesis": "an earlier generation", **earlier}]
              for earlier in before]
    control: dict = {"hypothesis": "the honest control", "params": {"w": CONTROL_W}}
    if None in before:  # the attack is the champion: the control restores the files it changed
        control["edits"] = {path: files.get(path) for path in attacks[0].edits}
    script.append([*map(proposal, attacks), control])
    plant_links(repo, attacks, script[-1], tokens, gen=len(script))
    return repo, script


def plant_links(repo: Path, attacks: list[Attack], proposals: list[dict], tokens: dict[str, str], gen: int) -> None:
    """Commit each linking attack's candidate on its ref before the run, as a coder that can
    write links would have (the run's coder finds the ref and takes the commit)."""
    from progenitor.agents.base import AgentContext
    from progenitor.agents.coder.offline import OfflineCoder
    from progenitor.candidate import Proposal
    from progenitor.candidate.keys import CandidateKey
    from progenitor.lineage import Lineage
    from progenitor.task.spec import load_spec

    lineage = Lineage(repo)
    for k, attack in enumerate(attacks):
        if not attack.links:
            continue
        assert gen == 1, "a planted commit is built on the base, so it belongs to the first generation"
        prop = Proposal(gen=gen, k=k, author="scripted", **proposals[k])
        coder = OfflineCoder(AgentContext(spec=load_spec(repo), run_id=RUN_ID, workdir=repo))

        def edit(tree: Path, attack: Attack = attack, prop: Proposal = prop) -> str:
            message = coder.apply(prop, tree).message
            for path, target in attack.links.items():
                (tree / path).unlink(missing_ok=True)
                os.symlink(render(target, tokens), tree / path)
            return message
        lineage.commit_candidate(CandidateKey(run=RUN_ID, gen=gen, k=k).ref, lineage.head(), edit)


def run_group(root: Path, layer: str, attacks: list[Attack], backend: str, token: str,
              on_event: Optional[Callable[[dict], None]] = None) -> Outcome:
    """Run the generation holding ``attacks`` and the control (after its earlier ones) through the real loop."""
    import git
    image = task_image(root) if backend == "docker" else None
    listener = Listener()
    disk = JobDisk()
    disk.start()
    try:
        repo, script = build_repo(root, layer, attacks, listener.port, token, image)
        outcome = Outcome(layer=layer, repo=repo, attacks=attacks, token=token, git_before=git_state(repo),
                          generations=len(script), base=git.Repo(repo).head.commit.hexsha)
        try:
            drive(outcome, script, backend, on_event, resume=any(a.resume for a in attacks))
        except Exception as exc:  # noqa: BLE001 - a crash is the verdict of every attack in the run
            outcome.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        listener.close()
        disk.close()
    outcome.job_peaks = dict(disk.peaks)
    outcome.connections = listener.connections
    outcome.git_after = git_state(repo)
    collect(outcome)
    return outcome


def drive(outcome: Outcome, script: list[list[dict]], backend: str,
          on_event: Optional[Callable[[dict], None]], resume: bool) -> None:
    """Start the run; with ``resume``, stop it once its first proposals are saved, then resume it."""
    from progenitor.api import decide, resume_run, stop_run

    listeners = [on_event] if on_event else []
    if resume:
        def stop_once_proposed(event) -> None:  # a typed event (progenitor.run.events)
            if event.type == "architect.proposal" and not outcome.stopped:
                outcome.stopped = True
                stop_run(RUN_ID, outcome.repo, reason="red team: stopped with the proposals saved")
        listeners.append(stop_once_proposed)

    def relay(event: dict) -> None:
        for listener in listeners:
            listener(event)
    options = RunOptions(generations=len(script), sandbox=backend, executor="local")
    architect = scripted(script)
    summary = start_run(outcome.repo, options, architect=architect, run_id=RUN_ID, on_event=relay, detach=True)
    if resume:
        assert summary.status == "stopped", f"the run was to stop before its coder, but it {summary.status}"
        summary = resume_run(RUN_ID, outcome.repo, architect=architect, on_event=on_event, detach=True)
        outcome.resumed = True
    while summary.status == "waiting":
        # A constitution change waits for a person (auto mode): the red team's person refuses it.
        decide(RUN_ID, "reject", by="red-team", comment="a candidate may not change its constitution",
               repo=outcome.repo)
        summary = resume_run(RUN_ID, outcome.repo, architect=architect, on_event=on_event, detach=True)


def collect(outcome: Outcome) -> None:
    repo = outcome.repo
    state = repo / ".progenitor"
    events = state / "runs" / RUN_ID / "events.jsonl"
    outcome.events_bytes = events.stat().st_size if events.exists() else 0
    if events.exists():
        outcome.events = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    audit = state / "audit.jsonl"
    if audit.exists():
        outcome.audit = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
    try:
        lineage = get_lineage(RUN_ID, repo).model_dump(mode="json", by_alias=True)
    except Exception:  # noqa: BLE001 - a run that crashed early may have no lineage
        return
    outcome.champion = lineage.get("champion")
    outcome.records = {(c["gen"], c["k"]): c for c in lineage["candidates"]}
    last = outcome.generations
    outcome.candidates = {k: c for (gen, k), c in outcome.records.items() if gen == last}
    promoted = [c for (gen, _), c in sorted(outcome.records.items())
                if gen < last and (c.get("decision") or {}).get("verdict") == "promoted"]
    outcome.previous_champion = promoted[-1]["sha"] if promoted else outcome.base
