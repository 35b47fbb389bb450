"""The two scripts of examples/embed, run as a lab would run them, on a fresh copy of digits."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # whole runs, end to end: CI runs them, `make test-fast` does not

EMBED = Path(__file__).resolve().parents[2] / "examples" / "embed"


def test_the_streaming_script_prints_a_real_run_as_it_happens():
    proc = subprocess.run([sys.executable, str(EMBED / "stream_events.py")], capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert " run r" in lines[0] and "on digits: 1 x 2" in lines[0]
    assert any(" baseline accuracy " in line for line in lines)
    assert sum(" scored " in line or " failed " in line for line in lines) == 2
    assert " run finished: baseline " in lines[-1]


def test_the_lab_graph_runs_progenitor_as_a_subgraph_in_its_own_namespace(tmp_path):
    proc = subprocess.run([sys.executable, str(EMBED / "lab_graph.py"), "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (tmp_path / "REPORT.md").read_text()
    assert report.startswith("# digits: run r") and report.count("| g1/c") == 2
    with sqlite3.connect(tmp_path / "lab-checkpoints.sqlite") as db:
        spaces = dict(db.execute("select checkpoint_ns, count(*) from checkpoints group by checkpoint_ns"))
    assert spaces[""] >= 3, "the lab's own nodes"
    assert any(ns.startswith("improve:") and n > 5 for ns, n in spaces.items()), spaces
