"""Bootstrap resampling: every class kept present, counts as weights, percentile intervals."""

from __future__ import annotations

import numpy as np
import pytest

from ecglab.evaluate import metrics as M
from ecglab.evaluate.bootstrap import (
    bootstrap_ci,
    draw_resamples,
    percentile_interval,
    resample_counts,
    weight_blocks,
)
from ecglab.evaluate.evaluate import bootstrap_suite, macro_masks
from ecglab.evaluate.thresholds import apply_thresholds


def rare_labels(n=60):
    y = np.zeros((n, 3), dtype=np.float32)
    y[::2, 0] = 1  # common
    y[[5, 40], 1] = 1  # two positives: often lost by a plain resample
    return y  # class 2 has no positive at all


def test_every_class_that_can_be_kept_is_present_in_every_resample():
    y = rare_labels()
    r = draw_resamples(y, n_resamples=300, seed=1)
    assert r.indices.shape == (300, 60)
    np.testing.assert_array_equal(r.guarded, [True, True, False])
    positives = resample_counts(r.indices, 60) @ y
    assert (positives[:, :2] > 0).all() and (positives[:, :2] < 60).all()
    assert r.redrawn > 0 and r.unguarded == 0  # (1 - 2/60)^60 ~ 13% of plain draws lose class 1


def test_resamples_are_reproducible_and_seeded():
    y = rare_labels()
    a, b = draw_resamples(y, n_resamples=50, seed=3), draw_resamples(y, n_resamples=50, seed=3)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, draw_resamples(y, n_resamples=50, seed=4).indices)
    assert draw_resamples(n=10, n_resamples=5).indices.shape == (5, 10)


def test_a_class_too_rare_to_keep_ends_the_drawing_instead_of_looping():
    y = np.zeros((400, 2))
    y[:, 0] = np.arange(400) % 2
    y[7, 1] = 1  # one positive in 400: about 37% of resamples lose it
    r = draw_resamples(y, n_resamples=200, seed=0, max_draws=100)
    assert len(r.indices) == 200 and r.unguarded > 0


def test_resample_counts_are_the_record_multiplicities():
    idx = np.array([[0, 0, 2, 3], [1, 1, 1, 1]])
    np.testing.assert_array_equal(resample_counts(idx, 4), [[2, 0, 1, 1], [0, 4, 0, 0]])


def test_weight_blocks_are_the_resample_counts_in_bounded_blocks():
    resamples = draw_resamples(n=10, n_resamples=25, seed=1)
    blocks = list(weight_blocks(resamples, 10, elements=80))  # 8 resamples a block
    assert [len(b) for b in blocks] == [8, 8, 8, 1]
    np.testing.assert_array_equal(np.concatenate(blocks), resample_counts(resamples.indices, 10))


def test_percentile_interval():
    samples = np.arange(1001, dtype=float)
    assert percentile_interval(samples) == pytest.approx((25.0, 975.0))
    two = np.stack([samples, np.full(1001, np.nan)], axis=1)
    two[0, 1] = 5.0
    lo, hi = percentile_interval(two, confidence=0.5)
    assert lo[0] == pytest.approx(250.0) and lo[1] == hi[1] == 5.0
    assert np.isnan(percentile_interval(np.full((4, 2), np.nan))[0]).all()


def test_bootstrap_ci_of_any_metric():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(int)
    s = np.clip(0.3 * y + rng.random(300) * 0.8, 0, 1)
    value, lo, hi = bootstrap_ci(M.roc_auc_score, y, s, n_resamples=200, seed=0)
    assert value == M.roc_auc_score(y, s)
    assert lo < value < hi and hi - lo < 0.2


def task(n=400, k=5, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < rng.uniform(0.02, 0.3, k)).astype(np.float32)
    s = np.clip(0.35 * y + rng.random((n, k)) * 0.8, 0, 1).astype(np.float32)
    return y, s, apply_thresholds(s, 0.5)


def test_vectorised_bootstrap_equals_scoring_each_resample():
    y, s, p = task()
    classes = [f"c{i}" for i in range(5)]
    r = draw_resamples(y, n_resamples=40, seed=2)
    kw = dict(classes=classes, multilabel=True, extras={}, masks=macro_masks(y))
    ci = bootstrap_suite(y, s, p, r, **kw)
    f1 = np.array([M.f1_score(y[i], p[i], average=None) for i in r.indices])
    auc = np.array([M.roc_auc_score(y[i], s[i]) for i in r.indices])
    np.testing.assert_allclose(ci["f1"], percentile_interval(f1))
    np.testing.assert_allclose(ci["macro_auc"], percentile_interval(auc))
