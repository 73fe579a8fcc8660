"""Decision thresholds for multi-label probabilities, tuned to maximise F1.

Tune on the validation fold only; the test fold then measures them. A record is positive for
a class when its score is at least the class's threshold. The chosen threshold lies halfway
between the lowest score kept positive and the next lower score, so it gives the same
decisions on the tuning data as the best cut while leaving a margin on both sides.
"""

from __future__ import annotations

import numpy as np

METHODS = ("per_class", "global")


def _check(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    yt = np.asarray(y_true, dtype=np.float64)
    ys = np.asarray(y_score, dtype=np.float64)
    if yt.ndim == 1:
        yt, ys = yt[:, None], ys.reshape(len(ys), -1)
    if yt.shape != ys.shape or yt.ndim != 2:
        raise ValueError(
            f"y_true {np.shape(y_true)} and y_score {np.shape(y_score)} must both be (n, classes)"
        )
    if not np.isfinite(ys).all():
        raise ValueError("y_score: contains NaN or infinite values")
    return yt, ys


def _midpoint(cuts: np.ndarray, i: int) -> float:
    """Halfway between descending cut `i` and the next one, or cut `i` itself when it is the last."""
    return float(cuts[i]) if i + 1 == len(cuts) else float((cuts[i] + cuts[i + 1]) / 2)


def best_f1_threshold(y_true, y_score) -> tuple[float, float]:
    """The threshold that maximises one class's F1, and that F1.

    Ties go to the highest threshold (the fewest positive decisions). A class without positives
    has no F1 to maximise: its result is (nan, nan).
    """
    yt, ys = _check(y_true, y_score)
    y, s = yt[:, 0], ys[:, 0]
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan"), float("nan")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]
    tp, predicted = np.cumsum(y)[last], last + 1.0
    f1 = 2 * tp / (n_pos + predicted)
    best = int(np.argmax(f1))
    return _midpoint(s[last], best), float(f1[best])


def _global_threshold(yt: np.ndarray, ys: np.ndarray) -> float:
    """One threshold for all classes with positives, maximising their macro F1."""
    scored = np.flatnonzero(yt.sum(0) > 0)
    if len(scored) == 0:
        return float("nan")
    cuts = np.unique(ys[:, scored])[::-1]
    n = len(yt)
    f1 = np.zeros(len(cuts))
    for k in scored:
        order = np.argsort(ys[:, k], kind="stable")
        s, below_pos = ys[order, k], np.r_[0.0, np.cumsum(yt[order, k])]
        below = np.searchsorted(s, cuts, side="left")  # records scoring under each cut
        n_pos = below_pos[-1]
        f1 += 2 * (n_pos - below_pos[below]) / (n_pos + n - below)
    return _midpoint(cuts, int(np.argmax(f1)))


def tune_thresholds(y_true, y_score, *, method: str = "per_class", default: float = 0.5) -> np.ndarray:
    """Thresholds `(K,)` maximising F1 on `(y_true, y_score)`: per class, or one shared by all.

    "per_class" maximises each class's F1; "global" picks one threshold maximising the macro
    F1. A class with no positive gets `default`, and "global" leaves it out of the macro.
    """
    if method not in METHODS:
        raise ValueError(f"threshold method {method!r}; expected one of {METHODS}")
    yt, ys = _check(y_true, y_score)
    if method == "global":
        t = _global_threshold(yt, ys)
        return np.full(yt.shape[1], default if np.isnan(t) else t)
    t = np.array([best_f1_threshold(yt[:, k], ys[:, k])[0] for k in range(yt.shape[1])])
    return np.where(np.isnan(t), default, t)


def apply_thresholds(y_score, thresholds) -> np.ndarray:
    """0/1 decisions `(n, K)`: `y_score >= thresholds`, one threshold per column (or one for all)."""
    ys = np.asarray(y_score)
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), ys.shape[-1:])
    return (ys >= t).astype(np.int8)


def argmax_predictions(y_score) -> np.ndarray:
    """One-hot decisions `(n, K)` of the highest score per record: multi-class tasks."""
    ys = np.asarray(y_score)
    out = np.zeros(ys.shape, dtype=np.int8)
    out[np.arange(len(ys)), ys.argmax(axis=1)] = 1
    return out
