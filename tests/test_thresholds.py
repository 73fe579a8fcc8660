"""Threshold tuning: the best F1 cut found by a sort equals a brute-force search."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from ecglab.evaluate.thresholds import (
    apply_thresholds,
    argmax_predictions,
    best_f1_threshold,
    tune_thresholds,
)


def scores(seed, n=120, k=4):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, k)) < rng.uniform(0.05, 0.4, k)).astype(int)
    y_true[0] = 1
    y_score = np.round(np.clip(0.3 * y_true + rng.random((n, k)) * 0.8, 0, 1), 2)  # with ties
    return y_true, y_score


def f1_at_cuts(y_true, y_score, cuts):
    """F1 `(cuts, K)` of the decisions `y_score >= cut`, by plain counting."""
    pred = y_score.reshape(1, len(y_score), -1) >= np.asarray(cuts).reshape(-1, 1, 1)
    y = y_true.reshape(1, len(y_true), -1).astype(bool)
    tp, fp, fn = (pred & y).sum(1), (pred & ~y).sum(1), (~pred & y).sum(1)
    return np.where(tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def brute_force_f1(y, s):
    """The best F1 over every cut `s >= c`, c a score."""
    return f1_at_cuts(y, s, np.unique(s)).max()


def test_best_f1_threshold_matches_brute_force():
    for seed in range(8):
        y_true, y_score = scores(seed)
        for k in range(y_true.shape[1]):
            t, f1 = best_f1_threshold(y_true[:, k], y_score[:, k])
            best = brute_force_f1(y_true[:, k], y_score[:, k])
            assert f1 == pytest.approx(best)
            assert f1_score(y_true[:, k], y_score[:, k] >= t) == pytest.approx(best)


def test_threshold_lies_halfway_between_kept_and_dropped_scores():
    y = np.array([1, 1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.1])
    # cuts: 0.9 -> F1 2/4, 0.8 -> 4/5, 0.7 -> 4/6, 0.6 -> 6/7 (best), 0.3 -> 6/8
    t, f1 = best_f1_threshold(y, s)
    assert f1 == pytest.approx(6 / 7)
    assert t == pytest.approx((0.6 + 0.3) / 2)


def test_ties_are_one_cut_and_ties_in_f1_go_to_the_higher_threshold():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.5, 0.5, 0.5, 0.5])
    assert best_f1_threshold(y, s) == (0.5, pytest.approx(2 / 3))
    y = np.array([1, 0, 1, 1])
    s = np.array([0.9, 0.8, 0.7, 0.2])  # cut 0.9: F1 2/4; 0.7: 4/6; 0.2: 6/7... all cuts distinct
    t, f1 = best_f1_threshold(y, s)
    assert f1 == pytest.approx(6 / 7) and t == pytest.approx(0.2)  # keeping everyone: the lowest score itself
    y = np.array([1, 0, 0, 1])
    s = np.array([0.9, 0.6, 0.5, 0.4])  # F1 2/3 at 0.9 and at 0.4
    assert best_f1_threshold(y, s)[0] == pytest.approx((0.9 + 0.6) / 2)


def test_perfect_separation_gives_f1_one():
    y = np.array([0, 0, 1, 1, 1])
    s = np.array([0.1, 0.35, 0.4, 0.8, 0.9])
    t, f1 = best_f1_threshold(y, s)
    assert f1 == 1.0 and 0.35 < t < 0.4


def test_class_without_positives_gets_the_default():
    y_true = np.array([[1, 0], [0, 0], [1, 0]])
    y_score = np.array([[0.9, 0.8], [0.1, 0.2], [0.7, 0.3]])
    assert np.isnan(best_f1_threshold(y_true[:, 1], y_score[:, 1])[0])
    np.testing.assert_allclose(tune_thresholds(y_true, y_score), [0.4, 0.5])
    np.testing.assert_allclose(tune_thresholds(y_true, y_score, default=0.3), [0.4, 0.3])
    np.testing.assert_allclose(tune_thresholds(y_true, y_score, method="global"), [0.4, 0.4])


def test_global_threshold_maximises_macro_f1_by_brute_force():
    for seed in range(8):
        y_true, y_score = scores(seed)
        t = tune_thresholds(y_true, y_score, method="global")
        assert np.all(t == t[0])
        best = f1_at_cuts(y_true, y_score, np.unique(y_score)).mean(1).max()
        assert f1_score(y_true, y_score >= t[0], average="macro", zero_division=0) == pytest.approx(best)


def test_per_class_beats_or_equals_global_on_the_tuning_data():
    y_true, y_score = scores(3)
    per_class = f1_score(y_true, apply_thresholds(y_score, tune_thresholds(y_true, y_score)), average="macro")
    shared = f1_score(
        y_true, apply_thresholds(y_score, tune_thresholds(y_true, y_score, method="global")), average="macro"
    )
    assert per_class >= shared - 1e-12


def test_apply_thresholds_and_argmax():
    y_score = np.array([[0.2, 0.7, 0.5], [0.6, 0.1, 0.5]])
    np.testing.assert_array_equal(apply_thresholds(y_score, [0.5, 0.7, 0.6]), [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(apply_thresholds(y_score, 0.5), [[0, 1, 1], [1, 0, 1]])
    np.testing.assert_array_equal(argmax_predictions(y_score), [[0, 1, 0], [1, 0, 0]])


def test_bad_arguments():
    with pytest.raises(ValueError, match="threshold method"):
        tune_thresholds(np.ones((2, 2)), np.ones((2, 2)), method="youden")
    with pytest.raises(ValueError, match="must both be"):
        tune_thresholds(np.ones((2, 2)), np.ones((2, 3)))
