"""The audit log is tamper-evident: an edited, deleted, reordered or truncated entry is named,
and so is a log rewritten whole (every hash recomputed), by the heads recorded in git and by a
clone of the lineage taken before the rewrite."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from progenitor.cli import cli
from progenitor.oversight.audit import AUDIT_REF, GENESIS, AuditLog, _digest, audit_log
from progenitor.testing import make_repo, toy_task_files


@pytest.fixture
def repo(tmp_path) -> Path:
    repo = make_repo(tmp_path / "repo", toy_task_files())
    log = audit_log(repo)
    for n in range(5):
        log.append(key=f"r1/g{n}/decision", action="approve" if n % 2 else "keep", actor="policy:auto", run="r1",
                   gen=n, commit=None, payload={"n": n}, comment=f"entry {n}")
    return repo


def _lines(repo: Path) -> list[dict]:
    return audit_log(repo).entries()


def _write(repo: Path, entries: list[dict]) -> None:
    audit_log(repo).path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))


def _rechain(entries: list[dict]) -> list[dict]:
    """What a careful forger does: renumber, relink and rehash every entry."""
    prev, out = GENESIS, []
    for seq, entry in enumerate(entries):
        entry = {k: v for k, v in entry.items() if k != "hash"}
        entry.update(seq=seq, prev=prev)
        entry["hash"] = _digest(entry)
        prev = entry["hash"]
        out.append(entry)
    return out


def _verify(repo: Path, against=None):
    return audit_log(repo).verify(against)


def test_an_untouched_log_verifies_and_every_entry_has_its_head_in_git(repo):
    result = _verify(repo)
    assert result.ok and result.entries == 5 and result.git_heads == 5 and result.unrecorded == 0
    out = subprocess.run(["git", "-C", str(repo), "log", "--format=%s", AUDIT_REF], capture_output=True, text=True).stdout
    assert out.splitlines()[0] == "audit 4: keep by policy:auto" and len(out.splitlines()) == 5
    runner = CliRunner().invoke(cli, ["audit", "verify", "--repo", str(repo)])
    assert runner.exit_code == 0 and "intact: 5 entries, 5 head(s)" in runner.output


def test_an_edited_entry_is_named(repo):
    entries = _lines(repo)
    entries[2]["comment"] = "nothing to see"
    _write(repo, entries)
    result = _verify(repo)
    assert not result.ok and result.bad_entry == 2 and "entry 2: content does not match its hash" in result.problem
    runner = CliRunner().invoke(cli, ["audit", "verify", "--repo", str(repo)])
    assert runner.exit_code == 1 and "entry 2" in runner.output


def test_a_deleted_entry_is_named(repo):
    entries = _lines(repo)
    del entries[1]
    _write(repo, entries)
    result = _verify(repo)
    assert not result.ok and result.bad_entry == 1 and "removed" in result.problem


def test_reordered_entries_are_named(repo):
    entries = _lines(repo)
    entries[1], entries[3] = entries[3], entries[1]
    _write(repo, entries)
    result = _verify(repo)
    assert not result.ok and result.bad_entry == 1


def test_a_truncated_log_is_named_by_the_heads_in_git(repo):
    _write(repo, _lines(repo)[:3])  # the chain of the three left is intact
    assert AuditLog(audit_log(repo).path).verify().ok, "the chain alone cannot tell"
    result = _verify(repo)
    assert not result.ok and result.bad_entry == 3 and "missing from the log" in result.problem


def test_a_log_rewritten_whole_is_named_by_the_heads_in_git(repo):
    entries = _lines(repo)
    entries[2]["actor"] = "human:someone-else"
    forged = _rechain(entries)
    _write(repo, forged)
    assert AuditLog(audit_log(repo).path).verify().ok, "every hash recomputed: the chain alone passes"
    result = _verify(repo)
    assert not result.ok and result.bad_entry == 2 and "rewritten" in result.problem


def test_a_rewrite_of_the_log_and_of_its_git_heads_is_exposed_by_an_earlier_clone(repo, tmp_path, monkeypatch):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--mirror", str(repo), str(clone)], check=True)
    entries = _lines(repo)
    entries[3]["comment"] = "edited later"
    # The forger rewrites the log and records fresh heads for it, as the tools would have.
    subprocess.run(["git", "-C", str(repo), "update-ref", "-d", AUDIT_REF], check=True)
    log = audit_log(repo)
    log.path.unlink()
    # A careful forger keeps every entry's time, so that only the edited entry differs.
    times = iter(e["time"] for e in entries)
    monkeypatch.setattr("progenitor.oversight.audit.now_iso", lambda: next(times))
    for e in entries:
        log.append(**{k: e[k] for k in ("key", "action", "actor", "run", "gen", "commit")}, payload={"n": e["gen"]},
                   comment=e["comment"])
    assert _verify(repo).ok, "the repository alone is consistent again"
    result = _verify(repo, against=clone)
    assert not result.ok and result.bad_entry == 3 and str(clone) in result.problem
    runner = CliRunner().invoke(cli, ["audit", "verify", "--repo", str(repo), "--against", str(clone)])
    assert runner.exit_code == 1 and "entry 3" in runner.output


@pytest.mark.loop
def test_appends_from_several_processes_keep_one_chain(repo):
    script = ("import sys; from progenitor.oversight.audit import audit_log; from pathlib import Path; "
              "log = audit_log(Path(sys.argv[1])); "
              "[log.append(key=f'p{sys.argv[2]}/{i}', action='keep', actor='policy:auto', run='r1', gen=0, commit=None)"
              " for i in range(8)]")
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(repo), str(n)], env=env) for n in range(3)]
    assert all(p.wait(60) == 0 for p in procs)
    result = _verify(repo)
    assert result.ok and result.entries == 5 + 24 and result.git_heads == 29
