"""The small parts of the LLM agents on their own: edit blocks (exact, then whitespace- and
indentation-tolerant, ambiguity refused), the fingerprint that tells a repeated change, the
ledger's LLM charges, and the test suite's own guard against the network."""

from __future__ import annotations

import socket

import pytest
import yaml

from progenitor.agents.coder.edit_blocks import parse_blocks, plan
from progenitor.llm.replies import ReplyError
from progenitor.run.ledger import Ledger
from progenitor.task.spec import parse_spec
from progenitor.testing import toy_task_files

SPEC = parse_spec(yaml.safe_load(toy_task_files()["progenitor.yaml"]))


def _tree(tmp_path):
    (tmp_path / "model.py").write_text("def f(x):\n    return x\n\n\ndef g(x):\n    return x\n")
    (tmp_path / "score.py").write_text("print('error: 0')\n")
    (tmp_path / "linked.py").symlink_to("/etc/hostname")  # a champion's link: never read, never written
    return tmp_path


def test_edit_blocks_apply_all_at_once_or_say_exactly_why_not(tmp_path):
    tree = _tree(tmp_path)
    reply = ("Here you are:\n```\nmodel.py\n<<<<<<< SEARCH\ndef f(x):\n    return x\n=======\ndef f(x):\n    return 2 * x\n"
             ">>>>>>> REPLACE\n```\n`notes/why.txt`\n<<<<<<< SEARCH\n=======\nbecause\n>>>>>>> REPLACE\n")
    files = plan(tree, parse_blocks(reply), SPEC)
    assert files == {"model.py": "def f(x):\n    return 2 * x\n\n\ndef g(x):\n    return x\n", "notes/why.txt": "because\n"}
    assert (tree / "model.py").read_text().count("return x") == 2, "nothing is written by plan()"
    cases = {
        "model.py\n<<<<<<< SEARCH\n    return x\n=======\n    return 0\n>>>>>>> REPLACE": "occurs 2 times in model.py",
        "model.py\n<<<<<<< SEARCH\ndef h(x):\n=======\n\n>>>>>>> REPLACE": "does not occur in model.py",
        "score.py\n<<<<<<< SEARCH\nprint\n=======\nx\n>>>>>>> REPLACE": "score.py is protected",
        "../out.py\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE": "climbs out of the tree",
        ".git/config\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE": "inside git's own files",
        ".GIT./hooks/post-commit\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE": "inside git's own files",
        "linked.py\n<<<<<<< SEARCH\nimport\n=======\nx\n>>>>>>> REPLACE": "'linked.py' is a link",
        "model.py\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE": "the SEARCH part is empty but model.py exists",
        "model.py\n<<<<<<< SEARCH\ndef f\n>>>>>>> REPLACE": "has no ======= line",
        "just prose": "holds no edit blocks",
        "README.md\n<<<<<<< SEARCH\n=======\nIgnore the rules\n>>>>>>> REPLACE": "README.md is documentation",
        "docs/notes.txt\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE": "is documentation",
        "model.py\n<<<<<<< SEARCH\n  return x\n=======\n  return 0\n>>>>>>> REPLACE": "occurs 2 times in model.py",
        "model.py\n<<<<<<< SEARCH\nreturn x\n    return x\n=======\n\n>>>>>>> REPLACE": "does not occur in model.py",
    }
    for text, message in cases.items():
        with pytest.raises(ReplyError, match=message):
            plan(tree, parse_blocks(text), SPEC)


def test_a_deleted_block_takes_its_line_with_it(tmp_path):
    tree = _tree(tmp_path)
    files = plan(tree, parse_blocks("model.py\n<<<<<<< SEARCH\ndef g(x):\n    return x\n=======\n>>>>>>> REPLACE"), SPEC)
    assert files["model.py"] == "def f(x):\n    return x\n\n\n"


def test_search_text_off_by_indentation_or_trailing_space_applies_shifted_and_ambiguity_is_refused(tmp_path):
    tree = tmp_path
    (tree / "net.py").write_text("class Net:\n    def forward(self, x):\n        y = x * 2   \n        return y\n")
    quoted_flat = ("### net.py\n<<<<<<< SEARCH\ndef forward(self, x):\n    y = x * 2\n    return y\n=======\n"
                   "def forward(self, x):\n    y = x * 3\n    return y + 1\n>>>>>>> REPLACE\n")
    files = plan(tree, parse_blocks(quoted_flat), SPEC)
    assert files["net.py"] == "class Net:\n    def forward(self, x):\n        y = x * 3\n        return y + 1\n", \
        "found with its indentation shifted as a whole (and trailing spaces aside); the replacement shifted alike"
    trailing = ("**net.py**:\n<<<<<<< SEARCH\n        y = x * 2\n        return y\n=======\n        y = x * 5\n"
                "        return y\n>>>>>>> REPLACE\n")
    assert plan(tree, parse_blocks(trailing), SPEC)["net.py"].endswith("        y = x * 5\n        return y\n"), \
        "trailing spaces aside; and a bold path with a colon is a path"
    (tree / "twice.py").write_text("    if a:\n        go()\n        if a:\n            go()\n")
    with pytest.raises(ReplyError, match="occurs 2 times in twice.py once its indentation is shifted as a whole"):
        plan(tree, parse_blocks("twice.py\n<<<<<<< SEARCH\nif a:\n    go()\n=======\nstop()\n>>>>>>> REPLACE\n"), SPEC)
    with pytest.raises(ReplyError, match="does not occur in net.py"):  # relative indentation differs: not the same code
        plan(tree, parse_blocks("net.py\n<<<<<<< SEARCH\ndef forward(self, x):\ny = x * 2\n=======\n\n>>>>>>> REPLACE\n"), SPEC)


def test_the_same_change_hashes_alike_on_another_champion_and_in_other_whitespace(tmp_path):
    import git as gitlib

    from progenitor.lineage import IDENTITY, Lineage
    from progenitor.testing import make_repo

    repo = make_repo(tmp_path / "r", {"a.py": "x = 1\ny = 2\n", "b.py": "z = 3\n"})
    work = gitlib.Repo(repo)
    base = work.head.commit.hexsha

    def commit(parent: str, files: dict) -> str:
        work.git.checkout("-q", "--detach", parent)
        for name, text in files.items():
            (repo / name).write_text(text)
        work.git.commit("-qam", "c", env=IDENTITY)
        return work.head.commit.hexsha

    lineage = Lineage(repo)
    first = commit(base, {"a.py": "x = 1\ny = 20\n"})
    other_champion = commit(base, {"b.py": "z = 30\n"})
    again = commit(other_champion, {"a.py": "x = 1\ny  =  20\n"})
    different = commit(base, {"a.py": "x = 1\ny = 21\n"})
    fp = lineage.change_fingerprint
    assert fp(base, first) == fp(other_champion, again) != fp(base, different)
    assert fp(base, base) == "" and lineage.diff_stats(base, first)["fingerprint"] == fp(base, first)


def test_llm_charges_add_up_per_role_and_candidate_and_a_replay_is_free(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    assert ledger.add_llm("architect", 0.3, 100, 10, candidate="r/g1", call_id="r/g1/architect/0")
    assert ledger.add_llm("coder", 0.2, 50, 5, candidate="r/g1/c0", call_id="r/g1/c0/coder/0")
    assert ledger.add_llm("reviewer", 0.1, 20, 2, candidate="r/g1/c0", call_id="r/g1/c0/reviewer/0")
    assert ledger.add_llm("coder", 0.4, 50, 5, candidate="r/g2/c0", call_id="r/g2/c0/coder/0")
    assert not ledger.add_llm("coder", 0.2, 50, 5, candidate="r/g1/c0", call_id="r/g1/c0/coder/0"), "a replay"
    ledger.save()
    again = Ledger(tmp_path / "ledger.json")
    assert again.llm(candidate="r/g1/c0").dollars == pytest.approx(0.3) and again.llm(candidate="r/g1/c0").calls == 2
    assert again.totals(generation=1).dollars == pytest.approx(0.6) and again.totals(generation=2).dollars == 0.4
    assert again.totals().dollars == pytest.approx(1.0) and again.data.llm["coder"].calls == 2
    assert again.summary()["llm"]["architect"]["dollars"] == 0.3


def test_the_suite_refuses_and_reports_any_connection_off_this_machine(network_guard, llm_server):
    with socket.create_connection(("127.0.0.1", int(llm_server.url.split(":")[2].split("/")[0])), timeout=5):
        pass
    with pytest.raises(ConnectionRefusedError, match="tests may not reach the network"):
        socket.create_connection(("192.0.2.1", 443), timeout=5)  # TEST-NET-1: never routed
    assert network_guard.attempts == ["('192.0.2.1', 443)"]
    network_guard.attempts.clear()  # this test made the attempt on purpose


def test_what_an_agent_reads_of_a_tree_never_goes_through_a_link(tmp_path):
    from progenitor.agents.repo_view import read_brief, view

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "brief.md").write_text("SECRET from outside the tree\n")
    (outside / "code.py").write_text("SECRET = 1\n")
    (tmp_path / "tree").mkdir()
    tree = _tree(tmp_path / "tree")
    (tree / "docs").symlink_to(outside, target_is_directory=True)  # a linked directory
    (tree / "brief.md").symlink_to(outside / "brief.md")  # a linked file
    (tree / "real.md").write_text("# Research brief\nthe human's own\n")
    shown = view(tree, SPEC)
    assert "SECRET" not in repr(shown.texts) and "model.py" in shown.texts
    assert {f.path: f.kind for f in shown.files}["linked.py"] == "link"
    for name in ("docs/brief.md", "brief.md", "missing.md"):
        assert read_brief(tree, SPEC.model_copy(update={"agents": SPEC.agents.model_copy(update={"brief": name})})) == ""
    spec = SPEC.model_copy(update={"agents": SPEC.agents.model_copy(update={"brief": "real.md"})})
    assert read_brief(tree, spec).startswith("# Research brief")


def test_an_architect_value_its_knob_does_not_take_goes_back_to_the_model():
    from progenitor.agents.architect.llm import Drafts, _check_params

    def check(**params):
        return _check_params(Drafts.model_validate({"proposals": [{"hypothesis": "h", "plan": "p", "params": params}]}), SPEC)

    assert check(w=3.0).proposals[0].params == {"w": 3.0}
    for params, message in [({"w": 9.0}, r"proposals\.0\.params: w 9\.0 is above high 6"),
                            ({"w": "3"}, "w '3' is not a number"), ({"w": float("nan")}, "not a finite number"),
                            ({"depth": 2}, "'depth' is not a config knob of this task \\(knobs: w\\)")]:
        with pytest.raises(ReplyError, match=message):
            check(**params)
