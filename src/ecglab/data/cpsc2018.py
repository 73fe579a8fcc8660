"""CPSC 2018 (Liu et al., 2018): the original TrainingSet and its CinC 2020 WFDB form.

Records are found anywhere under the root: `A0001.mat` alone is the original form (struct `ECG`
with `sex`, `age` and `data`, 12 x N float mV at 500 Hz); `A0001.hea` + `A0001.mat` is the
PhysioNet/CinC 2020 form (int16 `val`, labels on the header's `#Dx` line, as CPSC abbreviations
in that challenge's first release or SNOMED-CT codes in later ones). `REFERENCE.csv`, when
present, is the label table; otherwise the WFDB headers are.

CPSC 2018 publishes no patient ids and no folds: the folds are 10 label-stratified folds over
records with a fixed seed, shipped in `folds/cpsc2018.csv`. They are record-wise, so a patient
with two recordings could sit in two folds; nothing in the release lets anyone do better.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecglab.data.base import Reader, check_signal
from ecglab.data.errors import RecordError
from ecglab.data.folds import assign_folds, write_fold_file
from ecglab.data.labels import Task, label_matrix
from ecglab.data.leads import STANDARD_LEADS, reorder_leads
from ecglab.data.wfdb_io import read_header, read_mat_variable, read_record

CLASSES = ("I-AVB", "AF", "LBBB", "RBBB", "NORM", "PAC", "STD", "STE", "PVC")
FS = 500
# REFERENCE.csv codes, the first-release `#Dx` abbreviations and the later SNOMED-CT codes.
REFERENCE_CODES = {
    "1": "NORM",
    "2": "AF",
    "3": "I-AVB",
    "4": "LBBB",
    "5": "RBBB",
    "6": "PAC",
    "7": "PVC",
    "8": "STD",
    "9": "STE",
}
DX_NAMES = {
    "normal": "NORM", "af": "AF", "i-avb": "I-AVB", "lbbb": "LBBB", "rbbb": "RBBB",
    "pac": "PAC", "pvc": "PVC", "std": "STD", "ste": "STE",
    "426783006": "NORM", "164889003": "AF", "270492004": "I-AVB", "164909002": "LBBB",
    "59118001": "RBBB", "284470004": "PAC", "164884008": "PVC", "429622005": "STD", "164931005": "STE",
}  # fmt: skip
TASKS = {"arrhythmia": Task("arrhythmia", CLASSES, True, lambda labels: labels)}


def parse_dx(dx: str, path: str | Path) -> tuple[str, ...]:
    """CPSC classes of a `#Dx` line (abbreviations or SNOMED codes); an unknown entry is an error."""
    classes = []
    for item in filter(None, (s.strip() for s in dx.split(","))):
        if item.lower() not in DX_NAMES:
            raise RecordError(path, f"unknown #Dx entry {item!r}; CPSC 2018 knows {', '.join(CLASSES)}")
        classes.append(DX_NAMES[item.lower()])
    if not classes:
        raise RecordError(path, "no #Dx line")
    return tuple(classes)


class CPSC2018(Reader):
    """CPSC 2018; `labels` is a tuple of class names from CLASSES (up to three per record)."""

    name = "cpsc2018"
    tasks = TASKS
    default_task = "arrhythmia"
    lead_names = STANDARD_LEADS

    def _signal_files(self) -> dict[str, tuple[Path, Path | None]]:
        """record_id -> (signal file, header or None), preferring the original form."""
        found: dict[str, tuple[Path, Path | None]] = {}
        for mat in sorted(self.root.rglob("A*.mat")):
            hea = mat.with_suffix(".hea")
            if hea.is_file():
                found.setdefault(mat.stem, (hea, hea))
            else:
                found[mat.stem] = (mat, None)
        return found

    def _build_records(self):
        files = self._signal_files()
        reference = self.root / "REFERENCE.csv"
        labels, skipped = {}, []
        if reference.is_file():
            table = pd.read_csv(reference, dtype=str).fillna("")
            for rec, *codes in table.itertuples(index=False):
                unknown = [c for c in codes if c and c not in REFERENCE_CODES]
                if unknown:
                    skipped.append((rec, str(reference), f"unknown label code(s) {', '.join(unknown)}"))
                else:
                    labels[rec] = tuple(
                        dict.fromkeys(REFERENCE_CODES[c] for c in codes if c)
                    )  # A0953 lists PAC twice
        else:
            for rec, (_, hea) in files.items():
                if hea is None:
                    skipped.append(
                        (rec, str(files[rec][0]), "no REFERENCE.csv and no header to take labels from")
                    )
                    continue
                try:
                    labels[rec] = parse_dx(read_header(hea).comments.get("Dx", ""), hea)
                except RecordError as exc:
                    skipped.append((rec, exc.path, exc.problem))
        ids = list(labels)
        folds = assign_folds(self.name, ids, label_matrix(labels.values(), TASKS["arrhythmia"]))
        rows = []
        for rec, fold in zip(ids, folds, strict=True):
            path, hea = files.get(rec, ("", None))
            n_samples = read_header(hea).n_samples if hea is not None else pd.NA
            rows.append((rec, pd.NA, FS, n_samples, labels[rec], int(fold), str(path)))
        records = pd.DataFrame(
            rows, columns=["record_id", "patient_id", "fs", "n_samples", "labels", "fold", "path"]
        )
        return records.set_index("record_id"), skipped

    def load_signal(self, record_id: str) -> np.ndarray:
        path = self.signal_path(record_id)
        if path.suffix == ".hea":
            x, header = read_record(path)
            if header.fs != FS:
                raise RecordError(path, f"header gives {header.fs:g} Hz; CPSC 2018 is recorded at {FS} Hz")
            return check_signal(reorder_leads(x, header.lead_names, path=path), path, FS)
        return check_signal(load_original_mat(path), path, FS)


def load_original_mat(path: Path) -> np.ndarray:
    """`data` of the original release's struct `ECG`: 12 x N mV, leads in the standard order."""
    ecg = read_mat_variable(path, "ECG", "struct", "; expected the CPSC 2018 TrainingSet form")
    if "data" not in (ecg.dtype.names or ()):
        raise RecordError(path, "struct 'ECG' has no field 'data'")
    x = np.asarray(ecg[0, 0]["data"], dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != len(STANDARD_LEADS):
        raise RecordError(path, f"'data' has shape {x.shape}; expected 12 x samples")
    return x


def regenerate_folds(root: str | Path | None = None) -> pd.DataFrame:
    """Recompute `folds/cpsc2018.csv` from REFERENCE.csv (all 6,877 records, stratified on the 9 classes)."""
    reader = CPSC2018(root)
    if not (reader.root / "REFERENCE.csv").is_file():
        raise FileNotFoundError(f"{reader.root}: no REFERENCE.csv; the fold file is keyed by its records")
    records = reader.records
    return write_fold_file(
        "cpsc2018", list(records.index), label_matrix(records["labels"], TASKS["arrhythmia"])
    )
