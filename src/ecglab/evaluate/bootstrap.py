"""Bootstrap confidence intervals over records, keeping every class present in every resample.

A resample draws n records with replacement. One in which a class that the data holds loses
all its positives (or all its negatives) is drawn again, so per-class F1 and AUC stay defined
and macro averages always cover the same classes. The interval is the percentile interval.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

_CHUNK = 4_000_000  # elements per (resamples, records) block: bounds memory on large test sets


class Resamples(NamedTuple):
    indices: np.ndarray  # (B, n) record indices
    guarded: np.ndarray  # (K,) bool: classes kept present (with positives and negatives) in every resample
    redrawn: int  # resamples thrown away because a guarded class went missing
    unguarded: int  # resamples accepted unchecked once the draw budget ran out (normally 0)


def draw_resamples(
    y_true=None,
    *,
    n: int | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    max_draws: int | None = None,
) -> Resamples:
    """Bootstrap record indices in which every class of `y_true` keeps a positive and a negative.

    Classes without both in `y_true` can't be kept and aren't guarded. Drawing stops after
    `max_draws` (default 100 x `n_resamples`) so that a class too rare to keep can't loop
    forever; the rest are then accepted unchecked and counted in `unguarded`.
    """
    if y_true is None:
        if n is None:
            raise ValueError("draw_resamples needs y_true or n")
        yt = np.zeros((n, 0))
    else:
        yt = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
        n = len(yt)
    if n < 1:
        raise ValueError("cannot bootstrap an empty set of records")
    rng = np.random.default_rng(seed)
    pos = yt.sum(0)
    guarded = (pos > 0) & (pos < n)
    yg = yt[:, guarded]
    max_draws = 100 * n_resamples if max_draws is None else max_draws
    kept, drawn, redrawn = [], 0, 0
    while (have := sum(len(k) for k in kept)) < n_resamples and drawn < max_draws:
        m = min(max(2 * (n_resamples - have), 16), max_draws - drawn, max(1, _CHUNK // n))
        idx = rng.integers(0, n, size=(m, n))
        drawn += m
        if yg.shape[1]:
            counts = resample_counts(idx, n) @ yg
            ok = ((counts > 0) & (counts < n)).all(axis=1)
            redrawn += int((~ok).sum())
            idx = idx[ok]
        kept.append(idx[: n_resamples - have])
    have = sum(len(k) for k in kept)
    unguarded = n_resamples - have
    if unguarded:
        kept.append(rng.integers(0, n, size=(unguarded, n)))
    return Resamples(np.concatenate(kept), guarded, redrawn, unguarded)


def resample_counts(indices, n: int) -> np.ndarray:
    """How often each record appears in each resample: `(B, n)` float64, a `sample_weight` for metrics."""
    idx = np.asarray(indices)
    b = len(idx)
    flat = (idx + np.arange(b)[:, None] * n).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def weight_blocks(resamples: Resamples, n: int, elements: int = _CHUNK):
    """The resamples as `sample_weight` blocks `(b, n)` of at most `elements` entries, in order, so a
    metric that takes `(B, n)` weights scores many resamples in one vectorised pass, in bounded memory."""
    step = max(1, elements // n)
    for start in range(0, len(resamples.indices), step):
        yield resample_counts(resamples.indices[start : start + step], n)


def percentile_interval(samples, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The central `confidence` percentile interval along axis 0, ignoring NaNs (NaN if all are)."""
    samples = np.asarray(samples, dtype=np.float64)
    alpha = (1 - confidence) / 2 * 100
    out = np.full((2,) + samples.shape[1:], np.nan)
    valid = ~np.isnan(samples).all(axis=0)
    if valid.any():
        out[:, valid] = np.nanpercentile(samples[:, valid], [alpha, 100 - alpha], axis=0)
    lo, hi = out
    return (float(lo), float(hi)) if lo.ndim == 0 else (lo, hi)


def bootstrap_ci(
    metric: Callable[..., float],
    y_true,
    *arrays,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    **kwargs,
) -> tuple[float, float, float]:
    """`metric(y_true, *arrays, **kwargs)` and its bootstrap percentile interval: (value, lo, hi).

    Works for any metric by calling it once per resample; `evaluate` and `paired` instead score
    blocks of resamples at once through `sample_weight` (`weight_blocks`).
    """
    y_true = np.asarray(y_true)
    arrays = [np.asarray(a) for a in arrays]
    resamples = draw_resamples(y_true, n_resamples=n_resamples, seed=seed)
    values = np.array([metric(y_true[i], *(a[i] for a in arrays), **kwargs) for i in resamples.indices])
    lo, hi = percentile_interval(values, confidence=confidence)
    return float(metric(y_true, *arrays, **kwargs)), lo, hi
