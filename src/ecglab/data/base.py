"""The reader contract: a records table plus one loading function."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from ecglab.data.errors import RecordError
from ecglab.data.labels import Task, label_matrix
from ecglab.paths import dataset_root

RECORD_COLUMNS = ["patient_id", "fs", "n_samples", "labels", "fold", "path"]
SKIPPED_COLUMNS = ["record_id", "path", "reason"]
SPLITS = ("train", "val", "test")


class Reader:
    """A dataset in its publisher's layout.

    Subclasses set `name`, `tasks`, `lead_names`, and implement `_build_records` and `load_signal`.
    `records` is a DataFrame indexed by `record_id` with the columns of RECORD_COLUMNS:
    `patient_id` (<NA> where the dataset has none), `fs` (Hz), `n_samples` (<NA> where only the
    signal file says), `labels` (the dataset's raw labels, mapped to classes by a Task), `fold`
    (1-10) and `path` (the signal file, or "" where it is absent). Rows that could not be used
    (an unknown label code, say) are left out and listed in `skipped` with their reason.
    A reader doesn't download, cache or print.
    """

    name: ClassVar[str]
    tasks: ClassVar[dict[str, Task]]
    default_task: ClassVar[str]
    lead_names: tuple[str, ...]
    options: dict = {}  # the reader's own arguments, recorded in a cache's manifest

    def __init__(self, root: str | Path | None = None):
        self.root = dataset_root(self.name, root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"{self.root}: no such folder; point --root (or ECGLAB_DATA) at the {self.name} download"
            )

    @cached_property
    def _table(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        records, skipped = self._build_records()
        # The contract's columns first; a reader's extra columns (CinC 2020's `source`) follow.
        records = records[RECORD_COLUMNS + [c for c in records.columns if c not in RECORD_COLUMNS]]
        records.index.name = "record_id"
        return records, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)

    @property
    def records(self) -> pd.DataFrame:
        return self._table[0]

    @property
    def skipped(self) -> pd.DataFrame:
        return self._table[1]

    def _build_records(self) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
        raise NotImplementedError

    def load_signal(self, record_id: str) -> np.ndarray:
        """float32 (leads, samples) in mV at the native rate, leads in `lead_names` order."""
        raise NotImplementedError

    @property
    def label_files(self) -> list[Path]:
        """The files the records table is read from (default: every file at the top of the root)."""
        return sorted(p for p in self.root.iterdir() if p.is_file())

    def input_files(self) -> list[Path]:
        """Every file `prepare` reads: the label files and each record's signal files."""
        files = set(self.label_files)
        for path in self.records["path"]:
            if path:
                p = Path(path)
                files.add(p)
                files.update(
                    q for q in (p.with_suffix(".dat"), p.with_suffix(".mat")) if q != p and q.exists()
                )
        return sorted(files)

    @classmethod
    def options_for(cls, fs: float) -> dict:
        """Reader arguments that suit a target sampling rate (PTB-XL picks records100 or records500)."""
        return {}

    def task(self, name: str | None = None) -> Task:
        name = name or self.default_task
        if name not in self.tasks:
            raise ValueError(f"{self.name} has no task {name!r}; choose one of {', '.join(self.tasks)}")
        return self.tasks[name]

    def signal_path(self, record_id: str) -> Path:
        """The record's signal file; a RecordError when the table names none."""
        path = self.records.at[record_id, "path"]
        if not path:
            raise RecordError(
                self.root / str(record_id), "named in the label table but its signal file is missing"
            )
        return Path(path)


class ShippedFoldsReader(Reader):
    """A reader whose folds come from a shipped fold file, stratified on the task `fold_task`.

    Subclasses implement `label_table()`: the records table without its `fold` column, and the
    rows skipped while reading it.
    """

    fold_task: ClassVar[str]

    def label_table(self) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
        raise NotImplementedError

    def _build_records(self):
        from ecglab.data.folds import assign_folds  # lazily: `python -m ecglab.data.folds` runs that module

        records, skipped = self.label_table()
        y = label_matrix(records["labels"], self.tasks[self.fold_task])
        records["fold"] = assign_folds(self.name, list(records.index), y)
        return records, skipped


def split_of(folds: pd.Series | np.ndarray, val_fold: int = 9, test_fold: int = 10) -> np.ndarray:
    """'train', 'val' or 'test' per fold: train is every fold but the validation and test folds."""
    folds = np.asarray(folds)
    out = np.full(folds.shape, "train", dtype=object)
    out[folds == val_fold] = "val"
    out[folds == test_fold] = "test"
    return out


def check_signal(
    x: np.ndarray,
    path: str | Path,
    fs: float,
    min_seconds: float = 1.0,
    *,
    reject_flat_leads: bool = False,
    lead_names: tuple[str, ...] | list[str] | None = None,
) -> np.ndarray:
    """The checks every decoded signal must pass: finite, no empty lead, at least `min_seconds` long.

    `reject_flat_leads` also refuses a lead that holds one value throughout (all zero, typically):
    some releases (Chapman's CSV files) fill a lead that was not recorded that way.
    """
    if not np.all(np.isfinite(x)):
        bad = int((~np.isfinite(x)).sum())
        raise RecordError(path, f"{bad} NaN or infinite sample(s)")
    if reject_flat_leads and x.shape[-1]:
        flat = np.flatnonzero(np.ptp(x, axis=-1) == 0)
        if flat.size:
            names = [lead_names[i] if lead_names else f"#{i + 1}" for i in flat]
            raise RecordError(path, f"lead(s) {', '.join(names)} hold one constant value (not recorded)")
    if x.shape[-1] < min_seconds * fs:
        raise RecordError(
            path,
            f"only {x.shape[-1]} samples ({x.shape[-1] / fs:.2f} s at {fs:g} Hz); need {min_seconds:g} s",
        )
    return x.astype(np.float32, copy=False)
