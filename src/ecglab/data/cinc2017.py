"""PhysioNet/CinC Challenge 2017 (Clifford et al., 2017): AF classification from a single lead.

The training set `training2017/` holds `A00001.hea` + `A00001.mat` (one lead named `ECG`, lead-I
like, 300 Hz, 9-61 s, 1000 units/mV) and the label files `REFERENCE.csv` (as in the zip) and
`REFERENCE-v3.csv` (the relabelled reference used for the final scoring), one `A00001,N` row
per record. v3 is read when present. The classes are N (normal), A (AF), O (other rhythm) and
~ (too noisy); the challenge scores the mean F1 of N, A and O.

There are no patient ids. The folds are 10 stratified folds over all 8,528 records on the v3
labels with a fixed seed, shipped in `folds/cinc2017.csv`; the other label files reuse them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from ecglab.data.base import ShippedFoldsReader, check_signal
from ecglab.data.errors import RecordError
from ecglab.data.folds import write_fold_file
from ecglab.data.labels import Task, label_matrix
from ecglab.data.leads import reorder_leads
from ecglab.data.wfdb_io import read_header, read_record

FS = 300
CLASSES = ("N", "A", "O", "~")
REFERENCES = ("REFERENCE-v3.csv", "REFERENCE.csv")
TASKS = {"rhythm": Task("rhythm", CLASSES, False, lambda label: (label,) if label in CLASSES else ())}


class CinC2017(ShippedFoldsReader):
    """The CinC 2017 training set; `labels` is the class letter (N, A, O or ~).

    `root` is the folder holding `training2017/`, or that folder itself. `reference` names the
    label file inside it (e.g. "REFERENCE-original.csv"); by default REFERENCE-v3.csv, else
    REFERENCE.csv.
    """

    name = "cinc2017"
    tasks = TASKS
    default_task = "rhythm"
    fold_task = "rhythm"
    lead_names = ("I",)

    def __init__(self, root: str | Path | None = None, reference: str | None = None):
        super().__init__(root)
        nested = self.root / "training2017"
        self.folder = nested if nested.is_dir() else self.root
        names = (reference,) if reference else REFERENCES
        found = [self.folder / n for n in names if (self.folder / n).is_file()]
        if not found:
            raise FileNotFoundError(
                f"{self.folder}: no {' or '.join(names)}; point root at the folder holding training2017/"
            )
        self.reference = found[0]
        self.options = {"reference": reference}

    @property
    def label_files(self) -> list[Path]:
        return [self.reference]

    def label_table(self) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
        """Records without folds (patient_id, fs, n_samples, labels, path), and the skipped rows."""
        rows, skipped, seen = [], [], set()
        with self.reference.open(newline="") as f:
            for line, row in enumerate(csv.reader(f), start=1):
                if not row:
                    continue
                record_id = row[0].strip()
                label = row[1].strip() if len(row) > 1 else ""
                where = f"{self.reference}, line {line}"
                if label not in CLASSES:
                    skipped.append(
                        (record_id, where, f"unknown label {label!r}; expected one of {' '.join(CLASSES)}")
                    )
                elif record_id in seen:
                    skipped.append((record_id, where, "record listed twice; the first row is kept"))
                else:
                    seen.add(record_id)
                    rows.append(self._row(record_id, label, skipped))
        columns = ["record_id", "patient_id", "fs", "n_samples", "labels", "path"]
        records = pd.DataFrame([r for r in rows if r], columns=columns).set_index("record_id")
        records["n_samples"] = records["n_samples"].astype("Int64")
        return records, skipped

    def _row(self, record_id: str, label: str, skipped: list) -> tuple | None:
        """One table row; the header is read (cheap) only where the record's files are present."""
        hea = self.folder / f"{record_id}.hea"
        if not hea.is_file():
            return (record_id, pd.NA, FS, pd.NA, label, "")
        try:
            header = read_header(hea)
        except RecordError as exc:
            skipped.append((record_id, exc.path, exc.problem))
            return None
        return (record_id, pd.NA, FS, header.n_samples, label, str(hea))

    def load_signal(self, record_id: str) -> np.ndarray:
        path = self.signal_path(record_id)
        x, header = read_record(path)
        if header.fs != FS:
            raise RecordError(path, f"header gives {header.fs:g} Hz; CinC 2017 records are {FS} Hz")
        return check_signal(reorder_leads(x, header.lead_names, self.lead_names, path), path, FS)


def regenerate_folds(root: str | Path | None = None) -> pd.DataFrame:
    """Recompute `folds/cinc2017.csv`: all records of REFERENCE-v3.csv, stratified on its labels."""
    records, _ = CinC2017(root, reference=REFERENCES[0]).label_table()
    return write_fold_file("cinc2017", list(records.index), label_matrix(records["labels"], TASKS["rhythm"]))
