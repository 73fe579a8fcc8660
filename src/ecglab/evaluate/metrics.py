"""Classification metrics: pure numpy functions in scikit-learn's shape.

`y_true` is an `(n,)` binary vector or an `(n, K)` indicator matrix (multi-hot for multi-label
tasks, one-hot for multi-class ones); `y_pred` has the same shape and `y_score` holds the
probabilities. A binary vector gives a float; a matrix gives one value per class with
`average=None`, else their average.

`sample_weight` is `(n,)` as in scikit-learn, or `(B, n)`: B weightings at once, giving results
with a leading axis of B. A bootstrap resample is a vector of record counts, so this is how
1000 resamples are scored in one vectorised pass.

Undefined values are NaN rather than errors: the AUC and average precision of a class with no
positive (or, for AUC, no negative) are NaN, and averages skip NaNs.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

AVERAGES = (None, "macro", "micro", "weighted")


def _indicator(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise ValueError(f"{name}: expected shape (n,) or (n, classes), got {y.shape}")
    return y.reshape(len(y), -1)


def _prepare(y_true, y_other, sample_weight, other_name: str):
    """Validated float64 (n, K) matrices, (…, n) weights, and whether the input was a vector."""
    binary = np.ndim(y_true) == 1
    yt = _indicator(y_true, "y_true").astype(np.float64)
    yo = _indicator(y_other, other_name).astype(np.float64)
    if yt.shape != yo.shape:
        raise ValueError(f"y_true has shape {np.shape(y_true)} but {other_name} has {np.shape(y_other)}")
    if not np.isin(yt, (0.0, 1.0)).all():
        raise ValueError("y_true: expected 0/1 labels (a binary vector or an indicator matrix)")
    if not np.isfinite(yo).all():
        raise ValueError(f"{other_name}: contains NaN or infinite values")
    n = len(yt)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w.ndim not in (1, 2) or w.shape[-1] != n:
        raise ValueError(f"sample_weight: expected shape ({n},) or (B, {n}), got {w.shape}")
    return yt, yo, w, binary


def _divide(num, den, zero_division: float) -> np.ndarray:
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    out = np.full(num.shape, float(zero_division))
    np.divide(num, den, out=out, where=den != 0)
    return out


def _scalar(x):
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


def _finish(per_class: np.ndarray, support: np.ndarray, average, binary: bool):
    """Collapse the class axis: the lone class of a vector input, or the requested average."""
    if binary:
        return _scalar(per_class[..., 0])
    if average is None:
        return per_class
    valid = ~np.isnan(per_class)
    if average == "macro":
        total, count = np.where(valid, per_class, 0.0).sum(-1), valid.sum(-1)
    elif average == "weighted":
        total = np.where(valid, per_class * support, 0.0).sum(-1)
        count = np.where(valid, support, 0.0).sum(-1)
    else:
        raise ValueError(f"average={average!r}; expected one of {AVERAGES}")
    return _scalar(_divide(total, count, np.nan))


def _check_average(average) -> None:
    if average not in AVERAGES:
        raise ValueError(f"average={average!r}; expected one of {AVERAGES}")


def _counts(y_true, y_pred, sample_weight):
    yt, yp, w, binary = _prepare(y_true, y_pred, sample_weight, "y_pred")
    if not np.isin(yp, (0.0, 1.0)).all():
        raise ValueError("y_pred: expected 0/1 decisions; threshold the scores first")
    return w @ (yt * yp), w @ yt, w @ yp, binary


def _prf(y_true, y_pred, *, average, sample_weight, zero_division, which: str):
    _check_average(average)
    tp, pos, pred, binary = _counts(y_true, y_pred, sample_weight)
    if average == "micro" and not binary:
        tp, pos, pred = tp.sum(-1, keepdims=True), pos.sum(-1, keepdims=True), pred.sum(-1, keepdims=True)
        binary = True
    if which == "precision":
        value = _divide(tp, pred, zero_division)
    elif which == "recall":
        value = _divide(tp, pos, zero_division)
    else:
        value = _divide(2 * tp, pos + pred, zero_division)
    return _finish(value, pos, average, binary)


def precision_score(y_true, y_pred, *, average="macro", sample_weight=None, zero_division=0.0):
    """Precision TP / (TP + FP) per class, or averaged; `zero_division` when nothing is predicted."""
    return _prf(
        y_true,
        y_pred,
        average=average,
        sample_weight=sample_weight,
        zero_division=zero_division,
        which="precision",
    )


def recall_score(y_true, y_pred, *, average="macro", sample_weight=None, zero_division=0.0):
    """Recall (sensitivity) TP / (TP + FN); `zero_division` for a class with no positive."""
    return _prf(
        y_true,
        y_pred,
        average=average,
        sample_weight=sample_weight,
        zero_division=zero_division,
        which="recall",
    )


def f1_score(y_true, y_pred, *, average="macro", sample_weight=None, zero_division=0.0):
    """F1 = 2 TP / (2 TP + FP + FN); `zero_division` for a class neither present nor predicted."""
    return _prf(
        y_true, y_pred, average=average, sample_weight=sample_weight, zero_division=zero_division, which="f1"
    )


def accuracy_score(y_true, y_pred, *, sample_weight=None):
    """Exact-match accuracy: the share of records whose every label is right.

    For one-hot multi-class decisions this is top-1 accuracy; for multi-label ones it is
    scikit-learn's subset accuracy.
    """
    yt, yp, w, _ = _prepare(y_true, y_pred, sample_weight, "y_pred")
    match = (yt == yp).all(axis=1).astype(np.float64)
    return _scalar(_divide(w @ match, w.sum(-1), np.nan))


def label_accuracy_score(y_true, y_pred, *, average="macro", sample_weight=None):
    """Per-label accuracy: the share of records on which each class's decision is right.

    The macro average over classes is 1 - Hamming loss.
    """
    _check_average(average)
    yt, yp, w, binary = _prepare(y_true, y_pred, sample_weight, "y_pred")
    value = _divide(w @ (yt == yp).astype(np.float64), w.sum(-1)[..., None], np.nan)
    if average == "micro":
        average = "macro"  # every class is scored on the same records, so micro equals macro
    return _finish(value, w @ yt, average, binary)


def _ranking(yt: np.ndarray, ys: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC and average precision per class: (…, K) each, NaN where undefined.

    Per class, the cumulative weights of the negatives and of the positives in score order,
    read at each positive's score: a positive beats the negatives below it and ties half of
    those level with it (Mann-Whitney), and tied scores form one precision-recall step, as in
    scikit-learn. Weights are laid out (n, B) so the sums run over contiguous rows.
    """
    batch = w.shape[:-1]
    wt = np.ascontiguousarray(w.reshape(-1, w.shape[-1]).T)
    auc, ap = np.full((yt.shape[1], wt.shape[1]), np.nan), np.full((yt.shape[1], wt.shape[1]), np.nan)
    zero = np.zeros((1, wt.shape[1]))
    for k in range(yt.shape[1]):
        is_pos = yt[:, k] > 0
        s_pos, s_neg = np.sort(ys[is_pos, k]), np.sort(ys[~is_pos, k])
        w_pos = wt[is_pos][np.argsort(ys[is_pos, k], kind="stable")]
        c_pos = np.concatenate([zero, np.cumsum(w_pos, axis=0)])
        c_neg = np.concatenate(
            [zero, np.cumsum(wt[~is_pos][np.argsort(ys[~is_pos, k], kind="stable")], axis=0)]
        )
        n_pos, n_neg = c_pos[-1], c_neg[-1]
        neg_below, neg_upto = (
            c_neg[np.searchsorted(s_neg, s_pos, "left")],
            c_neg[np.searchsorted(s_neg, s_pos, "right")],
        )
        auc[k] = _divide((w_pos * (neg_below + neg_upto)).sum(0) / 2, n_pos * n_neg, np.nan)
        tp = n_pos - c_pos[np.searchsorted(s_pos, s_pos, "left")]  # positives scoring at least this one
        ap[k] = _divide((w_pos * _divide(tp, tp + n_neg - neg_below, 0.0)).sum(0), n_pos, np.nan)
    return auc.T.reshape(batch + (-1,)), ap.T.reshape(batch + (-1,))


def ranking_scores(y_true, y_score, *, sample_weight=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-class ROC AUC and average precision from one sort per class: what `evaluate` bootstraps."""
    yt, ys, w, _ = _prepare(y_true, y_score, sample_weight, "y_score")
    return _ranking(yt, ys, w)


def _ranking_score(y_true, y_score, average, sample_weight, which: int):
    _check_average(average)
    yt, ys, w, binary = _prepare(y_true, y_score, sample_weight, "y_score")
    if average == "micro" and not binary:
        k = yt.shape[1]
        yt, ys, w, binary = yt.reshape(-1, 1), ys.reshape(-1, 1), np.repeat(w, k, axis=-1), True
    value = _ranking(yt, ys, w)[which]
    return _finish(value, w @ yt, average, binary)


def roc_auc_score(y_true, y_score, *, average="macro", sample_weight=None):
    """Area under the ROC curve, one-vs-rest per class, from the Mann-Whitney statistic.

    A class without both positives and negatives gets NaN, and the averages skip it
    (scikit-learn raises instead).
    """
    return _ranking_score(y_true, y_score, average, sample_weight, 0)


roc_auc = roc_auc_score  # the name STYLE.md uses


def average_precision_score(y_true, y_score, *, average="macro", sample_weight=None):
    """Average precision: the step-wise area under the precision-recall curve, as scikit-learn's."""
    return _ranking_score(y_true, y_score, average, sample_weight, 1)


def _binary_curve(y_true, y_score, sample_weight):
    yt, ys, w, binary = _prepare(y_true, y_score, sample_weight, "y_score")
    if not binary or w.ndim != 1:
        raise ValueError("curves take one class: y_true and y_score of shape (n,), sample_weight (n,)")
    order = np.argsort(-ys[:, 0], kind="stable")
    s, y, w = ys[order, 0], yt[order, 0], w[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # the last index of each tie group
    tps, fps = np.cumsum(w * y)[last], np.cumsum(w * (1 - y))[last]
    return fps, tps, s[last]


def roc_curve(y_true, y_score, *, sample_weight=None):
    """False and true positive rates at every distinct threshold, highest first, from (0, 0).

    `thresholds[0]` is inf (nothing predicted positive); decisions are `y_score >= threshold`.
    """
    fps, tps, thresholds = _binary_curve(y_true, y_score, sample_weight)
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return _divide(fps, fps[-1], np.nan), _divide(tps, tps[-1], np.nan), np.r_[np.inf, thresholds]


def precision_recall_curve(y_true, y_score, *, sample_weight=None):
    """Precision and recall at every distinct threshold, in scikit-learn's order.

    Thresholds rise; precision and recall end with the (recall 0, precision 1) point.
    """
    fps, tps, thresholds = _binary_curve(y_true, y_score, sample_weight)
    precision = _divide(tps, tps + fps, 0.0)
    recall = _divide(tps, tps[-1], np.nan)
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def _class_index(y) -> tuple[np.ndarray, int | None]:
    y = np.asarray(y)
    if y.ndim == 2:
        return y.argmax(axis=1), y.shape[1]
    return y.astype(np.int64), None


def confusion_matrix(y_true, y_pred, *, num_classes: int | None = None) -> np.ndarray:
    """Multi-class confusion counts: rows are true classes, columns predicted ones.

    Takes class indices `(n,)` or one-hot / probability matrices `(n, K)` (their argmax).
    """
    t, kt = _class_index(y_true)
    p, kp = _class_index(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.shape[0]} records but y_pred has {p.shape[0]}")
    k = num_classes or kt or kp or int(max(t.max(initial=-1), p.max(initial=-1)) + 1)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def multilabel_confusion_matrix(y_true, y_pred) -> np.ndarray:
    """Per-class 2x2 counts `(K, 2, 2)`, `[[TN, FP], [FN, TP]]`, as scikit-learn lays them out."""
    tp, pos, pred, _ = _counts(y_true, y_pred, None)
    tn = len(np.asarray(y_true)) - pos - pred + tp
    return np.stack([tn, pred - tp, pos - tp, tp], axis=-1).reshape(-1, 2, 2).round().astype(np.int64)


CINC2017_SCORED = ("N", "A", "O")


def cinc2017_score(y_true, y_pred, *, classes: Sequence[str], sample_weight=None):
    """The PhysioNet/CinC 2017 score: the mean F1 of the normal (N), AF (A) and other (O) classes.

    The noisy class (~) is classified but not scored, as in the challenge.
    """
    missing = [c for c in CINC2017_SCORED if c not in classes]
    if missing:
        raise ValueError(
            f"cinc2017_score needs classes N, A and O; {', '.join(missing)} missing from {list(classes)}"
        )
    f1 = f1_score(y_true, y_pred, average=None, sample_weight=sample_weight)
    cols = [list(classes).index(c) for c in CINC2017_SCORED]
    return _scalar(f1[..., cols].mean(-1))


def _challenge_terms(y_true, y_pred, weights, normal_index: int):
    """Per-record credits `(n,)` of the observed, the correct-label and the normal-only outputs."""
    yt = _indicator(y_true, "y_true").astype(np.float64)
    yp = _indicator(y_pred, "y_pred").astype(np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    k = yt.shape[1]
    if yp.shape != yt.shape or weights.shape != (k, k):
        raise ValueError(f"y_true {yt.shape}, y_pred {yp.shape} and weights {weights.shape} do not agree")
    if not 0 <= normal_index < k:
        raise ValueError(f"normal_index={normal_index} is outside the {k} classes")
    inactive = np.zeros_like(yt)
    inactive[:, normal_index] = 1.0

    def credit(outputs):
        # each record's credit is shared among the classes in its labels or its outputs
        share = np.maximum(np.maximum(yt, outputs).sum(1), 1.0)
        return ((yt @ weights) * outputs).sum(1) / share

    return credit(yp), credit(yt), credit(inactive)


def challenge_score(y_true, y_pred, *, weights, normal_index: int, sample_weight=None):
    """The PhysioNet/CinC Challenge 2020 (and 2021) normalised score of multi-label decisions.

    `weights[i, j]` is the credit for output j on a record labelled i. The observed score is
    rescaled so that the correct labels score 1 and a classifier that outputs only the normal
    class (`normal_index`) scores 0; identical correct and normal-only scores give 0.
    """
    observed, correct, inactive = _challenge_terms(y_true, y_pred, weights, normal_index)
    n = len(observed)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w.shape[-1] != n:
        raise ValueError(f"sample_weight: expected shape ({n},) or (B, {n}), got {w.shape}")
    gain, best = w @ (observed - inactive), w @ (correct - inactive)
    return _scalar(_divide(gain, best, 0.0))


def challenge_weights(
    path: str | Path, classes: Sequence[str], *, aliases: Mapping[str, Sequence[str]] | None = None
) -> np.ndarray:
    """The `(K, K)` weights matrix of a challenge `weights.csv`, in the order of `classes`.

    The table's header names classes by SNOMED-CT code or abbreviation, a merged pair as
    "a|b". A class matches a column by its name, the parts of a "a|b" name, or `aliases[class]`
    (its codes, say). When several columns match, as 2020's table gives both codes of a pair
    that the challenge scores as one class, the first is used, as the challenge's code does.
    """
    path = Path(path)
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if len(rows) < 2:
        raise ValueError(f"{path}: expected a header of class names and one row per class")
    header = [set(cell.strip().split("|")) for cell in rows[0][1:]]
    table = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    if table.shape != (len(header), len(header)):
        raise ValueError(f"{path}: expected a square table, got {table.shape} for {len(header)} columns")
    columns = []
    for cls in classes:
        names = {cls, *cls.split("|"), *(aliases or {}).get(cls, ())}
        hits = [j for j, cell in enumerate(header) if cell & names]
        if not hits:
            raise ValueError(f"{path}: no column for class {cls!r}; pass aliases={{{cls!r}: [codes]}}")
        columns.append(hits[0])
    return table[np.ix_(columns, columns)]
