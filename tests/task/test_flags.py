"""``search_space.flags``: a repository configured by argparse gets the knobs as ``--name=value``,
read from the values file of the commit being trained, so that the commit reproduces it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import progenitor
from progenitor.cli import cli
from progenitor.options import RunOptions
from progenitor.task.flags import train_command
from progenitor.task.spec import load_spec_text
from progenitor.testing import make_repo, scripted, toy_task_files

ARGPARSE_TRAIN = '''\
import argparse, os
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--w", type=float, default=1.0)
parser.add_argument("--act", choices=["relu", "gelu"], default="relu")
args = parser.parse_args()
x = np.load(os.path.join(args.data, "holdout_inputs.npy"))
np.save(os.path.join(args.out, "predictions.npy"), args.w * x)
print(f"trained with w={args.w} act={args.act}")
'''

FLAGS = "# the knobs, passed to train.py as --name=value (search_space.flags)\nw: 1.0\nact: relu\n"


def argparse_repo(path):
    """The toy task, its train.py configured by argparse alone (it reads no config file)."""
    files = toy_task_files(generations=1, candidates=2)
    files.pop("config.yaml")
    files["train.py"] = ARGPARSE_TRAIN
    files["flags.yaml"] = FLAGS
    files["progenitor.yaml"] = files["progenitor.yaml"].replace("""search_space:
  file: config.yaml
  params:
    w: {type: float, low: 0.0, high: 6.0}""", """search_space:
  file: flags.yaml
  flags: true
  params:
    w: {type: float, low: 0.0, high: 6.0}
    act: {type: categorical, choices: [relu, gelu]}""")
    return make_repo(path, files)


def spec(flags: bool = True, choices: str = "[relu, gelu]"):
    text = toy_task_files()["progenitor.yaml"].replace(
        "  file: config.yaml\n", f"  file: flags.yaml\n  flags: {str(flags).lower()}\n").replace(
        "    w: {type: float, low: 0.0, high: 6.0}",
        f"    w: {{type: float, low: 0.0, high: 6.0}}\n    act: {{type: categorical, choices: {choices}}}")
    return load_spec_text(text)


def test_the_values_become_one_quoted_flag_each_in_the_order_of_params():
    command, problem = train_command(spec(), {"flags.yaml": "act: gelu\nw: 0.001\n"}.get)
    assert problem is None
    assert command == "python train.py --data {data} --out {out} --w=0.001 --act=gelu"
    odd, problem = train_command(spec(choices="['a b', '{data}', x;rm]"), {"flags.yaml": "w: 2\nact: '{data}'\n"}.get)
    assert problem is None and odd.endswith("--w=2 '--act={{data}}'")  # a brace in a value is not a placeholder
    semi, _ = train_command(spec(choices="['a b', '{data}', x;rm]"), {"flags.yaml": "w: 2\nact: x;rm\n"}.get)
    assert semi.endswith("--w=2 '--act=x;rm'")
    assert train_command(spec(flags=False), {}.get) == ("python train.py --data {data} --out {out}", None)


@pytest.mark.parametrize("files, reason", [
    ({}, "search_space.file 'flags.yaml' is not in its commit"),
    ({"flags.yaml": "w: 9\nact: relu\n"}, "flags.yaml: w 9 is above high 6, so it is not passed to train.command"),
    ({"flags.yaml": "w: 1\n"}, "flags.yaml has no value for search_space.params key 'act'"),
    ({"flags.yaml": "w: [1\n"}, "flags.yaml: could not be parsed"),
    ({"flags.yaml": "w: 1\nact: relu\n" + "#" * (1 << 20)}, "larger than 1 MiB"),
    # YAML's hexadecimal and binary integers skip Python's 4,300-digit limit: no float, no repr
    ({"flags.yaml": "w: 0x" + "f" * 300 + "\nact: relu\n"}, "w is an integer of 1200 bits, beyond any float"),
    ({"flags.yaml": "w: 1\nact: 0b" + "1" * 20000 + "\n"}, "act (a value too long to write: int) is not one of"),
])
def test_a_values_file_that_cannot_give_its_flags_is_the_reason(files, reason):
    _, problem = train_command(spec(), files.get)
    assert problem is not None and reason in problem, problem


LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(9))
"""Ten aliases of ten, nine levels deep: a few hundred bytes of YAML, 10^10 strings when written out whole."""


@pytest.mark.timeout(20)
@pytest.mark.parametrize("value", ["*j", "[*j, *j]", "{k: *j}"])
def test_a_values_file_that_is_a_billion_laughs_is_a_reason_in_a_moment(value):
    """The values file is the candidate's: a value that is an alias bomb is named in a short
    reason (its repr written out whole would take the driver's memory and never end)."""
    for knob in ("w", "act"):
        other = "act: relu" if knob == "w" else "w: 1"
        _, problem = train_command(spec(), {"flags.yaml": f"{LAUGHS}{knob}: {value}\n{other}\n"}.get)
        assert problem is not None and len(problem) < 600 and "..." in problem, problem


@pytest.mark.loop
def test_a_run_passes_each_candidates_values_as_flags_and_its_commit_reproduces_it(tmp_path):
    repo = argparse_repo(tmp_path / "repo")
    checked = CliRunner().invoke(cli, ["check", str(repo)])
    assert checked.exit_code == 0, checked.output
    assert "train.command gets them as --name=value flags (search_space.flags)" in checked.output
    script = [[{"hypothesis": "near the answer", "params": {"w": 2.75, "act": "gelu"}},
               {"hypothesis": "out of its space", "params": {}, "edits": {"flags.yaml": "w: 9.5\nact: relu\n"}}]]
    summary = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local"), architect=scripted(script))
    assert summary.champion < summary.baseline / 4
    lineage = progenitor.get_lineage(summary.run_id, repo=repo)
    good, bad = lineage.candidate(1, 0), lineage.candidate(1, 1)
    assert good.train.command == "python train.py --data {data} --out {out} --w=2.75 --act=gelu"
    assert "trained with w=2.75 act=gelu" in good.train.log_tail and good.sha == summary.champion_commit
    assert bad.status == "failed" and "not trained: flags.yaml: w 9.5 is above high 6" in bad.reason
    assert lineage.baseline is not None
    # The commit alone reproduces the candidate: its values file, the recorded command.
    tree, data, out = tmp_path / "tree", repo / ".progenitor" / "runs" / summary.run_id / "data", tmp_path / "out"
    tree.mkdir()
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", good.sha], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    assert (tree / "flags.yaml").read_text().startswith("# the knobs") and "w: 2.75" in (tree / "flags.yaml").read_text()
    command = good.train.command.replace("{data}", str(data)).replace("{out}", str(out)).replace("python", sys.executable, 1)
    subprocess.run(command, shell=True, cwd=tree, check=True, capture_output=True)
    kept = repo / ".progenitor" / "runs" / summary.run_id / good.train.out / "predictions.npy"
    assert np.array_equal(np.load(out / "predictions.npy"), np.load(kept))
