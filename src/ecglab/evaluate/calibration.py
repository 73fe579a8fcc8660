"""Calibrating probabilities: temperature scaling, the expected calibration error, a reliability diagram.

Temperature scaling (Guo et al., 2017) divides every logit by one number T > 0 fitted on the
validation fold: T > 1 softens over-confident probabilities, and the ranking of records (AUC) and
the argmax are unchanged. T is fitted on the record-level probabilities `predict` reports (the
windows' sigmoid or softmax at T, averaged or max-ed per record), by minimising their negative
log-likelihood (binary cross-entropy per class for multi-label, cross-entropy for one-of-K) over
log T; with one window per record that is exactly BCE-with-logits or cross-entropy on z / T.

The expected calibration error (ECE) uses `n_bins` equal-width bins of [0, 1], bin b holding the
probabilities in (b/M, (b+1)/M] (0 in the first): ECE = sum_b (n_b / N) |mean outcome_b - mean p_b|.
For multi-label tasks the N items are every record x class probability, the outcome whether that
class is present; for one-of-K tasks they are the records' top-class confidences, the outcome
whether the top class is the true one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_BINS = 15
LOG_T_BOUNDS = (np.log(0.05), np.log(20.0))
_EPS = 1e-7


def window_probabilities(logits: np.ndarray, multilabel: bool, temperature: float = 1.0) -> np.ndarray:
    """Sigmoid (multi-label) or softmax (one-of-K) of `logits / temperature`, float64."""
    from scipy.special import expit, softmax

    z = np.asarray(logits, dtype=np.float64) / temperature
    return expit(z) if multilabel else softmax(z, axis=1)


def record_probabilities(
    logits: np.ndarray, owner: np.ndarray, n_records: int, multilabel: bool, aggregate: str = "mean",
    temperature: float = 1.0,
) -> np.ndarray:  # fmt: skip
    """Window logits -> per-record probabilities (`owner[i]` is window i's record), as training evaluates."""
    probs = window_probabilities(logits, multilabel, temperature)
    out = np.zeros((n_records, probs.shape[1]))
    if aggregate == "max":
        np.maximum.at(out, owner, probs)
        return out
    np.add.at(out, owner, probs)
    return out / np.maximum(np.bincount(owner, minlength=n_records), 1)[:, None]


def negative_log_likelihood(probs: np.ndarray, y_true: np.ndarray, multilabel: bool) -> float:
    """Mean BCE per record x class (multi-label) or mean cross-entropy per record (one-of-K)."""
    p = np.clip(probs, _EPS, 1 - _EPS)
    y = np.asarray(y_true, dtype=np.float64)
    if multilabel:
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    return float(-(y * np.log(p)).sum(axis=1).mean())


def fit_temperature(
    logits: np.ndarray, y_true: np.ndarray, multilabel: bool, owner: np.ndarray | None = None,
    aggregate: str = "mean",
) -> float:  # fmt: skip
    """The T in [0.05, 20] minimising the NLL of the record probabilities (`owner`: None, a window per record)."""
    from scipy.optimize import minimize_scalar

    y_true = np.asarray(y_true)
    owner = np.arange(len(logits)) if owner is None else np.asarray(owner)

    def loss(log_t: float) -> float:
        probs = record_probabilities(logits, owner, len(y_true), multilabel, aggregate, float(np.exp(log_t)))
        return negative_log_likelihood(probs, y_true, multilabel)

    best = minimize_scalar(loss, bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-5})
    return float(np.exp(best.x))


def calibration_items(
    y_true: np.ndarray, probs: np.ndarray, multilabel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, outcomes) that the ECE bins: every record x class, or each record's top class."""
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if multilabel:
        return probs.ravel(), y_true.ravel().astype(np.float64)
    top = probs.argmax(axis=1)
    return probs.max(axis=1), (y_true.argmax(axis=1) == top).astype(np.float64)


def reliability_bins(
    y_true: np.ndarray, probs: np.ndarray, multilabel: bool, n_bins: int = N_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin: mean probability, mean outcome (NaN where empty) and item count."""
    p, outcome = calibration_items(y_true, probs, multilabel)
    index = np.clip(np.ceil(p * n_bins).astype(int) - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        confidence = np.bincount(index, weights=p, minlength=n_bins) / counts
        observed = np.bincount(index, weights=outcome, minlength=n_bins) / counts
    return confidence, observed, counts


def expected_calibration_error(
    y_true: np.ndarray, probs: np.ndarray, multilabel: bool, n_bins: int = N_BINS
) -> float:
    """ECE over equal-width bins (the module's docstring defines the items for each kind of task)."""
    confidence, observed, counts = reliability_bins(y_true, probs, multilabel, n_bins)
    full = counts > 0
    return float((counts[full] * np.abs(observed[full] - confidence[full])).sum() / counts.sum())


def reliability_diagram(
    path: str | Path, y_true: np.ndarray, curves: dict[str, np.ndarray], multilabel: bool, title: str,
    n_bins: int = N_BINS,
) -> Path:  # fmt: skip
    """A PNG of observed frequency against mean probability per bin, one line per `curves` entry
    (e.g. {"before": probs, "after": probs}), each labelled with its ECE; written atomically."""
    from matplotlib.figure import Figure

    from ecglab.atomic import atomic_path

    figure = Figure(figsize=(5, 5), dpi=120)
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    for label, probs in curves.items():
        confidence, observed, counts = reliability_bins(y_true, probs, multilabel, n_bins)
        full = counts > 0
        ece = expected_calibration_error(y_true, probs, multilabel, n_bins)
        ax.plot(confidence[full], observed[full], marker="o", label=f"{label} (ECE {ece:.3f})")
    kind = "probability (every record x class)" if multilabel else "top-class confidence"
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"mean predicted {kind}",
           ylabel="observed frequency" if multilabel else "accuracy", title=title)  # fmt: skip
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, unique=True) as tmp:
        figure.savefig(tmp)
    return path
