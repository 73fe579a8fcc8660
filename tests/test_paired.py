"""Paired comparisons of runs on the same test records, and the training noise between seeds."""

import numpy as np
import pytest
from scipy import stats

from ecglab.evaluate.bootstrap import bootstrap_ci
from ecglab.evaluate.metrics import roc_auc_score
from ecglab.evaluate.paired import (
    macro_auc_difference,
    run_difference,
    seed_mean_difference,
    seed_paired_difference,
    seed_variance,
)
from ecglab.train.config import TrainConfig
from helpers import finished_run


def _runs(tmp_path, y, probs_list):
    return [finished_run(tmp_path, TrainConfig(model="fcn_wang", label=f"r{i}"), y, p)[1]
            for i, p in enumerate(probs_list)]  # fmt: skip


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 3)) < 0.3).astype(np.float32)
    return y, [y + scale * rng.standard_normal(y.shape) for scale in (0.5, 0.6, 1.0, 1.2)]


def test_seed_variance_pools_the_models_with_several_seeds():
    variance, dof = seed_variance([[1.0, 2.0, 3.0], [4.0, 6.0], [9.0]])
    assert dof == 3 and variance == pytest.approx((2.0 + 2.0) / 3)
    assert seed_variance([[0.8], [0.7]])[1] == 0


def test_difference_scores_the_resamples_that_a_loop_over_them_scores(data):
    y, probs = data

    def difference(y, a, b):
        return roc_auc_score(y, a) - roc_auc_score(y, b)

    looped = bootstrap_ci(difference, y, probs[0], probs[1], n_resamples=300, seed=4)
    assert macro_auc_difference(y, probs[0], probs[1], 300, 4) == pytest.approx(looped, abs=1e-12)


def test_run_difference_is_the_difference_of_the_two_aucs(tmp_path, data):
    y, probs = data
    a, b = _runs(tmp_path, y, probs[:2])
    value, lo, hi = run_difference(a, b, n_resamples=200)
    assert value == pytest.approx(roc_auc_score(y, probs[0]) - roc_auc_score(y, probs[1]))
    assert lo < value < hi


def test_seed_mean_difference_adds_the_training_noise(tmp_path, data):
    y, probs = data
    runs = _runs(tmp_path, y, probs)
    mean = lambda ps: np.mean([roc_auc_score(y, p) for p in ps])  # noqa: E731
    expected = mean(probs[:2]) - mean(probs[2:])
    # no training noise: the interval is the paired bootstrap's, as wide as its percentile interval
    value, lo, hi = seed_mean_difference(runs[:2], runs[2:], (0.0, 3), n_resamples=200)
    _, boot_lo, boot_hi = macro_auc_difference(y, np.stack(probs[:2], 1), np.stack(probs[2:], 1), 200, 0)
    assert value == pytest.approx(expected) and hi - lo == pytest.approx(boot_hi - boot_lo)
    assert lo > 0  # the better pair is better on these records
    # much training noise swamps the records': half-width t(dof) x sqrt(variance x (1/2 + 1/2))
    value, lo, hi = seed_mean_difference(runs[:2], runs[2:], (0.04, 3), n_resamples=200)
    assert (hi - lo) / 2 == pytest.approx(stats.t.ppf(0.975, 3) * 0.2, rel=0.02)
    assert lo < 0 < hi
    with pytest.raises(ValueError, match="training noise is unknown"):
        seed_mean_difference(runs[:1], runs[1:2], (float("nan"), 0))


def test_seed_paired_difference_reads_the_training_noise_off_the_per_seed_differences(tmp_path, data):
    y, probs = data
    runs, references = _runs(tmp_path / "runs", y, probs[:3]), _runs(tmp_path / "references", y, probs[1:4])
    per_seed = [roc_auc_score(y, a) - roc_auc_score(y, b) for a, b in zip(probs[:3], probs[1:4], strict=True)]
    value, lo, hi = seed_paired_difference(runs, references, n_resamples=200)
    assert value == pytest.approx(np.mean(per_seed))
    # wider than the records alone allow, by the per-seed spread with 2 degrees of freedom
    _, boot_lo, boot_hi = macro_auc_difference(y, np.stack(probs[:3], 1), np.stack(probs[1:4], 1), 200, 0)
    records = ((boot_hi - boot_lo) / (2 * stats.norm.ppf(0.975))) ** 2
    training = np.var(per_seed, ddof=1) / 3
    assert hi - lo > boot_hi - boot_lo
    assert (hi - lo) / 2 > stats.norm.ppf(0.975) * np.sqrt(records + training)  # t with finite dof
    assert (hi - lo) / 2 < stats.t.ppf(0.975, 2) * np.sqrt(records + training)
    # the same difference at every seed: no training noise, the bootstrap's interval
    _, same_lo, same_hi = seed_paired_difference(runs[:1] * 2, references[:1] * 2, n_resamples=200)
    _, boot_lo, boot_hi = macro_auc_difference(y, probs[0], probs[1], 200, 0)
    assert same_hi - same_lo == pytest.approx(boot_hi - boot_lo)
    with pytest.raises(ValueError, match="two or more pairs"):
        seed_paired_difference(runs[:1], references[:1])


def test_runs_of_other_records_are_not_paired(tmp_path, data):
    y, probs = data
    a = _runs(tmp_path / "a", y, probs[:1])[0]
    b = _runs(tmp_path / "b", y[:-1], [probs[1][:-1]])[0]
    with pytest.raises(ValueError, match="other test records"):
        run_difference(a, b)
