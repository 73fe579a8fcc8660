"""Metrics against scikit-learn on random data, and against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from ecglab.evaluate import metrics as M
from ecglab.paths import data_root

SEEDS = range(6)
AVERAGES = [None, "macro", "micro", "weighted"]


def random_task(seed, n=150, k=5, ties=True):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, k)) < rng.uniform(0.1, 0.5, k)).astype(np.int8)
    y_true[:2] = [[1] * k, [0] * k]  # every class has a positive and a negative
    y_score = np.clip(0.4 * y_true + rng.random((n, k)) * 0.7, 0, 1)
    if ties:
        y_score = np.round(y_score, 1)  # many tied scores
    y_pred = (y_score >= 0.5).astype(np.int8)
    weight = rng.integers(0, 4, n).astype(float)
    return y_true, y_score, y_pred, weight


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (M.f1_score, skm.f1_score),
        (M.precision_score, skm.precision_score),
        (M.recall_score, skm.recall_score),
    ],
)
def test_decision_metrics_match_sklearn(ours, theirs, average):
    for seed in SEEDS:
        y_true, _, y_pred, weight = random_task(seed)
        y_pred[:, 0] = 0  # a class never predicted: precision falls back to zero_division
        for w in (None, weight):
            expected = theirs(y_true, y_pred, average=average, sample_weight=w, zero_division=0)
            np.testing.assert_allclose(ours(y_true, y_pred, average=average, sample_weight=w), expected)


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize(
    "ours, theirs",
    [(M.roc_auc_score, skm.roc_auc_score), (M.average_precision_score, skm.average_precision_score)],
)
def test_ranking_metrics_match_sklearn(ours, theirs, average):
    for seed in SEEDS:
        y_true, y_score, _, weight = random_task(seed, ties=seed % 2 == 0)
        for w in (None, weight):
            expected = theirs(y_true, y_score, average=average, sample_weight=w)
            np.testing.assert_allclose(ours(y_true, y_score, average=average, sample_weight=w), expected)


def test_binary_vectors_give_floats_matching_sklearn():
    for seed in SEEDS:
        y_true, y_score, y_pred, _ = random_task(seed, k=1)
        y, s, p = y_true[:, 0], y_score[:, 0], y_pred[:, 0]
        assert isinstance(M.f1_score(y, p), float)
        assert M.f1_score(y, p) == pytest.approx(skm.f1_score(y, p))
        assert M.roc_auc_score(y, s) == pytest.approx(skm.roc_auc_score(y, s))
        assert M.average_precision_score(y, s) == pytest.approx(skm.average_precision_score(y, s))
        assert M.accuracy_score(y, p) == pytest.approx(skm.accuracy_score(y, p))


def test_accuracies_match_sklearn():
    for seed in SEEDS:
        y_true, _, y_pred, weight = random_task(seed)
        assert M.accuracy_score(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
        assert M.accuracy_score(y_true, y_pred, sample_weight=weight) == pytest.approx(
            skm.accuracy_score(y_true, y_pred, sample_weight=weight)
        )
        assert M.label_accuracy_score(y_true, y_pred) == pytest.approx(1 - skm.hamming_loss(y_true, y_pred))
        per_class = M.label_accuracy_score(y_true, y_pred, average=None)
        np.testing.assert_allclose(per_class, (y_true == y_pred).mean(0))


def test_curves_match_sklearn():
    for seed in SEEDS:
        y_true, y_score, _, _ = random_task(seed, k=1, ties=seed % 2 == 0)
        y, s = y_true[:, 0], y_score[:, 0]
        for ours, theirs in zip(M.roc_curve(y, s), skm.roc_curve(y, s, drop_intermediate=False), strict=True):
            np.testing.assert_allclose(ours, theirs)
        for ours, theirs in zip(
            M.precision_recall_curve(y, s), skm.precision_recall_curve(y, s), strict=True
        ):
            np.testing.assert_allclose(ours, theirs)


def test_confusion_matrices_match_sklearn():
    for seed in SEEDS:
        y_true, y_score, y_pred, _ = random_task(seed)
        np.testing.assert_array_equal(
            M.multilabel_confusion_matrix(y_true, y_pred), skm.multilabel_confusion_matrix(y_true, y_pred)
        )
        rng = np.random.default_rng(seed)
        t, p = rng.integers(0, 4, 80), rng.integers(0, 4, 80)
        expected = skm.confusion_matrix(t, p, labels=range(4))
        np.testing.assert_array_equal(M.confusion_matrix(t, p, num_classes=4), expected)
        np.testing.assert_array_equal(M.confusion_matrix(np.eye(4)[t], np.eye(4)[p]), expected)


@pytest.mark.parametrize("seed", range(4))
def test_batched_weights_equal_row_by_row_and_explicit_resamples(seed):
    """A (B, n) sample_weight scores B resamples at once, exactly as indexing the records would."""
    y_true, y_score, y_pred, _ = random_task(seed, n=60, k=3)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 60, size=(5, 60))
    counts = np.stack([np.bincount(i, minlength=60) for i in idx]).astype(float)
    for metric, y_other in (
        (M.f1_score, y_pred),
        (M.precision_score, y_pred),
        (M.recall_score, y_pred),
        (M.roc_auc_score, y_score),
        (M.average_precision_score, y_score),
        (M.label_accuracy_score, y_pred),
    ):
        batched = metric(y_true, y_other, average=None, sample_weight=counts)
        assert batched.shape == (5, 3)
        for b, i in enumerate(idx):
            np.testing.assert_allclose(batched[b], metric(y_true[i], y_other[i], average=None))
    batched = M.accuracy_score(y_true, y_pred, sample_weight=counts)
    np.testing.assert_allclose(batched, [M.accuracy_score(y_true[i], y_pred[i]) for i in idx])


# ---------------------------------------------------------------------------------- hand-computed


def test_f1_precision_recall_by_hand():
    y_true = np.array([1, 1, 1, 0, 0, 0])
    y_pred = np.array([1, 1, 0, 1, 0, 0])  # tp 2, fn 1, fp 1
    assert M.precision_score(y_true, y_pred) == pytest.approx(2 / 3)
    assert M.recall_score(y_true, y_pred) == pytest.approx(2 / 3)
    assert M.f1_score(y_true, y_pred) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert M.accuracy_score(y_true, y_pred) == pytest.approx(4 / 6)


def test_tied_scores_count_half_for_auc_and_one_step_for_ap():
    y_true = np.array([0, 1, 0, 1])
    y_score = np.array([0.5, 0.5, 0.2, 0.8])
    # pairs (pos, neg): (0.5, 0.5) tie = 1/2, (0.5, 0.2) = 1, (0.8, 0.5) = 1, (0.8, 0.2) = 1
    assert M.roc_auc_score(y_true, y_score) == pytest.approx(3.5 / 4)
    # thresholds 0.8: P 1, R 1/2; 0.5: P 2/3, R 1
    assert M.average_precision_score(y_true, y_score) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # all scores tied: AUC 1/2, AP the prevalence
    assert M.roc_auc_score(y_true, np.full(4, 0.3)) == pytest.approx(0.5)
    assert M.average_precision_score(y_true, np.full(4, 0.3)) == pytest.approx(0.5)


def test_perfect_and_inverted_classifiers():
    y_true = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0]])
    y_score = y_true * 0.6 + 0.2
    assert M.roc_auc_score(y_true, y_score) == 1.0
    assert M.average_precision_score(y_true, y_score) == 1.0
    assert M.f1_score(y_true, y_true) == 1.0
    assert M.accuracy_score(y_true, y_true) == 1.0
    assert M.roc_auc_score(y_true, 1 - y_score) == 0.0


def test_class_without_positives_is_nan_and_left_out_of_the_macro():
    y_true = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    y_score = np.array([[0.9, 0.1], [0.2, 0.7], [0.6, 0.3], [0.4, 0.2]])
    auc = M.roc_auc_score(y_true, y_score, average=None)
    assert auc[0] == 1.0 and np.isnan(auc[1])
    assert M.roc_auc_score(y_true, y_score) == 1.0
    assert np.isnan(M.average_precision_score(y_true, y_score, average=None)[1])
    # F1 of a class neither present nor predicted: zero_division, as in scikit-learn
    y_pred = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    np.testing.assert_array_equal(M.f1_score(y_true, y_pred, average=None), [1.0, 0.0])
    assert np.isnan(M.f1_score(y_true, y_pred, average=None, zero_division=np.nan)[1])
    assert M.f1_score(y_true, y_pred, zero_division=np.nan) == 1.0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="shape"):
        M.f1_score(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="0/1"):
        M.f1_score(np.array([0, 2, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="threshold"):
        M.f1_score(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9]))
    with pytest.raises(ValueError, match="NaN"):
        M.roc_auc_score(np.array([0, 1]), np.array([np.nan, 0.5]))
    with pytest.raises(ValueError, match="average"):
        M.roc_auc_score(np.array([[0, 1]]), np.array([[0.1, 0.5]]), average="samples")


def test_cinc2017_score_is_the_mean_f1_of_n_a_o():
    classes = ["N", "A", "O", "~"]
    t = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 0])
    p = np.array([0, 0, 2, 1, 0, 2, 3, 3, 0, 0])
    # N: tp 3, fp 2 (records 5, 9), fn 1 -> 6/9; A: tp 1, fn 1 -> 2/3; O: tp 1, fp 1, fn 1 -> 1/2
    expected = (6 / 9 + 2 / 3 + 1 / 2) / 3
    assert M.cinc2017_score(np.eye(4)[t], np.eye(4)[p], classes=classes) == pytest.approx(expected)
    with pytest.raises(ValueError, match="N, A and O"):
        M.cinc2017_score(np.eye(3)[[0]], np.eye(3)[[0]], classes=["N", "A", "~"])


TOY_WEIGHTS = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])  # classes A, B, normal


def test_challenge_score_by_hand():
    y_true = np.array([[1, 0, 0], [0, 0, 1], [1, 1, 0]])
    y_pred = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    # credits shared over |labels or outputs|: observed 0.5/2 + 1 + (1 + 0.5)/2 = 2.0;
    # correct labels 1 + 1 + 3/2 = 3.5; normal-only 0/2 + 1 + 0/3 = 1.0
    score = M.challenge_score(y_true, y_pred, weights=TOY_WEIGHTS, normal_index=2)
    assert score == pytest.approx((2.0 - 1.0) / (3.5 - 1.0))
    assert M.challenge_score(y_true, y_true, weights=TOY_WEIGHTS, normal_index=2) == 1.0
    normal_only = np.tile([0, 0, 1], (3, 1))
    assert M.challenge_score(y_true, normal_only, weights=TOY_WEIGHTS, normal_index=2) == 0.0
    # a record with neither labels nor outputs adds nothing
    padded = M.challenge_score(
        np.r_[y_true, [[0, 0, 0]]], np.r_[y_pred, [[0, 0, 0]]], weights=TOY_WEIGHTS, normal_index=2
    )
    assert padded == pytest.approx(score)


def reference_challenge_score(y_true, y_pred, weights, normal_index):
    """The published definition, record by record: the test's slow, literal reference."""

    def total(outputs):
        a = np.zeros_like(weights)
        for labels, out in zip(y_true, outputs, strict=True):
            share = max(np.sum(np.logical_or(labels, out)), 1)
            for j in np.flatnonzero(labels):
                for k in np.flatnonzero(out):
                    a[j, k] += 1.0 / share
        return np.sum(weights * a)

    inactive = np.zeros_like(y_true)
    inactive[:, normal_index] = 1
    observed, correct, inactive = total(y_pred), total(y_true), total(inactive)
    return 0.0 if correct == inactive else (observed - inactive) / (correct - inactive)


@pytest.mark.parametrize("seed", range(6))
def test_challenge_score_matches_the_literal_definition(seed):
    rng = np.random.default_rng(seed)
    k = 6
    w = rng.random((k, k))
    weights = (w + w.T) / 2
    np.fill_diagonal(weights, 1.0)
    y_true = (rng.random((40, k)) < 0.3).astype(int)
    y_pred = (rng.random((40, k)) < 0.3).astype(int)
    expected = reference_challenge_score(y_true, y_pred, weights, normal_index=3)
    assert M.challenge_score(y_true, y_pred, weights=weights, normal_index=3) == pytest.approx(expected)


def test_challenge_weights_reads_codes_pairs_and_aliases(tmp_path):
    path = tmp_path / "weights.csv"
    path.write_text(
        ",111,222,333,444\n111,1.0,0.5,0.2,0.0\n222,0.5,1.0,0.2,0.0\n333,0.2,0.2,1.0,0.3\n444,0.0,0.0,0.3,1.0\n"
    )
    w = M.challenge_weights(path, ["NSR", "X|Y", "333"], aliases={"NSR": ("444",), "X|Y": ("222", "111")})
    # "X|Y" matches columns 111 and 222: the first (111) is used, as the challenge merges such pairs
    np.testing.assert_array_equal(w, [[1.0, 0.0, 0.3], [0.0, 1.0, 0.2], [0.3, 0.2, 1.0]])
    pair = tmp_path / "pairs.csv"
    pair.write_text(",AF,CRBBB|RBBB\nAF,1.0,0.4\nCRBBB|RBBB,0.4,1.0\n")
    np.testing.assert_array_equal(M.challenge_weights(pair, ["RBBB", "AF"]), [[1.0, 0.4], [0.4, 1.0]])
    with pytest.raises(ValueError, match="no column for class 'LBBB'"):
        M.challenge_weights(pair, ["LBBB"])


@pytest.mark.data
def test_challenge_weights_of_the_2020_and_2021_tables():
    from ecglab.data.cinc_scored import SCORED_2020, SCORED_2021

    for year, table in (("2020", SCORED_2020), ("2021", SCORED_2021)):
        path = data_root() / "cinc2020" / f"evaluation-{year}" / "weights.csv"
        if not path.is_file():
            pytest.skip(f"{path} not found; set ECGLAB_DATA to the folder holding cinc2020/")
        classes = [c for c, _ in table]
        weights = M.challenge_weights(path, classes, aliases=dict(table))
        assert weights.shape == (len(classes), len(classes))
        np.testing.assert_array_equal(np.diag(weights), 1.0)
        np.testing.assert_array_equal(weights, weights.T)
        assert weights.min() >= 0.0
        normal = classes.index("NSR")
        rng = np.random.default_rng(int(year))
        y_true = (rng.random((200, len(classes))) < 0.1).astype(int)
        y_pred = np.where(rng.random(y_true.shape) < 0.8, y_true, 1 - y_true)
        score = M.challenge_score(y_true, y_pred, weights=weights, normal_index=normal)
        assert score == pytest.approx(reference_challenge_score(y_true, y_pred, weights, normal))
        assert M.challenge_score(y_true, y_true, weights=weights, normal_index=normal) == 1.0
