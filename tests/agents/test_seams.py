"""The seams the next agents plug into: the typed candidate and its status machine, agents
registered by name with no edit to the graph, node-side retries of a misbehaving agent, the
git note written once, and a lineage written by progenitor 0.1 still read."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path

import git
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

import progenitor
from progenitor.agents import registry
from progenitor.agents.base import CodeChange, FileEdit
from progenitor.agents.coder.offline import OfflineCoder
from progenitor.agents.safety import Finding
from progenitor.candidate import Candidate, IllegalTransition, Proposal
from progenitor.candidate.keys import CandidateKey
from progenitor.cli import cli
from progenitor.compute import register_executor
from progenitor.errors import ModelBehaviorError, UserError
from progenitor.options import RunOptions
from progenitor.testing import FakeExecutor, make_repo, toy_task_files
from tests.helpers.records import lineage_json

HERE = Path(__file__).parent
FAST = RunOptions(executor="fake", sandbox="process")


@pytest.fixture(autouse=True)
def fake_executor():
    register_executor("fake", FakeExecutor)


@pytest.fixture(autouse=True)
def registrations(monkeypatch):
    """The agents a test registers are gone after it: the registry is process-wide."""
    monkeypatch.setattr(registry, "_REGISTERED", {role: dict(found) for role, found in registry._REGISTERED.items()})


def _proposal(**fields) -> Proposal:
    return Proposal(**{"gen": 1, "k": 0, "hypothesis": "try", **fields})


def test_the_status_machine_refuses_an_illegal_transition():
    cand = Candidate.new(_proposal(), run="r1", parent="a" * 40, objective="error")
    assert cand.status == "proposed" and cand.ref == "refs/progenitor/r1/g1/c0"
    with pytest.raises(IllegalTransition, match="cannot go from 'proposed' to 'scored'"):
        cand.advance("scored", metrics={"error": 0.1})
    done = cand.advance("committed", sha="b" * 40).advance("reviewed").advance("trained").advance("scored")
    assert done.final and cand.status == "proposed", "advance returns a copy"
    with pytest.raises(IllegalTransition):
        done.advance("failed")
    with pytest.raises(IllegalTransition, match="use advance"):
        cand.with_(status="scored")
    assert Candidate.from_record(done.record()) == done
    with pytest.raises(ValidationError, match="'teleported' is not a candidate status"):
        Candidate.from_record({**done.record(), "status": "teleported"})


def test_candidate_keys_are_built_and_parsed_in_one_place():
    key = CandidateKey(run="r20261128-1a2b", gen=3, k=1)
    assert (key.name, key.job, key.ref) == ("g3/c1", "r20261128-1a2b/g3/c1", "refs/progenitor/r20261128-1a2b/g3/c1")
    assert CandidateKey.parse(key.ref) == CandidateKey.parse(key.job) == CandidateKey.parse("g3/c1", run=key.run) == key
    with pytest.raises(ValueError):
        CandidateKey.parse("refs/progenitor/r1/champion")


class AddsAFile:
    """A toy coder: the offline coder's work, plus a NOTES.md naming the hypothesis. It also
    writes a file into the tree by itself, which the seam says it must not: that one is not
    committed (the node applies the edits a coder returns, and only those)."""

    name = "toy"

    def __init__(self, ctx):
        self.offline = OfflineCoder(ctx)

    def apply(self, proposal: Proposal, tree: Path) -> CodeChange:
        change = self.offline.apply(proposal, tree)
        (tree / "SNEAKED.md").write_text("written behind the node's back\n")
        (tree / "config.yaml").write_text("w: 99\n")
        note = FileEdit(path="NOTES.md", content=f"# why\n{proposal.hypothesis}\n")
        return change.model_copy(update={"edits": [*change.edits, note]})

    def fix(self, proposal, tree, failure):
        return None


class FlagsEverything:
    name = "picky"

    def __init__(self, ctx):
        pass

    def review(self, change) -> list[Finding]:
        return [Finding(rule="picky", severity="high", message="the picky reviewer rejects every change")]


@pytest.mark.loop
def test_a_coder_and_a_reviewer_are_one_class_and_one_registration(tmp_path):
    registry.register("coder", "toy")(AddsAFile)
    files = toy_task_files(generations=1, candidates=2)
    files["progenitor.yaml"] += "agents: {coder: toy}\n"
    repo = make_repo(tmp_path / "repo", files)
    summary = progenitor.start_run(repo, FAST)
    lineage = lineage_json(summary.run_id, repo=repo)
    assert len(lineage["candidates"]) == 2
    for cand in lineage["candidates"]:
        assert cand["status"] == "scored", cand["reason"]
        assert git.Repo(repo).git.show(f"{cand['sha']}:NOTES.md").startswith("# why")
        listed = git.Repo(repo).git.ls_tree("-r", "--name-only", cand["sha"]).split()
        assert "SNEAKED.md" not in listed
        assert "w: 99" not in git.Repo(repo).git.show(f"{cand['sha']}:config.yaml")
    registry.register("reviewer", "picky")(FlagsEverything)
    files["progenitor.yaml"] = files["progenitor.yaml"].replace("agents: {coder: toy}", "agents: {reviewers: [picky]}")
    repo = make_repo(tmp_path / "picky", files)
    summary = progenitor.start_run(repo, FAST)
    cands = lineage_json(summary.run_id, repo=repo)["candidates"]
    assert {c["status"] for c in cands} == {"rejected"}
    assert all("picky" in {f["rule"] for f in c["findings"]} for c in cands)


def test_an_unknown_agent_is_one_sentence_with_the_nearest_name(tmp_path):
    files = toy_task_files()
    files["progenitor.yaml"] += "agents: {architect: serch}\n"
    repo = make_repo(tmp_path / "repo", files)
    result = CliRunner().invoke(cli, ["run", str(repo), "--executor", "local"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "error: unknown architect 'serch'; did you mean 'search'? choose one of: llm, mixed, search"
    assert not (repo / ".progenitor" / "runs").exists(), "nothing started"


def test_no_agent_imports_the_workflows():
    root = Path(progenitor.__file__).parent / "agents"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                # A relative import from inside progenitor/agents: resolve it against its package.
                package = ["progenitor", "agents", *path.relative_to(root).parent.parts]
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if n.startswith("progenitor.workflows")]
    assert not offenders


class Flaky:
    """Misbehaves ``times`` times per proposal, then writes the proposal as the offline coder would."""

    name = "flaky"

    def __init__(self, ctx, times: int):
        self.offline, self.times, self.calls = OfflineCoder(ctx), times, {}

    def apply(self, proposal: Proposal, tree: Path) -> CodeChange:
        self.calls[proposal.k] = self.calls.get(proposal.k, 0) + 1
        if self.calls[proposal.k] <= self.times:
            raise ModelBehaviorError(f"garbled edit, attempt {self.calls[proposal.k]}")
        return self.offline.apply(proposal, tree)

    def fix(self, proposal, tree, failure):
        return None


@pytest.mark.loop
def test_a_misbehaving_agent_is_not_asked_again_by_the_node_its_failure_is_recorded(tmp_path):
    """An agent owns its budget of tries (the LLM agents' is ``llm.retries`` and ``llm.repairs``):
    a node that asked again would multiply it."""
    flaky = {}
    registry.register("coder", "flaky1")(lambda ctx: flaky.setdefault("coder", Flaky(ctx, 1)))
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=1, candidates=1))
    summary = progenitor.start_run(repo, FAST.model_copy(update={"coder": "flaky1"}))
    (cand,) = lineage_json(summary.run_id, repo=repo)["candidates"]
    assert cand["status"] == "failed" and cand["reason"] == "the coder could not apply the proposal: garbled edit, attempt 1"
    assert flaky["coder"].calls == {0: 1}


@pytest.mark.loop
def test_each_note_is_written_once_when_its_record_is_final(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=2, candidates=2))
    summary = progenitor.start_run(repo, FAST)
    notes_commits = git.Repo(repo).git.rev_list("--count", "refs/notes/progenitor")
    assert int(notes_commits) == 4, "one notes commit per candidate, not one per node"
    for cand in lineage_json(summary.run_id, repo=repo)["candidates"]:
        note = json.loads(git.Repo(repo).git.notes("--ref", "refs/notes/progenitor", "show", cand["sha"]))
        assert note["schema"] == 2 and note["decision"]["verdict"] and note["cost"]["attempts"] == 1


def test_a_lineage_written_by_progenitor_0_1_is_still_read(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(HERE.parent / "data" / "lineage-v1.bundle"), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "fetch", "--quiet", "origin", "refs/progenitor/*:refs/progenitor/*",
                    "refs/notes/*:refs/notes/*"], check=True)
    result = CliRunner().invoke(cli, ["lineage", "r20261130-0a1b", "--repo", str(clone), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    cands = {c["k"]: c for c in data["candidates"]}
    assert [c["status"] for c in cands.values()] == ["rejected", "scored", "failed"]
    assert cands[0]["findings"][0]["rule"] == "protected-path"
    assert cands[1]["metrics"]["error"] == pytest.approx(0.156101) and cands[1]["decision"]["verdict"] == "promoted"
    assert cands[1]["proposal"]["gen"] == 1 and cands[1]["train"]["log_tail"] == "error: 0.150000"
    assert data["champion"] == cands[1]["sha"] and all(c["schema"] == 2 for c in cands.values())
    table = CliRunner().invoke(cli, ["lineage", "r20261130-0a1b", "--repo", str(clone)])
    assert table.exit_code == 0 and "g1/c1 *" in table.output


@pytest.mark.loop
def test_a_lineage_without_its_run_directory_is_read_from_git(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=1, candidates=2))
    summary = progenitor.start_run(repo, FAST)
    before = lineage_json(summary.run_id, repo=repo)
    shutil.rmtree(repo / ".progenitor")
    after = lineage_json(summary.run_id, repo=repo)
    assert after["candidates"] == before["candidates"] and after["champion"] == summary.champion_commit
    with pytest.raises(UserError, match="no run 'r20990101-dead'"):
        lineage_json("r20990101-dead", repo=repo)
