"""Paired comparison of two runs on the same test records: the difference of their macro AUC with a
paired bootstrap 95% interval (the same resampled records for both, every class kept present).

An interval that excludes 0 is a real difference on this test set; one that straddles 0 is not.
Between models trained with several seeds, `seed_mean_difference` and `seed_paired_difference` also
count the training noise: how far reseeding alone moves a test macro AUC (pooled over models, or read
off the per-seed differences where each seed pairs one run with one reference run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from ecglab.evaluate.bootstrap import draw_resamples, percentile_interval, weight_blocks
from ecglab.evaluate.metrics import roc_auc_score


def _kept_classes(y_true: np.ndarray) -> np.ndarray:
    """The classes with both positives and negatives among the test records: those a macro AUC averages."""
    return (y_true.sum(0) > 0) & (y_true.sum(0) < len(y_true))


def macro_auc_difference(y_true: np.ndarray, a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int):
    """Macro AUC of `a` minus that of `b` over the classes with positives and negatives: (value, lo, hi).

    `a` and `b` are (records, classes), or (records, runs, classes) for several runs of one model,
    whose macro AUCs are averaged: the difference of the means over runs, on the same resamples,
    scored a block of resamples at a time through `sample_weight`.
    """
    keep = _kept_classes(y_true)
    y = y_true[:, keep]
    a, b = (p.reshape(len(p), -1, p.shape[-1])[..., keep] for p in (a, b))

    def mean_auc(p, weights):
        return np.mean([roc_auc_score(y, p[:, r], sample_weight=weights) for r in range(p.shape[1])], axis=0)

    def difference(weights=None):
        return mean_auc(a, weights) - mean_auc(b, weights)

    resamples = draw_resamples(y_true, n_resamples=n_resamples, seed=seed)
    samples = np.concatenate([difference(w) for w in weight_blocks(resamples, len(y_true))])
    lo, hi = percentile_interval(samples)
    return float(difference()), lo, hi


def run_difference(run: Path, reference: Path, n_resamples: int = 1000, seed: int = 0):
    """Test macro AUC of the run folder `run` minus that of `reference`, paired: (value, lo, hi).

    Both folders hold `predictions/test_true.npy` and `test_probs.npy` of the same test records.
    """
    y, probs = paired_test_predictions([reference, run])
    return macro_auc_difference(y, probs[:, 1], probs[:, 0], n_resamples, seed)


def paired_test_predictions(runs: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The test labels the run folders share and their test probabilities, (records, runs, classes)."""
    y = np.load(Path(runs[0]) / "predictions/test_true.npy")
    for run in runs[1:]:
        if not np.array_equal(np.load(Path(run) / "predictions/test_true.npy"), y):
            raise ValueError(f"{run}: other test records than {runs[0]}; cannot pair them")
    return y, np.stack([np.load(Path(run) / "predictions/test_probs.npy") for run in runs], axis=1)


def seed_variance(aucs: list[list[float]]) -> tuple[float, int]:
    """The training noise: the pooled variance of one model's test macro AUC between its seeds, from
    each list of one model's AUCs (one per seed), and its degrees of freedom (0: no model has two)."""
    several = [np.asarray(a, dtype=np.float64) for a in aucs if len(a) > 1]
    dof = sum(len(a) - 1 for a in several)
    return (sum(((a - a.mean()) ** 2).sum() for a in several) / dof if dof else float("nan")), dof


def seed_mean_difference(
    runs: list[Path], reference: list[Path], noise: tuple[float, int], n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean test macro AUC over the seeds of `runs` minus that over `reference`'s, with a 95% interval
    that counts both the test records (paired bootstrap) and the training noise (`seed_variance`):
    their variances add, with the Welch-Satterthwaite degrees of freedom. (value, lo, hi)."""
    variance, dof = noise
    if not dof:
        raise ValueError("no model has two seeds: the training noise is unknown")
    y, probs = paired_test_predictions([*reference, *runs])
    n = len(reference)
    bootstrap = macro_auc_difference(y, probs[:, n:], probs[:, :n], n_resamples, seed)
    return _with_training_noise(bootstrap, variance * (1 / len(runs) + 1 / len(reference)), dof)


def seed_paired_difference(
    runs: list[Path], reference: list[Path], n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean over seeds of `runs[i]`'s test macro AUC minus `reference[i]`'s, where each pair shares a
    seed and so what the seed draws beside the initialisation (a label subset, say). The 95% interval
    counts the test records (paired bootstrap) and the training noise, estimated from how much the
    per-seed differences spread (n - 1 degrees of freedom). (value, lo, hi)."""
    if len(runs) != len(reference) or len(runs) < 2:
        raise ValueError(
            f"need two or more pairs of runs, got {len(runs)} runs and {len(reference)} references"
        )
    y, probs = paired_test_predictions([*reference, *runs])
    n = len(reference)
    keep = _kept_classes(y)
    per_seed = [
        roc_auc_score(y[:, keep], probs[:, n + i, keep]) - roc_auc_score(y[:, keep], probs[:, i, keep])
        for i in range(n)
    ]
    bootstrap = macro_auc_difference(y, probs[:, n:], probs[:, :n], n_resamples, seed)
    return _with_training_noise(bootstrap, np.var(per_seed, ddof=1) / n, n - 1)


def _with_training_noise(bootstrap: tuple[float, float, float], training: float, dof: int):
    """The bootstrap's (value, lo, hi) widened by the training noise's variance of the difference,
    `training` with `dof` degrees of freedom: the variances add (the bootstrap's read off its interval
    as a normal one), with the Welch-Satterthwaite degrees of freedom for the t quantile."""
    value, lo, hi = bootstrap
    records = ((hi - lo) / (2 * stats.norm.ppf(0.975))) ** 2
    effective_dof = (records + training) ** 2 / (training**2 / dof) if training > 0 else np.inf
    half = stats.t.ppf(0.975, effective_dof) * np.sqrt(records + training)
    return value, value - half, value + half


def verdict(lo: float, hi: float) -> str:
    """Whether a paired interval of a difference excludes 0: higher, lower or not distinguishable."""
    return "higher" if lo > 0 else "lower" if hi < 0 else "not distinguishable"
