"""Fixed 10-fold splits for datasets that publish none.

The folds are computed once by iterative stratification (Sechidis et al., 2011) with a fixed
seed and shipped as `folds/<dataset>.csv`, so every run and every user gets the same split.
Regenerate with `python -m ecglab.data.folds` (it prints what changed).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np
import pandas as pd

N_FOLDS = 10
SEED = 2018


def stratified_folds(y: np.ndarray, n_folds: int = N_FOLDS, seed: int = SEED) -> np.ndarray:
    """Fold numbers 1..n_folds for the rows of a multi-hot matrix, every class spread evenly.

    Iterative stratification: the rarest remaining class is placed first, each of its records
    into the fold that still wants most of that class; ties go to the fold that wants most
    records, then at random. Multi-class labels are the one-hot special case.
    """
    y = np.asarray(y, dtype=bool)
    n = len(y)
    rng = np.random.default_rng(seed)
    want = np.full(n_folds, n / n_folds)
    want_class = np.outer(np.full(n_folds, 1.0 / n_folds), y.sum(axis=0))
    folds = np.zeros(n, dtype=np.int64)
    free = np.ones(n, dtype=bool)
    shuffled = rng.permutation(n)
    while free.any():
        remaining = y[free].sum(axis=0)
        if remaining.any():
            label = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))
            rows = shuffled[free[shuffled] & y[shuffled, label]]
        else:
            label, rows = None, shuffled[free[shuffled]]
        for r in rows:
            score = want_class[:, label] if label is not None else want
            best = np.flatnonzero(score == score.max())
            if len(best) > 1:
                best = best[want[best] == want[best].max()]
            f = int(rng.choice(best))
            folds[r] = f + 1
            want[f] -= 1
            want_class[f] -= y[r]
            free[r] = False
    return folds


def load_fold_file(dataset: str) -> pd.Series:
    """The shipped folds of `dataset`: a Series record_id -> fold."""
    path = resources.files("ecglab.data") / "folds" / f"{dataset}.csv"
    with path.open() as f:
        table = pd.read_csv(f, dtype={"record_id": str, "fold": int})
    return table.set_index("record_id")["fold"]


def assign_folds(dataset: str, record_ids: Sequence[str], y: np.ndarray) -> np.ndarray:
    """Folds from the shipped file; records it doesn't know get stratified folds of their own.

    The second case covers releases with records the fold file predates (a full download with
    extra records); they are split among themselves with the same seed, so still reproducibly.
    """
    shipped = load_fold_file(dataset)
    # A writable copy: under pandas copy-on-write `to_numpy()` may return a read-only view.
    folds = shipped.reindex(list(record_ids)).to_numpy(dtype=np.float64, copy=True)
    unknown = np.isnan(folds)
    if unknown.any():
        folds[unknown] = stratified_folds(y[unknown])
    return folds.astype(np.int64)


def write_fold_file(dataset: str, record_ids: Sequence[str], y: np.ndarray) -> pd.DataFrame:
    """Compute the folds of `dataset` and write them into the package's folds/ folder."""
    table = pd.DataFrame({"record_id": list(record_ids), "fold": stratified_folds(y)})
    path = resources.files("ecglab.data") / "folds" / f"{dataset}.csv"
    table.to_csv(str(path), index=False)
    return table


if __name__ == "__main__":
    # Regenerate every shipped fold file from the label tables under the data root.
    import importlib

    for dataset in ("cpsc2018", "chapman", "cinc2017"):
        before = load_fold_file(dataset)
        after = (
            importlib.import_module(f"ecglab.data.{dataset}")
            .regenerate_folds()
            .set_index("record_id")["fold"]
        )
        changed = int((before.reindex(after.index) != after).sum())
        print(f"{dataset}: {len(after)} records, {changed} fold(s) changed")
