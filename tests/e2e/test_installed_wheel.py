"""Installed like any Python tool: progenitor's wheel, installed in a clean environment (no
source checkout on the path, nothing else installed), runs ``--help`` and makes the bundled
digits example. It once answered "the bundled examples are not installed".

The wheel is built from a copy of this checkout's files (the build leaves nothing in the
checkout), offline (``--no-build-isolation``: setuptools comes with the dev extras). It is
installed ``--no-deps``, then with the dependencies it declares that ``init`` imports
(measured here: the full set, ray and litellm included, takes about 5.5 minutes to install on
a 2-core machine, this about 20 s; each one installed is checked to be declared by the wheel).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NEEDED_BY_INIT = ("click", "pydantic", "pyyaml", "gitpython")
"""The distributions ``progenitor --help`` and ``progenitor init`` import (``-X importtime``)."""


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stderr}{done.stdout}"
    return done


def source_copy(dest: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored), as a build would get them from git."""
    listed = run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(source.read_bytes())
    return dest


def declared(wheel: Path) -> dict[str, str]:
    """The wheel's ``Requires-Dist`` lines by normalised distribution name (extras' left out)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    requires = {}
    for line in lines:
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            spec = line.split(":", 1)[1].strip()
            name = re.match(r"[A-Za-z0-9_.-]+", spec).group(0)
            requires[re.sub(r"[-_.]+", "-", name).lower()] = spec.split(";")[0].strip()
    return requires


def test_a_wheel_in_a_clean_environment_runs_help_and_makes_the_digits_example(tmp_path):
    began = time.monotonic()
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist,
         source_copy(tmp_path / "src")])
    [wheel] = dist.glob("progenitor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    examples = [p.name for p in (ROOT / "examples").iterdir() if (p / "progenitor.yaml").is_file()]
    assert "digits" in examples
    for example in examples:  # every example, found when the wheel is built
        for path in (ROOT / "examples" / example).rglob("*"):
            rel = path.relative_to(ROOT / "examples" / example)
            if path.is_file() and "__pycache__" not in rel.parts and ".progenitor" not in rel.parts:
                assert f"progenitor/examples/{example}/{rel.as_posix()}" in names, f"{example}/{rel} not in the wheel"
    for asset in ("ui/static/app.js", "ui/static/app.css", "ui/templates/base.html", "task/templates/progenitor.yaml",
                  "task/templates/constitution.yaml", "task/templates/program.md", "agents/prompts/architect.yaml"):
        assert f"progenitor/{asset}" in names, asset
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    built = time.monotonic()

    venv = tmp_path / "clean"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    requires = declared(wheel)
    missing = [name for name in NEEDED_BY_INIT if name not in requires]
    assert not missing, f"init imports {missing}, which the wheel does not declare"
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q"]
    run([*pip, "--no-deps", wheel])
    run([*pip, *(requires[name] for name in NEEDED_BY_INIT)])
    installed = time.monotonic()

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    here = tmp_path / "elsewhere"
    here.mkdir()
    where = run([python, "-c", "import progenitor; print(progenitor.__file__)"], cwd=here, env=env).stdout
    assert where.startswith(str(venv)), f"progenitor was imported from {where}, not the clean environment"

    progenitor = venv / "bin" / "progenitor"
    shown = run([progenitor, "--help"], cwd=here, env=env).stdout
    assert "init" in shown and "check" in shown and "run" in shown
    made = run([progenitor, "init", "--example", "digits", here / "digits"], cwd=here, env=env).stdout
    assert f"next: progenitor check {here / 'digits'}" in made
    for name in ("progenitor.yaml", "train.py", "score.py", "prepare.py", "model.py", "config.yaml"):
        assert (here / "digits" / name).read_bytes() == (ROOT / "examples" / "digits" / name).read_bytes(), name
    log = run(["git", "-C", here / "digits", "log", "--format=%s"]).stdout.splitlines()
    assert log == ["digits: the human baseline"]
    (here / "mine").mkdir()
    run([progenitor, "init", here / "mine"], cwd=here, env=env)
    assert {p.name for p in (here / "mine").iterdir()} == {"progenitor.yaml", "constitution.yaml", "program.md"}
    print(f"wheel built in {built - began:.1f} s, installed in a clean environment in {installed - built:.1f} s, "
          f"checked in {time.monotonic() - installed:.1f} s")
