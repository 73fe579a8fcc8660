"""Paired comparison of two runs on the same test records: the difference of their macro AUC with a
paired bootstrap 95% interval (the same resampled records for both, every class kept present).

An interval that excludes 0 is a real difference on this test set; one that straddles 0 is not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecglab.evaluate.bootstrap import bootstrap_ci
from ecglab.evaluate.metrics import roc_auc_score


def macro_auc_difference(y_true: np.ndarray, a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int):
    """Macro AUC of `a` minus that of `b` over the classes with positives and negatives: (value, lo, hi)."""
    keep = (y_true.sum(0) > 0) & (y_true.sum(0) < len(y_true))

    def difference(y, pa, pb):
        return roc_auc_score(y[:, keep], pa[:, keep]) - roc_auc_score(y[:, keep], pb[:, keep])

    return bootstrap_ci(difference, y_true, a, b, n_resamples=n_resamples, seed=seed)


def run_difference(run: Path, reference: Path, n_resamples: int = 1000, seed: int = 0):
    """Test macro AUC of the run folder `run` minus that of `reference`, paired: (value, lo, hi).

    Both folders hold `predictions/test_true.npy` and `test_probs.npy` of the same test records.
    """
    y = np.load(Path(reference) / "predictions/test_true.npy")
    if not np.array_equal(np.load(Path(run) / "predictions/test_true.npy"), y):
        raise ValueError(f"{run}: other test records than {reference}; cannot pair them")
    probs = np.load(Path(run) / "predictions/test_probs.npy")
    return macro_auc_difference(
        y, probs, np.load(Path(reference) / "predictions/test_probs.npy"), n_resamples, seed
    )


def verdict(lo: float, hi: float) -> str:
    """Whether a paired interval of a difference excludes 0: higher, lower or not distinguishable."""
    return "higher" if lo > 0 else "lower" if hi < 0 else "not distinguishable"
