"""Label tasks: pure functions from a records table's raw labels to a class matrix."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Task:
    """A classification task over one dataset's raw labels.

    `to_classes` maps the raw labels of one record to the names of its classes (possibly none,
    in which case the record has no statement of the task and is left out of it).
    """

    name: str
    classes: tuple[str, ...]
    multilabel: bool
    to_classes: Callable[[object], Iterable[str]]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def label_matrix(raw_labels: Iterable[object], task: Task) -> np.ndarray:
    """Multi-hot float32 matrix (records, classes); a row of zeros means no class of the task."""
    index = {c: i for i, c in enumerate(task.classes)}
    rows = list(raw_labels)
    y = np.zeros((len(rows), len(task.classes)), dtype=np.float32)
    for r, raw in enumerate(rows):
        for c in task.to_classes(raw):
            y[r, index[c]] = 1.0
    return y


def task_records(records: pd.DataFrame, task: Task) -> tuple[pd.DataFrame, np.ndarray]:
    """The records with at least one class of `task`, and their label matrix."""
    y = label_matrix(records["labels"], task)
    keep = y.any(axis=1)
    return records[keep], y[keep]
