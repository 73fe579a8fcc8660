"""Per-split summary of a dataset's label table: what `ecglab data info` shows."""

from __future__ import annotations

import numpy as np

from ecglab.data.base import SPLITS, Reader, split_of
from ecglab.data.labels import task_records


def summarize(reader: Reader, task: str | None = None, val_fold: int = 9, test_fold: int = 10) -> dict:
    """Records, folds, signal availability and per-class counts per split, over the label table.

    Only the records with at least one class of the task count; `with_signal` says how many of
    them have their signal file present.
    """
    t = reader.task(task)
    records, y = task_records(reader.records, t)
    split = split_of(records["fold"], val_fold, test_fold)
    has_signal = (records["path"] != "").to_numpy()
    splits = {}
    for s in SPLITS:
        mask = split == s
        splits[s] = {
            "records": int(mask.sum()),
            "with_signal": int((mask & has_signal).sum()),
            "folds": sorted(int(f) for f in np.unique(records["fold"][mask])),
            "counts": [int(c) for c in y[mask].sum(axis=0)],
        }
    return {
        "dataset": reader.name,
        "task": t.name,
        "classes": list(t.classes),
        "multilabel": t.multilabel,
        "root": str(reader.root),
        "skipped": int(len(reader.skipped)),
        "splits": splits,
    }
