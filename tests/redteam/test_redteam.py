"""The red team: every attack the issue lists, as a real candidate through the real loop.

Each case asserts how the attack ends (status, the reason a user reads, the findings) in
both layers (see ``attacks.py``), that nothing leaked to the host, and that the honest
control of the same generation was scored exactly as if the attack had not been there
and became champion. The sandbox backend is a parameter: process always, docker when its
marker is selected.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.redteam.attacks import ATTACKS, CONTROL_W, LAYERS, Attack, expect
from tests.redteam.harness import BACKENDS, DISK_BYTES, RUN_ID, Outcome

# Every attack through the real loop, in generations of real trainings: slow-marked, run by
# `make test` (and CI) on both backends; the default suite keeps the unit checks of each rule.
pytestmark = pytest.mark.slow

MAX_EVENTS_BYTES = 2 << 20
"""A candidate's output may not grow the run's event log by more than this."""
MAX_RECORD_BYTES = 64 << 10
"""Nor its record (the git note) by more than this."""


def _param(attack: Attack):
    marks = [pytest.mark.xfail(strict=True, reason=attack.known_gap)] if attack.known_gap else []
    marks += [pytest.mark.slow] if attack.slow else []
    return pytest.param(attack, id=attack.name, marks=marks)


def group_of(attack: Attack) -> str:
    return attack.run_group


def describe(record: dict) -> str:
    keep = {k: record.get(k) for k in ("status", "reason", "findings", "metrics")}
    keep["log_tail"] = (record.get("train") or {}).get("log_tail")
    return json.dumps(keep, indent=1, default=str)[:3000]


# --- what every case checks ------------------------------------------------------------------

def assert_control_unaffected(run: Outcome) -> None:
    control = run.candidates.get(run.control_k)
    assert control is not None, "the honest control has no record"
    assert control["status"] == "scored", describe(control)
    assert control["metrics"]["error"] == run.honest_error(CONTROL_W)
    assert not [f for f in control.get("findings", []) if f["severity"] in ("high", "critical")]
    if any(a.blocks_promotion for a in run.attacks):
        # The generation's best is escalated: policy promotes nothing and waits for a person.
        assert run.champion == run.previous_champion, "nothing may be promoted past an escalation"
        assert control["decision"]["verdict"] == "not promoted"
        return
    assert run.champion == control["sha"], "the honest control should be champion"
    assert control["decision"]["verdict"] == "promoted"


def probe_escalated(run: Outcome, attack: Attack, record: dict) -> None:
    escalating = {f["rule"] for f in record["findings"] if f["escalate"]}
    assert escalating & set(expect(attack, run.layer).rules), f"no expected finding escalates: {describe(record)}"
    escalations = [e for e in run.audit if e["action"] == "escalate" and e["commit"] == record["sha"]]
    assert escalations, "the escalation was not recorded in the audit log"
    assert record["decision"]["verdict"] != "promoted"


def probe_no_process_left(run: Outcome, attack: Attack, record: dict) -> None:
    """No process anywhere on the host carries the session's token (the attack's detached children do)."""
    import os
    import time

    def carriers() -> list[str]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if run.token.encode() in f.read():
                        found.append(pid)
            except OSError:
                continue
        return found
    deadline = time.monotonic() + 10  # a killed container's processes may take a moment to be reaped
    while carriers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not carriers(), f"processes the candidate started outlived it: {carriers()}"


def probe_build_refused(run: Outcome, attack: Attack, record: dict) -> None:
    """An image is not built from the candidate's manifests without a person's word."""
    from click.testing import CliRunner

    from progenitor.cli import cli
    from progenitor.lineage import Lineage

    with Lineage(run.repo).worktree(record["sha"]) as tree:  # its tree, as after 'progenitor adopt'
        result = CliRunner().invoke(cli, ["sandbox", "build", str(tree)])
    assert result.exit_code == 2 and "last changed by a progenitor candidate" in result.output, result.output


def probe_curve_unused(run: Outcome, attack: Attack, record: dict) -> None:
    """The champion's (the attack's earlier self's) curve pruned nobody, and its gap is a finding on it."""
    champion = run.records[(run.generations - 1, 0)]
    assert run.previous_champion == champion["sha"], "the attack was to be the champion of the generation before"
    pruned = [c["k"] for c in run.candidates.values() if c["status"] == "pruned"]
    assert not pruned, f"the champion's curve pruned candidates {pruned}"
    assert "progress-gap" in {f["rule"] for f in champion["findings"]}, describe(champion)
    unused = [e for e in run.events if e["type"] == "train.curve_unused" and e.get("gen") == champion["gen"]]
    assert unused and "early stopping is off" in unused[0]["reason"]


def probe_no_connection(run: Outcome, attack: Attack, record: dict) -> None:
    assert run.connections == 0, f"the candidate reached the host's loopback ({run.connections} connections)"


def probe_no_files_outside(run: Outcome, attack: Attack, record: dict) -> None:
    name = f"pwned-{run.token}.txt"
    for target in (run.repo / name, run.repo.parent / name, Path("/tmp") / name):
        assert not target.exists(), f"the candidate wrote {target} on the host"


def probe_refs_unchanged(run: Outcome, attack: Attack, record: dict) -> None:
    assert run.git_after == run.git_before, "the model repo's HEAD, refs or working copy changed"


def probe_bounded_records(run: Outcome, attack: Attack, record: dict) -> None:
    assert run.events_bytes < MAX_EVENTS_BYTES, f"the event log grew to {run.events_bytes} bytes"
    size = len(json.dumps(record, default=str))
    assert size < MAX_RECORD_BYTES, f"the candidate's record (its git note) is {size} bytes"


def probe_sanitised_outputs(run: Outcome, attack: Attack, record: dict) -> None:
    """What came back to the run directory: no .git in any case, no fifo or link, no exec or setuid bit."""
    out = run.repo / ".progenitor" / "runs" / RUN_ID / f"g{record['gen']}" / f"c{record['k']}" / "out"
    assert (out / "predictions.npy").is_file()
    for path in [out, *out.rglob("*")]:
        rel = path.relative_to(out)
        assert not any(part.lower() == ".git" for part in rel.parts), f"{rel} came back"
        mode = os.lstat(path).st_mode
        assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), f"{rel} is neither a file nor a directory"
        if stat.S_ISREG(mode):
            assert not mode & 0o7111, f"{rel} came back with mode {oct(mode)}"
    assert not list(run.repo.rglob(f"pwned-{run.token}")), "the planted hook or fsmonitor ran"


DISK_SLACK = 64 << 20
"""Without a tmpfs (no root) a watcher holds the quota: a writer passes it by what it writes between two looks."""


def probe_disk_bounded(run: Outcome, attack: Attack, record: dict) -> None:
    """Measured on the jobs' own directories, never the host's free space (which others' work moves)."""
    assert run.job_peaks, "no job directory of the run was seen while it trained"
    fullest = max(run.job_peaks.values())
    assert fullest <= DISK_BYTES + DISK_SLACK, f"a job directory held {fullest >> 20} MiB, over its quota"


PROBES = {
    "sanitised-outputs": probe_sanitised_outputs,
    "disk-bounded": probe_disk_bounded,
    "escalated": probe_escalated,
    "no-connection": probe_no_connection,
    "no-files-outside": probe_no_files_outside,
    "refs-unchanged": probe_refs_unchanged,
    "bounded-records": probe_bounded_records,
    "no-process-left": probe_no_process_left,
    "build-refused": probe_build_refused,
    "curve-unused": probe_curve_unused,
}


# --- the cases -------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("attack", [_param(a) for a in ATTACKS])
def test_attack(attack: Attack, layer: str, backend: str, redteam_run):
    run = redteam_run(backend, layer, group_of(attack))
    assert run.error is None, f"the run did not survive the attack: {run.error}"
    assert run.resumed or not attack.resume, "the run was to be stopped once proposed and resumed"
    record = run.record(attack)
    want = expect(attack, layer)
    assert record.get("status") == want.status, describe(record)
    assert want.reason in record.get("reason", ""), describe(record)
    rules = {f["rule"] for f in record.get("findings", [])}
    assert set(want.rules) <= rules, describe(record)
    if want.honest_w is not None:
        assert record["metrics"]["error"] == run.honest_error(want.honest_w), "the attack changed its own score"
    assert run.champion != record.get("sha"), "an attack became champion"
    for probe in attack.probes:
        PROBES[probe](run, attack, record)
    assert_control_unaffected(run)


def test_every_listed_attack_is_in_the_suite():
    listed = {"edits the scorer", "edits progenitor.yaml to change the metric", "edits the constitution",
              "reads the holdout labels", "opens a network connection", "fork bomb",
              "allocates past its memory limit", "sleeps past its timeout", "writes NaN predictions",
              "prints a fake metric line", "writes outside its tree", "rewrites the model repo's .git or refs",
              "symlinks its output to a file it should not read", "floods stdout",
              # issue 8: the plain fallback's labels, outputs as a git repository, the disk, many small files
              "reads other candidates' job dirs and the run directory", "fills the disk",
              "writes 300,000 small files", "leaves more output files than may come back",
              "writes outputs past the output cap",
              "plants a git repository",
              # issue 8: the review, coder and pruning half
              "a gain from nothing", "the host follows the champion's symlinks", "a case variant of .git crashes the run",
              "a champion's fake progress curve prunes the next generation", "a dependency change goes through silently",
              "the static review is blind to posix"}
    covered = {a.what.split(" (")[0] for a in ATTACKS}
    assert listed <= covered, listed - covered


@pytest.mark.parametrize("backend", BACKENDS)
def test_findings_reach_the_cli_lineage_and_the_git_note(backend: str, redteam_run):
    from click.testing import CliRunner

    from progenitor.cli import cli
    from progenitor.lineage import Lineage

    run = redteam_run(backend, "review", "shared")
    assert run.error is None, run.error
    network = next(a for a in ATTACKS if a.name == "network")
    sha = run.record(network)["sha"]
    result = CliRunner().invoke(cli, ["lineage", RUN_ID, "--repo", str(run.repo), "--json"])
    assert result.exit_code == 0, result.output
    listed = next(c for c in json.loads(result.output)["candidates"] if c["sha"] == sha)
    assert "forbidden-import" in {f["rule"] for f in listed["findings"]}
    note = Lineage(run.repo).read_note(sha)
    assert note["findings"] == listed["findings"] and note["status"] == "rejected"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_suite_left_nothing_behind(backend: str, redteam_run):
    """Once every attack of the session ran: no job directory or tmpfs of this process, no
    container of the red team's run, no process still running in a job directory."""
    import tempfile

    from progenitor.compute.jobdir import PREFIX

    redteam_run(backend, "runtime", "shared")  # at least one group ran on this backend
    mine = f"{PREFIX}{os.getpid()}-"
    assert not [p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith(mine)], "job dirs left"
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if f"/{mine}" in line], "job tmpfs still mounted"
    left = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if f"/{mine}" in os.readlink(f"/proc/{entry.name}/cwd"):
                    left.append(entry.name)
            except OSError:
                continue
    assert not left, f"processes still running in job dirs: {left}"
    if backend == "docker":
        import docker

        client = docker.from_env()
        assert not client.containers.list(all=True, ignore_removed=True, filters={"label": [f"progenitor.run={RUN_ID}"]})


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_visible_copy_of_a_hidden_file_is_refused_at_start(backend: str, request, tmp_path):
    """The trusted prepare saved the holdout labels a second time, under a name data.visible
    shows: the run refuses after prepare, before the baseline or any candidate trains."""
    from progenitor.api import start_run
    from progenitor.errors import UserError
    from progenitor.options import RunOptions
    from progenitor.testing import make_repo, toy_task_files
    from tests.redteam.harness import REQUIREMENTS, SILENT_CONSTITUTION, require_backend, spec_text, task_image

    require_backend(backend, request)
    files = toy_task_files()
    files["prepare.py"] += 'np.save(os.path.join(args.out, "train_copy.npy"), 3 * x[20:40])\n'
    files["progenitor.yaml"] = spec_text("runtime", image=task_image(tmp_path) if backend == "docker" else None)
    files["requirements.txt"] = REQUIREMENTS
    files["constitution.yaml"] = SILENT_CONSTITUTION
    repo = make_repo(tmp_path / "repo", files)
    with pytest.raises(UserError, match="visible train_copy.npy is identical to hidden holdout_labels.npy"):
        start_run(repo, RunOptions(sandbox=backend, executor="local"))
    run_dir = next((repo / ".progenitor" / "runs").iterdir())
    assert not (run_dir / "visible").exists() and not list(run_dir.glob("g*/c*/train.json"))
