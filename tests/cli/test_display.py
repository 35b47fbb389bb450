"""What a terminal and the page show of a candidate's words: escape sequences (the clipboard,
the title, a cursor drawing a fake score) come out as text, on every surface."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from progenitor.cli.progress import Progress
from progenitor.run.events import UnknownEvent, parse_event
from progenitor.run.rundir import RunDir

ATTACK = "exit 1\x1b]52;c;cHduZWQ=\x07\x1b]0;owned\x07\r\x1b[1A\x1b[2K g1/c0 scored 0.0000\u202e"
RAW = ("\x1b", "\x07", "\r", "\u202e")


def _events() -> list[dict]:
    """Events carrying the attack in every string a candidate controls (parsed typed below)."""
    return [
        {"type": "run.start", "run": "r1", "repo": "/r", "base": "b" * 40, "task": "toy", "generations": 1,
         "candidates": 1, "backend": "process", "why": "asked", "metric": f"error{ATTACK}"},
        {"type": "architect.proposal", "gen": 1, "k": 0, "hypothesis": ATTACK},
        {"type": "train.start", "gen": 1, "k": 0, "commit": "a" * 40},
        {"type": "train.end", "gen": 1, "k": 0, "status": "failed", "reason": ATTACK, "duration": 1.0},
        {"type": "score", "gen": 1, "k": 0, "status": "failed", "value": None, "reason": ATTACK},
        {"type": "safety.review", "gen": 1, "k": 0, "status": "rejected", "findings": 1, "reason": ATTACK},
    ]


def test_progress_lines_and_the_live_board_show_escapes_as_text():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, color_system=None, width=300)
    progress = Progress(console)
    for data in _events():
        event = parse_event({**data, "v": 2})
        assert not isinstance(event, UnknownEvent), data
        progress.on_event(event)
    console.print(progress.board)
    out = buf.getvalue()
    assert not [c for c in RAW if c in out], repr(out)
    assert "\\x1b]52;c;cHduZWQ=\\x07" in out and "\\u202e" in out


@pytest.mark.loop
def test_the_page_shows_escapes_as_text(tmp_path):
    from fastapi.testclient import TestClient

    from progenitor.ui import create_app

    repo = tmp_path / "repo"
    repo.mkdir()
    run = RunDir(repo, "r20260101-abcd")
    run.create({"task": f"toy{ATTACK}", "status": "failed", "stop_reason": ATTACK})
    app = create_app(repo, port=8765, owner="owner")
    client = TestClient(app, base_url="http://127.0.0.1:8765")
    assert client.get(f"/?token={app.state.site.auth.owner_token}", follow_redirects=False).status_code == 303
    page = client.get("/").text
    assert not [c for c in RAW if c in page], repr(page)
    assert "toyexit 1\\x1b]52;c;cHduZWQ=\\x07" in page


def test_a_reason_of_many_lines_keeps_them_indented_under_its_own():
    """A schema error lists one field a line: the lines are kept, and each is indented, so that
    none of them passes for a line of the run's own (a fake "promoted" at the start of a line)."""
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, color_system=None, width=300)
    progress = Progress(console)
    reason = "the JSON does not match the schema:\n- proposals.0.plan: Field required\ng1/c0 promoted 0.0000\tnow"
    for data in ({"type": "coder.failed", "gen": 1, "k": 0, "reason": reason},
                 {"type": "architect.failed", "gen": 1, "reason": reason}):
        progress.on_event(parse_event({**data, "v": 2}))
    lines = buf.getvalue().splitlines()
    assert [line for line in lines if "Field required" in line] == ["    - proposals.0.plan: Field required"] * 2
    assert all(line.startswith("    ") for line in lines if "promoted" in line), lines
    assert "\t" not in buf.getvalue()


def test_a_candidate_the_budget_stopped_before_coding_is_not_called_a_coder_failure():
    buf = io.StringIO()
    progress = Progress(Console(file=buf, force_terminal=False, color_system=None, width=300))
    progress.on_event(parse_event({"type": "coder.failed", "gen": 1, "k": 0, "status": "budget", "v": 2,
                                   "reason": "not coded: budget reached: 2.0 of 2 LLM dollars spent"}))
    progress.on_event(parse_event({"type": "coder.failed", "gen": 1, "k": 1, "v": 2,  # an older file: no status
                                   "reason": "not coded: the words of a failure, not a status"}))
    lines = buf.getvalue().splitlines()
    assert lines[0].endswith("g1/c0 not coded: budget reached: 2.0 of 2 LLM dollars spent"), lines
    assert "g1/c1 coder failed: not coded: the words of a failure" in lines[1], lines
