"""Evaluation: metrics, thresholds, bootstrap intervals and the report of a training run.

Importing this package loads numpy only; matplotlib is imported when a report is drawn.
"""

from ecglab.evaluate.bootstrap import bootstrap_ci, draw_resamples, percentile_interval, resample_counts
from ecglab.evaluate.evaluate import evaluate_run
from ecglab.evaluate.metrics import (
    accuracy_score,
    average_precision_score,
    challenge_score,
    challenge_weights,
    cinc2017_score,
    confusion_matrix,
    f1_score,
    label_accuracy_score,
    multilabel_confusion_matrix,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc,
    roc_auc_score,
    roc_curve,
)
from ecglab.evaluate.thresholds import (
    apply_thresholds,
    argmax_predictions,
    best_f1_threshold,
    tune_thresholds,
)

__all__ = [
    "accuracy_score",
    "apply_thresholds",
    "argmax_predictions",
    "average_precision_score",
    "best_f1_threshold",
    "bootstrap_ci",
    "challenge_score",
    "challenge_weights",
    "cinc2017_score",
    "confusion_matrix",
    "draw_resamples",
    "evaluate_run",
    "f1_score",
    "label_accuracy_score",
    "multilabel_confusion_matrix",
    "percentile_interval",
    "precision_recall_curve",
    "precision_score",
    "recall_score",
    "resample_counts",
    "roc_auc",
    "roc_auc_score",
    "roc_curve",
    "tune_thresholds",
]
