"""The layer contract (pyproject's ``[tool.importlinter]``): surfaces over ``api``, ``api`` over
the graph, the graph over agents / oversight / evaluation, those over compute and sandboxes, all
over task, candidate and errors; no module cycle inside any package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_graph_keeps_its_layers_and_has_no_cycle():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a dev dependency: pip install -e '.[dev]'"
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
