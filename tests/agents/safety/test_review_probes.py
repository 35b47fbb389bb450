"""The probe list (``review_probes``): every spelling really runs a command, and none gets past
the review.

Two bases: the toy task's (the imports a training script has), and one whose code imports
every module the probes use, so that the allow-list of imports cannot be what stops them:
then the reach rules and the forbidden calls must.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from progenitor.agents.safety import ChangedFile, ReviewInput, blocking, review_candidate
from progenitor.task.constitution import default_constitution
from progenitor.task.spec import parse_spec
from progenitor.testing.repos import TOY_TRAIN
from tests.agents.safety.review_probes import PROBES, Probe

CMD = "echo ran > ran.txt"
HEADER = f"import argparse, json, os\nimport numpy as np\nimport yaml\nCMD = {CMD!r}\n"
"""What every probe may assume: the toy task's train.py imports these, and CMD is the command."""

SPEC = parse_spec({"name": "probe", "objective": {"metric": "error", "goal": "minimize"},
                   "data": {"prepare": "python prepare.py --out {data}"},
                   "train": {"command": "python train.py --data {data} --out {out}"},
                   "scorer": {"command": "python score.py"}})
NO_BANDIT = SPEC.model_copy(update={"safety": SPEC.safety.model_copy(update={"bandit": False})})

RUNNER = """\
import builtins, json, os, signal, sys, types
import argparse, numpy, yaml  # the header's imports, loaded once; each probe runs in a fork of this process
probes = json.load(sys.stdin)
for p in probes:
    pid = os.fork()
    if pid == 0:
        os.chdir(p["dir"])
        sys.stdin = open(os.devnull)
        signal.alarm(300)
        main = types.ModuleType("__main__")  # the probe is the script: its module is __main__
        main.__file__, main.__builtins__ = "probe.py", builtins  # as in a script run by python
        sys.modules["__main__"] = main
        try:
            exec(compile(p["code"], "probe.py", "exec"), main.__dict__)
        except BaseException:
            pass
        os._exit(0)
    os.waitpid(pid, 0)
"""


def _have(probe: Probe) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in probe.needs)


def run_probes(probes: list[Probe], root: Path) -> dict[str, bool]:
    """Run each probe as a script would (its own process, its own directory); did CMD run?"""
    jobs = []
    for probe in probes:
        where = root / probe.name
        where.mkdir()
        jobs.append({"dir": str(where), "code": HEADER + probe.code + "\n"})
    subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(jobs), text=True, capture_output=True,
                   timeout=1200, check=True)
    return {p.name: (root / p.name / "ran.txt").is_file() for p in probes}


QUICK = [p for p in PROBES if p.runs and "torch" not in p.needs]


@pytest.mark.loop
def test_every_probe_really_runs_its_command(tmp_path: Path):
    missing = [p.name for p in QUICK if not _have(p)]
    assert not missing, f"the host lacks a library these probes need: {missing}"
    ran = run_probes(QUICK, tmp_path)
    assert [name for name, yes in ran.items() if not yes] == []


@pytest.mark.slow
def test_the_probes_that_need_torch_really_run_too(tmp_path: Path):
    heavy = [p for p in PROBES if p.runs and "torch" in p.needs]
    assert heavy and all(_have(p) for p in heavy)
    assert all(run_probes(heavy, tmp_path).values())


def review_probe(probe: Probe, root: Path, spec=SPEC, base_also: str = "") -> list:
    base, cand = root / "base", root / "cand"
    for tree in (base, cand):
        tree.mkdir(parents=True)
        (tree / "train.py").write_text(TOY_TRAIN)
        if base_also:
            (tree / "uses.py").write_text(base_also)
    (cand / "train.py").write_text(TOY_TRAIN + f"\nCMD = {CMD!r}\n" + probe.code + "\n")
    inp = ReviewInput(spec=spec, base_tree=base, candidate_tree=cand, constitution=default_constitution(),
                      changed=[ChangedFile(path="train.py", status="M")])
    return review_candidate(inp)


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_no_probe_gets_past_the_review(probe: Probe, tmp_path: Path):
    """The default constitution, bandit on, the toy task's base: rejected, and the finding says
    where and what to do."""
    stop = blocking(review_probe(probe, tmp_path), "high")
    assert stop, f"{probe.name} got past the review"
    first = stop[0]
    assert first.file == "train.py" and first.line and first.line > TOY_TRAIN.count("\n"), first
    assert first.message, first


def _every_module_the_probes_import() -> str:
    import re

    names = set()
    for probe in PROBES:
        for group in re.findall(r"^(?:import|from) ([\w.]+(?:, [\w.]+)*)", probe.code, re.M):
            names |= {n.strip() for n in group.split(",")}
    return "".join(f"import {n}\n" for n in sorted(names))


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_no_probe_gets_past_the_review_when_its_imports_are_allowed(probe: Probe, tmp_path: Path):
    """A base that already imports pkgutil, pydoc, pickle, ctypes...: the allow-list of imports
    lets them through, so what stops each probe is how it reaches its name (bandit off)."""
    found = review_probe(probe, tmp_path, NO_BANDIT, base_also=_every_module_the_probes_import())
    assert "unlisted-import" not in {f.rule for f in found}
    assert blocking(found, "high"), f"{probe.name} got past the review once its imports were allowed"


def test_the_probe_list_is_long_enough_and_names_the_nine():
    names = {p.name for p in PROBES}
    nine = {"bound-method-self", "pkgutil-resolve-name", "pydoc-locate", "logging-factory", "formatter-get-field",
            "private-reexport", "pydoc-pipepager", "numpy-ctypes-loader", "reduce-getattr"}
    assert nine <= names and len(names) == len(PROBES) >= 40
