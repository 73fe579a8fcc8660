"""Training on a fraction of the labels: a seeded, patient-wise subset of the training records.

The rule (`label_subset`): patients are shuffled with the seed and walked in that order; a
patient's records are all taken while the subset holds fewer than round(fraction x N) records,
or when the patient has a class that still has fewer than max(1, round(fraction x its count))
positives in the subset. So every class with a positive in the training folds keeps at least
one, rare classes keep about their share, and the subset may exceed fraction x N by the records
taken for rare classes. A record without a patient id is a patient of its own. The validation
and test folds are never touched: this runs on the training split alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LabelSubset:
    """Which training records a fraction keeps, and what to say about them."""

    positions: np.ndarray  # sorted positions among the training records given
    fraction: float
    total: int  # training records before the subset
    patients: int  # patients in the subset
    missing: tuple[str, ...]  # classes with no positive in the subset

    def describe(self, classes: Sequence[str] | None = None) -> str:
        text = (
            f"label_fraction {self.fraction:g}: {len(self.positions)} of {self.total} training records "
            f"({self.patients} patients)"
        )
        if self.missing:
            text += f"; no positive of {', '.join(self.missing)} in them (nor in the training folds)"
        return text


def label_subset(
    y: np.ndarray, patient_ids: Sequence, fraction: float, seed: int, classes: Sequence[str] | None = None
) -> LabelSubset:
    """The records (rows of `y`, a (records, classes) 0/1 matrix) that `fraction` keeps; see the module."""
    if not 0 < fraction <= 1:
        raise ValueError(f"label_fraction: {fraction} must lie in (0, 1]")
    classes = list(classes) if classes is not None else [str(c) for c in range(y.shape[1])]
    groups = _patient_groups(patient_ids)
    y = np.asarray(y) > 0
    if fraction == 1:
        chosen = np.arange(len(y))
    else:
        chosen = _walk(y, groups, fraction, np.random.default_rng(seed))
    missing = tuple(c for c, n in zip(classes, y[chosen].sum(axis=0), strict=True) if n == 0)
    return LabelSubset(chosen, fraction, len(y), len(np.unique(groups[chosen])), missing)


def _walk(y: np.ndarray, groups: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Take patients in a seeded order until the total and every class's share are reached."""
    target_total = round(fraction * len(y))
    target_class = np.where(y.sum(axis=0) > 0, np.maximum(1, np.round(fraction * y.sum(axis=0))), 0)
    have_total, have_class, taken = 0, np.zeros(y.shape[1]), []
    order = rng.permutation(np.unique(groups))
    members = pd.Series(np.arange(len(groups))).groupby(groups).apply(np.asarray)
    for patient in order:
        rows = members[patient]
        wanted = (y[rows].any(axis=0) & (have_class < target_class)).any()
        if have_total < target_total or wanted:
            taken.append(rows)
            have_total += len(rows)
            have_class += y[rows].sum(axis=0)
        elif (have_class >= target_class).all():
            break
    return np.sort(np.concatenate(taken)) if taken else np.zeros(0, dtype=np.int64)


def _patient_groups(patient_ids: Sequence) -> np.ndarray:
    """One integer per record: its patient's, or a group of its own where the id is unknown."""
    ids = pd.Series(list(patient_ids), dtype=object)
    known = ids.notna() & (ids.astype(str) != "")
    groups = np.empty(len(ids), dtype=np.int64)
    codes, _ = pd.factorize(ids[known].astype(str))
    groups[known.to_numpy()] = codes
    groups[~known.to_numpy()] = codes.max(initial=-1) + 1 + np.arange((~known).sum())
    return groups
