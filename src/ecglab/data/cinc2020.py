"""Any PhysioNet/CinC Challenge 2020/2021 WFDB folder: `.hea` + `.mat` records, SNOMED-CT `#Dx` codes.

The root is searched recursively for `*.hea`, so one source database's folder, the whole
training set, or a mix all read the same way. The record name's prefix gives the source
database, named as in the challenge's scoring tables: A CPSC (CPSC 2018), Q CPSC_Extra,
I StPetersburg (INCART), S PTB, HR PTB_XL, E Georgia, JS00001-JS10646 Chapman_Shaoxing and
JS10647 onward Ningbo (the ranges of the Challenge 2021 and PhysioNet ecg-arrhythmia releases).

The 2020 release's first CPSC headers give `#Dx` as CPSC class names (`RBBB`); they are read as
the SNOMED-CT codes the later releases use for them, so `labels` is always a tuple of codes.

The headers carry no patient ids. The folds are 10 label-stratified folds (on `scored2021`)
over the records found, computed with the fixed seed of `folds.py` over the records in
name order: deterministic for a given folder, but a different set of records gives different
folds, and recordings of one patient (PTB's, say) may fall in different folds.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ecglab.data.base import Reader, check_signal
from ecglab.data.cinc_scored import SCORED_TASKS
from ecglab.data.errors import RecordError
from ecglab.data.folds import stratified_folds
from ecglab.data.labels import label_matrix
from ecglab.data.leads import STANDARD_LEADS, reorder_leads
from ecglab.data.wfdb_io import Header, read_header, read_record

SOURCES = {"A": "CPSC", "Q": "CPSC_Extra", "I": "StPetersburg", "S": "PTB", "HR": "PTB_XL", "E": "Georgia"}
LAST_CHAPMAN_JS = 10646
# The first release's CPSC 2018 class names and the codes later releases give them
# (the CPSC column of the evaluation-2020 dx_mapping tables).
CPSC_DX = {
    "normal": "426783006", "af": "164889003", "i-avb": "270492004", "lbbb": "164909002", "rbbb": "59118001",
    "pac": "284470004", "pvc": "164884008", "std": "429622005", "ste": "164931005",
}  # fmt: skip
_NAME = re.compile(r"^([A-Za-z]+)(\d+)$")
_SEX = {"male": "M", "m": "M", "female": "F", "f": "F"}


def source_of(record_id: str) -> str:
    """The source database of a challenge record name ("unknown" for a name outside the scheme)."""
    match = _NAME.match(record_id)
    if not match:
        return "unknown"
    prefix, number = match.group(1).upper(), int(match.group(2))
    if prefix == "JS":
        return "Chapman_Shaoxing" if number <= LAST_CHAPMAN_JS else "Ningbo"
    return SOURCES.get(prefix, "unknown")


def parse_dx(dx: str, path: str | Path) -> tuple[str, ...]:
    """The SNOMED-CT codes of a `#Dx` line; an entry that is neither a code nor a CPSC name is an error."""
    codes = []
    for item in filter(None, (s.strip() for s in dx.split(","))):
        if item.isdigit():
            codes.append(item)
        elif item.lower() in CPSC_DX:
            codes.append(CPSC_DX[item.lower()])
        else:
            raise RecordError(path, f"unknown #Dx entry {item!r}; expected SNOMED-CT codes such as 426783006")
    if not codes:
        raise RecordError(path, "no #Dx diagnosis in the header")
    return tuple(codes)


class CinC2020(Reader):
    """Challenge 2020/2021 records; extra columns `source`, `age` (years) and `sex` (M/F)."""

    name = "cinc2020"
    tasks = SCORED_TASKS
    default_task = "scored2020"
    lead_names = STANDARD_LEADS

    @property
    def label_files(self) -> list[Path]:
        return []  # the labels are in the headers, which are the records' paths

    def _build_records(self):
        rows, skipped, seen = [], [], {}
        for hea in sorted(self.root.rglob("*.hea"), key=lambda p: (p.stem, str(p))):
            record_id = hea.stem
            if record_id in seen:
                skipped.append(
                    (record_id, str(hea), f"record name seen before, at {seen[record_id]}; that one is kept")
                )
                continue
            seen[record_id] = hea
            try:
                header = read_header(hea)
                codes = parse_dx(header.comments.get("Dx", ""), hea)
            except RecordError as exc:
                skipped.append((record_id, exc.path, exc.problem))
                continue
            age, sex = _age(header.comments.get("Age", "")), _SEX.get(header.comments.get("Sex", "").lower())
            fs, source = _fs(header), source_of(record_id)
            rows.append((record_id, pd.NA, fs, header.n_samples, codes, str(hea), source, age, sex or pd.NA))
        columns = ["record_id", "patient_id", "fs", "n_samples", "labels", "path", "source", "age", "sex"]
        records = pd.DataFrame(rows, columns=columns).set_index("record_id")
        records["age"] = records["age"].astype("Int64")
        records["fold"] = stratified_folds(label_matrix(records["labels"], SCORED_TASKS["scored2021"]))
        return records, skipped

    def load_signal(self, record_id: str) -> np.ndarray:
        path = self.signal_path(record_id)
        x, header = read_record(path)
        return check_signal(reorder_leads(x, header.lead_names, path=path), path, header.fs)


def _fs(header: Header) -> int | float:
    return int(header.fs) if float(header.fs).is_integer() else header.fs


def _age(text: str):
    try:
        return int(float(text))
    except (ValueError, OverflowError):
        return pd.NA
