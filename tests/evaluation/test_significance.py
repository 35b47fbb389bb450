"""The paired test of promotion above the noise, and the per-example file a scorer may write."""

from __future__ import annotations

import numpy as np
import pytest

from progenitor.evaluation.significance import load_per_example, paired_test, versus


def _accuracy(n: int, wrong: list[int]) -> np.ndarray:
    scores = np.ones(n)
    scores[wrong] = 0.0
    return scores


def test_one_example_of_359_is_no_gain_above_the_noise():
    champion = _accuracy(359, [0, 1, 2, 3])
    candidate = _accuracy(359, [0, 1, 2])  # the same model but for one more digit right
    test = paired_test(candidate, champion, "maximize", 0.05, compared=4)
    assert test.test == "sign" and (test.wins, test.losses) == (1, 0)
    assert test.p_value == pytest.approx(0.5) and not test.significant
    assert "1 example(s) better, 0 worse of 359" in test.describe()
    assert "p = 0.5 >= 0.0125 = 0.05/4" in test.describe()


def test_the_exact_sign_test_counts_only_the_examples_that_differ():
    champion = _accuracy(359, list(range(30)))
    candidate = _accuracy(359, list(range(20, 25)) + list(range(40, 42)))  # 25 fixed, 2 newly wrong
    test = paired_test(candidate, champion, "maximize", 0.05, compared=1)
    assert (test.wins, test.losses) == (25, 2)
    # P(X >= 25 | n = 27, p = 1/2) = (C(27,25) + C(27,26) + C(27,27)) / 2^27
    assert test.p_value == pytest.approx((351 + 27 + 1) / 2**27)
    assert test.significant and test.mean_gain == pytest.approx(23 / 359)
    backwards = paired_test(champion, candidate, "maximize", 0.05)
    assert not backwards.significant and backwards.mean_gain < 0


def test_bonferroni_over_the_candidates_the_best_was_chosen_from():
    champion = _accuracy(359, list(range(11)))
    candidate = _accuracy(359, list(range(5)))  # 6 wins, 0 losses: p = 1/64
    assert paired_test(candidate, champion, "maximize", 0.05, compared=1).significant
    assert not paired_test(candidate, champion, "maximize", 0.05, compared=4).significant, "0.0156 >= 0.05 / 4"
    assert paired_test(candidate, champion, "maximize", 0.05, compared=4).level == pytest.approx(0.0125)


def test_a_continuous_score_gets_the_paired_bootstrap_in_the_goals_direction():
    rng = np.random.default_rng(0)
    champion = rng.normal(0, 50, 88) ** 2  # squared errors: lower is better
    better = champion * 0.7
    test = paired_test(better, champion, "minimize", 0.05)
    assert test.test == "bootstrap" and test.significant and test.p_value < 0.001
    noise = champion + rng.normal(0, 800, 88)
    noisy = paired_test(noise, champion, "minimize", 0.05)
    assert not noisy.significant and 0.05 < noisy.p_value < 1
    assert paired_test(noise, champion, "minimize", 0.05).p_value == noisy.p_value, "seeded: the same verdict again"
    assert not paired_test(champion, champion, "minimize", 0.05).significant, "no difference, no gain"


def test_the_per_example_file_is_read_with_bounds(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.array([1, 0, 1], dtype=np.int8))
    scores, why = load_per_example(good, expected=3)
    assert why == "" and scores.dtype == np.float64 and scores.tolist() == [1.0, 0.0, 1.0]
    assert load_per_example(tmp_path / "none.npy") == (None, "")
    assert "3 scores for 4 holdout examples" in load_per_example(good, expected=4)[1]
    cases = {
        "2d.npy": np.zeros((3, 2)),
        "nan.npy": np.array([1.0, np.nan]),
        "text.npy": np.array(["a", "b"]),
        "objects.npy": np.array([{"a": 1}], dtype=object),
    }
    for name, array in cases.items():
        np.save(tmp_path / name, array, allow_pickle=True)
        scores, why = load_per_example(tmp_path / name)
        assert scores is None and why, name
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    assert load_per_example(tmp_path / "junk.npy")[0] is None


def test_versus_tests_only_where_both_models_have_scores_of_one_length_and_a_level_is_set():
    ten, none = np.ones(10), np.zeros(10)
    assert versus(ten, none, "maximize", 0.05).significant
    assert versus(ten, none, "maximize", None) is None
    assert versus(None, none, "maximize", 0.05) is None and versus(ten, None, "maximize", 0.05) is None
    assert versus(np.array([]), np.array([]), "maximize", 0.05) is None
    assert versus(ten, np.zeros(9), "maximize", 0.05) is None
