"""A newcomer's mistakes, each caught before any training: at `progenitor run` start (exit 2,
one line naming the field, no traceback) and by `progenitor check` (one line per check)."""

from __future__ import annotations

import json
import os
import re

import pytest
from click.testing import CliRunner

from progenitor.checks.programs import command_problems
from progenitor.cli import cli
from progenitor.testing import make_repo, toy_task_files

_TOY_SCORE = toy_task_files()["score.py"]
# The toy scorer, printing JSON object lines (and a word) instead of its 'name: value' lines.
JSON_SCORE = "import json\n" + _TOY_SCORE[:_TOY_SCORE.index('print(f"error')] + '''\
print("scoring", len(y), "rows")
print(json.dumps({"rmse": float(np.sqrt(((p - y) ** 2).mean())), "mae": float(np.abs(p - y).mean()), "model": "linear"}))
print(json.dumps({"params": 1}))
'''


def toy(tmp_path, name: str = "repo", replace: dict | None = None, **files: str):
    """The toy task as a real git repo, its spec edited by ``replace`` (old -> new)."""
    task = toy_task_files()
    for old, new in (replace or {}).items():
        assert old in task["progenitor.yaml"], old
        task["progenitor.yaml"] = task["progenitor.yaml"].replace(old, new)
    task.update(files)
    return make_repo(tmp_path / name, task)


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def nothing_ran(repo) -> bool:
    return not (repo / ".progenitor" / "runs").exists()


# -- refused at run start -------------------------------------------------------------------

@pytest.mark.parametrize("replace,needles", [
    ({"file: config.yaml": "file: config.yml"},
     ["search_space.file 'config.yml'", "every candidate would train the unchanged baseline", "did you mean 'config.yaml'?"]),
    ({"w: {type: float, low: 0.0, high: 6.0}": "ww: {type: float, low: 0.0, high: 6.0}"},
     ["search_space.params key 'ww'", "dead knob", "did you mean 'w'?"]),
    ({"resources: {cpus: 1, memory: 1g}": "resources: {cpu: 1, memory: 1g}"},
     ["unknown field 'train.resources.cpu'", "did you mean 'cpus'?"]),
    ({"guards: [{metric: params, max: 10}]": "guards: [{metric: params, mx: 10}]"},
     ["unknown field 'guards[0].mx'", "did you mean 'max'?"]),
    ({"    w: {type: float,": "    w: {tpye: float, type: float,"},
     ["unknown field 'search_space.params.w.tpye'", "did you mean 'type'?"]),
    ({"--out {out}\n  timeout": "--out {ouput}\n  timeout"},
     ["'train.command'", "unknown placeholder {ouput}", "did you mean {out}?"]),
    ({"resources: {cpus: 1, memory: 1g}": "resources: {cpus: 1, gpus: 64, memory: 1g}"},
     ["train.resources.gpus asks for 64 GPUs per candidate", "this machine has"]),
    ({"resources: {cpus: 1, memory: 1g}": "resources: {cpus: 4096, memory: 1g}"},
     ["train.resources.cpus asks for 4096 CPUs per candidate"]),
    ({"python score.py": "pyhton score.py"}, ["scorer.command runs program 'pyhton' (not on its PATH)"]),
    ({"objective: {metric: error, goal: minimize}": "objective: {metrc: error, goal: minimize}"},
     ["unknown field 'objective.metrc'; did you mean 'metric'? (a required field, so it is missing too)"]),
    ({"protected:": "  test:\n    command: python score.py --predictions {out}/t.npy --labels {data}/t.npy\nprotected:"},
     ["'scorer.test' scores a test split that 'data.test' does not declare; add data.test (its inputs and labels), "
      "or remove scorer.test"]),
    ({"python train.py": "python trian.py"}, ["train.command runs script trian.py (not in commit"]),
])
def test_run_refuses_a_mistake_in_one_line_before_anything_runs(tmp_path, replace, needles):
    repo = toy(tmp_path, replace=replace)
    result = run_cli("run", str(repo), "--executor", "local", "--sandbox", "process")
    one_line_error(result, *needles)
    assert nothing_ran(repo)


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_gpu_the_machine_lacks_is_refused_the_same_way_by_both_executors(tmp_path, executor):
    repo = toy(tmp_path, replace={"resources: {cpus: 1, memory: 1g}": "resources: {cpus: 1, gpus: 64, memory: 1g}"})
    result = run_cli("run", str(repo), "--executor", executor, "--sandbox", "process")
    line = one_line_error(result, "train.resources.gpus asks for 64 GPUs per candidate but")
    assert "ray" not in line.lower() or "--ray-address" in line  # the same sentence, whichever executor
    assert nothing_ran(repo)


def test_a_constitution_typo_gets_the_nearest_rule_name(tmp_path):
    repo = toy(tmp_path, replace={"sandbox: {backend: process}": "sandbox: {backend: process}\nsafety: {constitution: rules.yaml}"},
               **{"rules.yaml": "forbidden_import: [{modules: [socket]}]\n"})
    line = one_line_error(run_cli("run", str(repo), "--executor", "local"), "rules.yaml", "unknown field 'forbidden_import'",
                          "did you mean 'forbidden_imports'?")
    assert "progenitor.yaml" not in line.split(":")[0]


@pytest.mark.loop
def test_a_baseline_outside_the_space_is_announced_with_its_values(tmp_path):
    repo = toy(tmp_path, **{"config.yaml": "w: 9.0\n"})
    result = run_cli("run", str(repo), "-g", "1", "-k", "1", "--executor", "local", "--sandbox", "process")
    assert result.exit_code == 0, result.output
    assert "the baseline's values lie outside the search space (w 9.0 is above high 6)" in result.output
    run_dir = next((repo / ".progenitor" / "runs").iterdir())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    [warned] = [e for e in events if e["type"] == "run.check"]
    assert warned["status"] == "warning" and "w 9.0 is above high 6" in warned["message"]
    assert [e["type"] for e in events].index("run.check") < [e["type"] for e in events].index("prepare.data")


# -- the scorer contract ----------------------------------------------------------------------

@pytest.mark.loop
def test_a_scorer_that_prints_a_json_object_is_read(tmp_path):
    repo = toy(tmp_path, replace={"objective: {metric: error, goal: minimize}": "objective: {metric: rmse, goal: minimize}"},
               **{"score.py": JSON_SCORE})
    result = run_cli("run", str(repo), "-g", "1", "-k", "2", "--executor", "local", "--sandbox", "process", "-q")
    assert result.exit_code == 0, result.output
    baseline = float(re.search(r"^baseline rmse: ([\d.]+)$", result.output, re.MULTILINE).group(1))
    assert 2.0 < baseline < 4.0  # w = 1 against labels 3 x, x in [1, 2]: an error of 2 x
    status = json.loads(run_cli("status", next((repo / ".progenitor" / "runs").iterdir()).name,
                                "--repo", str(repo), "--json").output)
    assert set(status["baseline"]["metrics"]) == {"rmse", "mae", "params"}  # numbers only: "model" is not one


@pytest.mark.loop
def test_a_scorer_without_the_objective_fails_the_baseline_showing_what_it_printed(tmp_path):
    repo = toy(tmp_path, replace={"objective: {metric: error, goal: minimize}": "objective: {metric: RMSE, goal: minimize}"},
               **{"score.py": JSON_SCORE})
    result = run_cli("run", str(repo), "--executor", "local", "--sandbox", "process")
    assert result.exit_code == 2 and "Traceback" not in result.output
    error = next(line for line in result.output.splitlines() if line.startswith("error:"))
    assert "printed no 'RMSE' metric" in error and '"rmse":' in error  # its last lines are quoted
    assert "fix it, commit, and start a new run" in error
    assert "progenitor resume" not in result.output, "a resume would replay the same commit"


@pytest.mark.loop
def test_a_baseline_that_crashes_says_what_ran_and_what_to_do(tmp_path):
    repo = toy(tmp_path, **{"train.py": "import sys\nprint('loading the data')\nsys.exit('no module named sklearn')\n"})
    result = run_cli("run", str(repo), "--executor", "local", "--sandbox", "process")
    assert result.exit_code == 2 and "Traceback" not in result.output
    error = next(line for line in result.output.splitlines() if line.startswith("error:"))
    assert "failed to train: exit code 1: no module named sklearn" in error
    assert "train.command 'python train.py --data {data} --out {out}'" in error
    assert "fix it, commit, and start a new run" in error
    assert "  | loading the data" in result.output  # the log's tail, below the sentence
    assert "progenitor resume" not in result.output


# -- progenitor check ---------------------------------------------------------------------------

def check_lines(result) -> dict[str, list[str]]:
    by_status: dict[str, list[str]] = {}
    for line in result.output.strip().splitlines()[:-1]:
        status, rest = line.split(None, 1)
        by_status.setdefault(status, []).append(rest)
    return by_status


@pytest.mark.loop
def test_check_passes_a_good_repo_and_says_how_it_scored(tmp_path):
    repo = toy(tmp_path)
    result = run_cli("check", str(repo))
    assert result.exit_code == 0, result.output
    lines = check_lines(result)
    assert set(lines) == {"ok"}, result.output
    names = [line.split(":")[0] for line in lines["ok"]]
    for name in ("spec", "constitution", "search space", "baseline values", "placeholders", "train.command programs",
                 "resources", "data.prepare run", "data.visible", "scorer"):
        assert name in names
    scorer = next(line for line in lines["ok"] if line.startswith("scorer:"))
    assert "error 3.1" in scorer and "on the baseline's outputs, trained in" in scorer and "process sandbox" in scorer
    assert "holdout_labels.npy (the scorer's labels) stays hidden" in result.output
    assert not (repo / ".progenitor").exists(), "check leaves no run behind"


def test_check_reports_each_problem_in_one_line_and_trains_nothing(tmp_path):
    repo = toy(tmp_path, replace={"file: config.yaml": "file: config.yml",
                                  "visible: [train_*.npy, holdout_inputs.npy]": "visible: [train_*.npy, holdout_*.npy, extra_*]"})
    result = run_cli("check", str(repo))
    assert result.exit_code == 2, result.output
    problems = check_lines(result)["problem"]
    assert any(p.startswith("search space: search_space.file 'config.yml'") for p in problems)
    assert any("'holdout_*.npy' matches holdout_labels.npy (labels the scorer compares against)" in p for p in problems)
    assert any("'extra_*' matches none of the files data.prepare wrote" in p for p in problems)
    assert "skipped  scorer: not checked" in result.output, "no baseline training on a broken task"
    assert result.output.strip().splitlines()[-1].startswith("3 problems")


@pytest.mark.loop
def test_check_scores_a_given_predictions_file_and_shows_what_the_scorer_printed(tmp_path):
    import numpy as np

    repo = toy(tmp_path, replace={"objective: {metric: error, goal: minimize}": "objective: {metric: RMSE, goal: minimize}"},
               **{"score.py": JSON_SCORE})
    predictions = tmp_path / "p.npy"
    np.save(predictions, np.full(20, 4.5))
    result = run_cli("check", str(repo), "--predictions", str(predictions))
    assert result.exit_code == 2
    [scorer] = [p for p in check_lines(result)["problem"] if p.startswith("scorer:")]
    assert "printed no 'RMSE' metric" in scorer and '"rmse":' in scorer and f"on {predictions}" in scorer


def test_check_of_a_directory_that_is_no_repo_is_one_problem(tmp_path):
    result = run_cli("check", str(tmp_path))
    assert result.exit_code == 2
    assert check_lines(result) == {"problem": [check_lines(result)["problem"][0]]}
    assert "not the root of a git repository" in result.output


@pytest.mark.loop
def test_run_refuses_visible_patterns_that_show_the_labels(tmp_path):
    repo = toy(tmp_path, replace={"visible: [train_*.npy, holdout_inputs.npy]": "visible: [train_*.npy, holdout_*]"})
    result = run_cli("run", str(repo), "--executor", "local", "--sandbox", "process")
    assert result.exit_code == 2
    assert "'holdout_*' matches holdout_labels.npy" in result.output
    run_dir = next((repo / ".progenitor" / "runs").iterdir())
    assert not (run_dir / "visible").exists() and not (run_dir / "g0" / "c0" / "train.json").exists()


@pytest.mark.parametrize("backend,status", [("process", "problem"), ("auto", "warning"), ("docker", "warning")])
def test_a_training_program_this_machine_lacks_may_be_in_a_docker_image(tmp_path, backend, status):
    from progenitor.checks import DirTree
    from progenitor.checks.static import check_programs
    from progenitor.task.spec import load_spec_text

    task = toy_task_files()
    text = task["progenitor.yaml"].replace("command: python train.py", "command: nosuchtool-xyz train.py")
    spec = load_spec_text(text.replace("sandbox: {backend: process}", f"sandbox: {{backend: {backend}}}"))
    for name, content in task.items():
        (tmp_path / name).write_text(content)
    [train] = [c for c in check_programs(spec, DirTree(tmp_path)) if c.name == "train.command programs"]
    assert train.status == status and "'nosuchtool-xyz' (not on its PATH)" in train.detail


@pytest.mark.loop
def test_braces_of_the_shell_and_awk_pass_through_every_command(tmp_path):
    # Once a KeyError traceback: str.format saw a placeholder in awk's program.
    repo = toy(tmp_path, replace={
        "prepare.py --out {data}": "prepare.py --out {data} && ls {data} | awk '{n++} END {print n}'",
        "--labels {data}/holdout_labels.npy": "--labels {data}/holdout_labels.npy | awk '{print $1, $2}'",
    })
    result = run_cli("run", str(repo), "-g", "1", "-k", "1", "--executor", "local", "--sandbox", "process", "-q")
    assert result.exit_code == 0, result.output
    assert re.search(r"^baseline error: [\d.]+$", result.output, re.MULTILINE)


def test_a_command_naming_a_path_is_looked_up_by_the_path_itself_not_its_letters():
    found, missing = command_problems("./.venv/bin/t && ../x.sh && python ./train.py",
                                      [".venv/bin/t", "x.sh", "train.py"], os.environ["PATH"], "the tree")
    assert found == ["./.venv/bin/t", "python", "train.py"], "./.venv is .venv, not venv"
    assert missing == ["program ../x.sh (not in the tree)"], "../x.sh lies outside the tree, whatever the tree holds"


# -- the test split: check runs its scorer too -----------------------------------------------

@pytest.mark.loop
def test_check_scores_the_test_split_on_the_baselines_outputs(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_task_files(test_split=True))
    result = run_cli("check", str(repo))
    assert result.exit_code == 0, result.output
    [test] = [line for line in check_lines(result)["ok"] if line.startswith("scorer.test:")]
    assert "printed test_error 2.885, test_params 1" in test and "on the baseline's outputs" in test
    assert result.output.strip().splitlines()[-1].startswith("all checks passed")


@pytest.mark.loop
def test_a_training_that_writes_no_test_predictions_is_a_problem_before_the_run(tmp_path):
    """Once 'ready to spend the budget', and the run failed after its baseline trained."""
    files = toy_task_files(test_split=True)
    files["train.py"] = files["train.py"].replace('np.save(os.path.join(args.out, "test_predictions.npy"),', "print(")
    repo = make_repo(tmp_path / "repo", files)
    result = run_cli("check", str(repo))
    assert result.exit_code == 2, result.output
    [test] = check_lines(result)["problem"]
    assert test.startswith("scorer.test: no predictions: the candidate did not write test_predictions.npy")
    assert "the training must write the test split's predictions too" in test


@pytest.mark.loop
def test_with_a_predictions_file_the_test_scorer_is_not_called_ready(tmp_path):
    import numpy as np

    repo = make_repo(tmp_path / "repo", toy_task_files(test_split=True))
    predictions = tmp_path / "p.npy"
    np.save(predictions, np.full(20, 4.5))
    result = run_cli("check", str(repo), "--predictions", str(predictions))
    assert result.exit_code == 0, result.output
    assert check_lines(result)["skipped"][0].startswith("scorer.test: not checked: --predictions holds holdout")
    last = result.output.strip().splitlines()[-1]
    assert "scorer.test could not be checked here" in last and "ready" not in last


def test_run_and_check_list_every_problem_of_the_spec_each_with_its_fix(tmp_path):
    repo = toy(tmp_path, replace={"objective: {metric: error, goal: minimize}": "objective: {metrc: error, goal: minimize}",
                                  "resources: {cpus: 1, memory: 1g}": "resources: {cpu: 1, memory: 1g}"})
    ran = run_cli("run", str(repo), "--executor", "local", "--sandbox", "process")
    assert ran.exit_code == 2 and "Traceback" not in ran.output and nothing_ran(repo)
    lines = ran.output.strip().splitlines()
    assert re.fullmatch(r"error: .*progenitor\.yaml.*: 2 problems:", lines[0]), lines
    assert lines[1:] == ["  - unknown field 'objective.metrc'; did you mean 'metric'? (a required field, so it is "
                         "missing too)", "  - unknown field 'train.resources.cpu'; did you mean 'cpus'?"]
    checked = run_cli("check", str(repo))
    assert checked.exit_code == 2
    problems = check_lines(checked)["problem"]
    assert len(problems) == 2 and "did you mean 'metric'?" in problems[0] and "did you mean 'cpus'?" in problems[1]


# -- per-example scores: check says whether a run's paired test can read them -------------------

@pytest.mark.loop
@pytest.mark.parametrize("writes, status, needle", [
    ("np.abs(p - y)", "ok", "scorer.scores: wrote 20 per-example scores, mean 3.122 (a paired test at 0.05"),
    ("np.abs(p - y)[:3]", "problem", "scorer.scores: per_example.npy has 3 scores for 20 holdout examples; without it"),
    (None, "problem", "scorer.scores: the scorer was given {scores} but wrote no per_example.npy there"),
])
def test_check_reads_the_per_example_scores_a_run_would_test(tmp_path, writes, status, needle):
    score = _TOY_SCORE.replace('parser.add_argument("--labels", required=True)',
                               'parser.add_argument("--labels", required=True)\nparser.add_argument("--scores")')
    if writes is not None:
        score += f'np.save(args.scores + "/per_example.npy", {writes})\n'
    repo = toy(tmp_path, replace={"--labels {data}/holdout_labels.npy": "--labels {data}/holdout_labels.npy "
                                                                       "--scores {scores}"}, **{"score.py": score})
    result = run_cli("check", str(repo))
    assert result.exit_code == (0 if status == "ok" else 2), result.output
    assert any(line.startswith(needle) for line in check_lines(result)[status]), result.output


@pytest.mark.loop
def test_check_says_nothing_of_per_example_scores_a_scorer_is_not_asked_for(tmp_path):
    result = run_cli("check", str(toy(tmp_path)))
    assert "scorer.scores" not in result.output
