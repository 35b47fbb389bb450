"""The data contract says what is hidden (``data.hidden``, and the labels always), and what a
candidate sees is compared with it by contents, not names. Once, with ``visible: ['*.bin']``
and a holdout called ``holdout.bin``, ``check`` printed "ok" while the candidate could read it."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

from progenitor.cli import cli
from progenitor.evaluation.leaks import leaks
from progenitor.evaluation.visible import hidden_files, visible_matches
from progenitor.task.spec import load_spec_text
from progenitor.testing import make_repo, toy_task_files

BIN_SPEC = """\
name: bins
objective: {metric: bpc, goal: minimize}
data:
  prepare: python prepare.py --out {data}
  visible: [%(visible)s]
  hidden: [%(hidden)s]
train:
  command: python train.py --data {data} --out {out}
scorer:
  command: python score.py --model {out}/model.bin --holdout {data}/holdout.bin
  predictions: null
"""


def bin_spec(visible: str = "'*.bin'", hidden: str = ""):
    return load_spec_text(BIN_SPEC % {"visible": visible, "hidden": hidden})


@pytest.fixture
def data(tmp_path):
    """A corpus split into files, as a language model's prepare writes it."""
    d = tmp_path / "data"
    d.mkdir()
    (d / "train.bin").write_bytes(os.urandom(300_000))
    (d / "val.bin").write_bytes(os.urandom(40_000))
    (d / "holdout.bin").write_bytes(os.urandom(50_000))
    return d


def test_a_glob_that_shows_the_holdout_the_scorer_reads_is_refused(data):
    _, problems = visible_matches(bin_spec(), data)
    assert problems == ["data.visible pattern '*.bin' matches holdout.bin (a file the scorer reads from {data}): "
                        "candidates must never see it; narrow the pattern"]
    matched, problems = visible_matches(bin_spec(visible="train.bin, val.bin"), data)
    assert problems == [] and [p.name for p in matched] == ["train.bin", "val.bin"]
    # Named exactly, a file the scorer reads is the user's word that candidates may see it.
    assert "holdout.bin" not in hidden_files(bin_spec(visible="train.bin, holdout.bin"), data)


def test_data_hidden_is_refused_by_name_and_a_pattern_matching_nothing_is_a_typo(data):
    _, problems = visible_matches(bin_spec(visible="'*.bin'", hidden="val.bin, vla.bin"), data)
    assert "data.hidden pattern 'vla.bin' matches none of the files data.prepare wrote" in problems[0]
    assert "data.visible pattern '*.bin' matches holdout.bin" in problems[1]
    assert "data.visible pattern '*.bin' matches val.bin (data.hidden pattern 'val.bin')" in problems[2]


@pytest.mark.parametrize("leak, message", [
    (lambda h: h, "visible train2.bin is identical to hidden holdout.bin"),
    (lambda h: os.urandom(12_345) + h + os.urandom(777), "visible train2.bin holds 100% of the blocks of hidden holdout.bin"),
    (lambda h: os.urandom(3) + h[:30_000], "visible train2.bin holds "),  # 60 % of it, give or take its anchors
])
def test_a_visible_file_holding_the_hidden_ones_contents_is_refused_whatever_its_name(data, leak, message):
    (data / "train2.bin").write_bytes(leak((data / "holdout.bin").read_bytes()))
    _, problems = visible_matches(bin_spec(visible="train.bin, train2.bin, val.bin"), data)
    assert len(problems) == 1 and problems[0].startswith(message), problems
    assert problems[0].endswith("a candidate would read what it must not; make data.prepare keep them apart")


def test_a_holdout_split_over_visible_files_is_found_in_them_together(data):
    holdout = (data / "holdout.bin").read_bytes()
    (data / "a.bin").write_bytes(holdout[:20_000])
    (data / "b.bin").write_bytes(holdout[20_000:35_000])
    (data / "c.bin").write_bytes(holdout[35_000:])
    _, problems = visible_matches(bin_spec(visible="a.bin, b.bin, c.bin"), data)
    assert len(problems) == 1 and problems[0].startswith("the visible files together hold 9"), problems


def test_a_labels_array_inside_a_larger_one_is_found_through_its_npy_header(tmp_path):
    rng = np.random.default_rng(1)
    holdout, train, small = rng.integers(0, 10, 400), rng.integers(0, 10, 4000), rng.integers(0, 10, 40)
    np.save(tmp_path / "holdout_labels.npy", holdout)
    np.save(tmp_path / "train_y.npy", np.concatenate([train[:1111], holdout, train[1111:]]))
    np.save(tmp_path / "small_labels.npy", small)  # 320 bytes: looked for whole
    np.save(tmp_path / "train_small.npy", np.concatenate([train[:7], small]))
    found = leaks({"train_y.npy": tmp_path / "train_y.npy", "train_small.npy": tmp_path / "train_small.npy"},
                  {"holdout_labels.npy": tmp_path / "holdout_labels.npy",
                   "small_labels.npy": tmp_path / "small_labels.npy"})
    assert found == ["visible train_y.npy holds 100% of the blocks of hidden holdout_labels.npy",
                     "visible train_small.npy contains the whole of hidden small_labels.npy"]


@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
def test_honest_labels_of_few_classes_never_share_blocks_by_chance(tmp_path, dtype):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "train_y.npy", rng.integers(0, 2, 200_000).astype(dtype))
    np.save(tmp_path / "holdout_labels.npy", rng.integers(0, 2, 5_000).astype(dtype))
    np.save(tmp_path / "tiny_labels.npy", rng.integers(0, 2, 20).astype(dtype))  # too small to judge
    assert leaks({"train_y.npy": tmp_path / "train_y.npy"},
                 {"holdout_labels.npy": tmp_path / "holdout_labels.npy",
                  "tiny_labels.npy": tmp_path / "tiny_labels.npy"}) == []


@pytest.mark.loop
def test_check_and_the_run_refuse_a_visible_copy_of_the_labels(tmp_path):
    """The toy task's prepare also saves its holdout labels under a training name."""
    files = toy_task_files()
    files["prepare.py"] += 'np.save(os.path.join(args.out, "train_extra.npy"), 3 * x[20:40])\n'
    repo = make_repo(tmp_path / "repo", files)
    checked = CliRunner().invoke(cli, ["check", str(repo)])
    assert checked.exit_code == 2, checked.output
    assert ("problem  data.visible: visible train_extra.npy is identical to hidden holdout_labels.npy: a candidate "
            "would read what it must not") in checked.output
    ran = CliRunner().invoke(cli, ["run", str(repo), "--executor", "local", "--sandbox", "process"])
    assert ran.exit_code == 2 and "Traceback" not in ran.output
    line = ran.output.strip().splitlines()[-1]  # after the run's first progress lines: refused after prepare
    assert line == ("error: visible train_extra.npy is identical to hidden holdout_labels.npy: a candidate would read "
                    "what it must not; make data.prepare keep them apart")
    run_dir = next((repo / ".progenitor" / "runs").iterdir())
    assert not (run_dir / "visible").exists() and not (run_dir / "g0" / "c0" / "train.json").exists()


@pytest.mark.loop
def test_a_data_hidden_file_is_kept_out_and_said_to_be(tmp_path):
    files = toy_task_files()
    files["prepare.py"] += 'np.save(os.path.join(args.out, "train_notes.npy"), np.arange(3))\n'
    files["progenitor.yaml"] = files["progenitor.yaml"].replace(
        "  visible: [train_*.npy, holdout_inputs.npy]", "  visible: [train_x.npy, train_y.npy, holdout_inputs.npy]\n"
                                                       "  hidden: [train_notes.npy]")
    repo = make_repo(tmp_path / "repo", files)
    checked = CliRunner().invoke(cli, ["check", str(repo)])
    assert checked.exit_code == 0, checked.output
    assert "holdout_labels.npy (the scorer's labels) stays hidden, so do train_notes.npy" in checked.output


def test_a_copy_inside_a_plain_npz_is_found_and_a_compressed_one_is_not_as_documented(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 2000)
    np.save(tmp_path / "holdout_labels.npy", labels)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(500, 8)), y=labels)
    np.savez_compressed(tmp_path / "packed.npz", y=labels)
    hidden = {"holdout_labels.npy": tmp_path / "holdout_labels.npy"}
    assert leaks({"train.npz": tmp_path / "train.npz"}, hidden) == [
        "visible train.npz holds 100% of the blocks of hidden holdout_labels.npy"]
    assert leaks({"packed.npz": tmp_path / "packed.npz"}, hidden) == []
