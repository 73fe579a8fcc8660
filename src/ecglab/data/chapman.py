"""Chapman-Shaoxing (Zheng et al., 2020): the figshare release and its CinC 2021 WFDB form.

The figshare release is `Diagnostics.xlsx` (FileName, Rhythm, ...) plus one CSV per record in
`ECGData/` (raw) or `ECGDataDenoised/`: 12 columns I II III aVR aVL aVF V1-V6, 5000 rows (10 s at
500 Hz), values in µV. Some copies of the CSV files have a header row of lead names and some
have none; without one the standard order is assumed. The WFDB form (`JS00001.hea` + `.mat`,
records JS00001-JS10646, SNOMED-CT codes on `#Dx`) is read when the root holds `JS*.hea` files
and no `Diagnostics.xlsx`; its rhythm is the one rhythm code among the `#Dx` codes.

`labels` is the rhythm acronym (the rhythm table's SI is spelled `SA` in Diagnostics.xlsx, and
so here). Every patient has one record, so 10 label-stratified folds over records are
patient-wise; they are shipped in `folds/chapman.csv`, keyed by FileName. The WFDB form's
JS names are not in that file, so its records get stratified folds of their own (same seed).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ecglab.data.base import ShippedFoldsReader, check_signal
from ecglab.data.errors import RecordError
from ecglab.data.folds import write_fold_file
from ecglab.data.labels import Task, label_matrix
from ecglab.data.leads import STANDARD_LEADS, reorder_leads
from ecglab.data.wfdb_io import read_header, read_record

FS = 500
N_SAMPLES = 5000
# The four rhythm groups of Zheng et al. (2020), in the order AFIB GSVT SB SR.
GROUPS = {
    "AFIB": ("AFIB", "AF"),
    "GSVT": ("SVT", "AT", "SAAWR", "ST", "AVNRT", "AVRT"),
    "SB": ("SB",),
    "SR": ("SR", "SA"),
}
RHYTHMS = tuple(r for members in GROUPS.values() for r in members)
GROUP_OF = {r: group for group, members in GROUPS.items() for r in members}
# SNOMED-CT codes of the rhythms in the WFDB form (evaluation-2021/dx_mapping_*.csv).
# AF is atrial flutter in Chapman's acronyms; SA is sinus irregularity (427393009).
RHYTHM_CODES = {
    "164889003": "AFIB", "164890007": "AF", "426761007": "SVT", "713422000": "AT",
    "17366009": "SAAWR", "427084000": "ST", "251166008": "AVNRT", "233897008": "AVRT",
    "426177001": "SB", "426783006": "SR", "427393009": "SA",
}  # fmt: skip
LAST_CHAPMAN_JS = 10646  # JS10647 onward is the Ningbo database, released alongside.
NOT_CHAPMAN = "not a Chapman-Shaoxing record (JS00001-JS10646): a Ningbo one, read by the cinc2020 reader"
TASKS = {
    "rhythm": Task("rhythm", tuple(GROUPS), False, lambda r: (GROUP_OF[r],) if r in GROUP_OF else ()),
    "rhythm11": Task("rhythm11", RHYTHMS, False, lambda r: (r,) if r in GROUP_OF else ()),
}
CSV_FOLDERS = ("ECGData", "ECGDataDenoised")
_JS = re.compile(r"^JS(\d+)$")


class Chapman(ShippedFoldsReader):
    """Chapman-Shaoxing, 10,646 10-s 12-lead ECGs at 500 Hz with one rhythm label each.

    `denoised` picks the CSV folder: None (default) reads the raw `ECGData/` when it exists and
    `ECGDataDenoised/` otherwise; True or False forces one. A record with a missing, constant
    (all-zero) or non-finite lead raises a RecordError from `load_signal`, so `prepare` skips it.
    """

    name = "chapman"
    tasks = TASKS
    default_task = "rhythm"
    fold_task = "rhythm"
    lead_names = STANDARD_LEADS

    def __init__(self, root: str | Path | None = None, denoised: bool | None = None):
        super().__init__(root)
        self.denoised = denoised
        self.options = {"denoised": denoised}
        self.diagnostics = self.root / "Diagnostics.xlsx"
        if not self.diagnostics.is_file() and not any(self.root.rglob("JS*.hea")):
            raise FileNotFoundError(
                f"{self.root}: no Diagnostics.xlsx and no JS*.hea records; point root at the folder "
                "holding Diagnostics.xlsx and ECGData/ (figshare) or the JS*.hea files (CinC 2021)"
            )

    @property
    def label_files(self) -> list[Path]:
        return [self.diagnostics] if self.diagnostics.is_file() else []  # the WFDB form's are its headers

    @property
    def csv_folder(self) -> Path:
        """The folder whose CSV files are read (which may not exist: then no record has a signal)."""
        raw, denoised = (self.root / name for name in CSV_FOLDERS)
        if self.denoised is None:
            return denoised if denoised.is_dir() and not raw.is_dir() else raw
        return denoised if self.denoised else raw

    def label_table(self) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
        """Records without folds (patient_id, fs, n_samples, labels, path), and the skipped rows."""
        if self.diagnostics.is_file():
            return self._csv_table()
        return self._wfdb_table()

    def _csv_table(self):
        table = pd.read_excel(self.diagnostics, usecols=["FileName", "Rhythm"], dtype=str)
        folder = self.csv_folder
        present = {p.stem for p in folder.glob("*.csv")} if folder.is_dir() else set()
        rows, skipped = [], []
        for file_name, rhythm in zip(table["FileName"], table["Rhythm"].fillna(""), strict=True):
            rhythm = rhythm.strip()
            if rhythm not in GROUP_OF:
                skipped.append((file_name, str(self.diagnostics), _unknown_rhythm(rhythm)))
                continue
            path = str(folder / f"{file_name}.csv") if file_name in present else ""
            rows.append((file_name, file_name, FS, N_SAMPLES, rhythm, path))
        return _frame(rows), skipped

    def _wfdb_table(self):
        rows, skipped = [], []
        for hea in sorted(self.root.rglob("JS*.hea")):
            match = _JS.match(hea.stem)
            if not match or int(match.group(1)) > LAST_CHAPMAN_JS:
                skipped.append((hea.stem, str(hea), NOT_CHAPMAN))
                continue
            try:
                header = read_header(hea)
                rhythm = rhythm_of_dx(header.comments.get("Dx", ""), hea)
            except RecordError as exc:
                skipped.append((hea.stem, exc.path, exc.problem))
                continue
            rows.append((hea.stem, hea.stem, FS, header.n_samples, rhythm, str(hea)))
        return _frame(rows), skipped

    def load_signal(self, record_id: str) -> np.ndarray:
        path = self.signal_path(record_id)
        if path.suffix == ".hea":
            x, header = read_record(path)
            if header.fs != FS:
                raise RecordError(
                    path, f"header gives {header.fs:g} Hz; Chapman-Shaoxing is recorded at {FS} Hz"
                )
            x = reorder_leads(x, header.lead_names, path=path)
        else:
            x = read_csv_signal(path)
        return check_signal(x, path, FS, reject_flat_leads=True, lead_names=STANDARD_LEADS)


def rhythm_of_dx(dx: str, path: str | Path) -> str:
    """The rhythm acronym of a WFDB record's `#Dx` codes; none or several is a RecordError."""
    found = {RHYTHM_CODES[c] for c in (s.strip() for s in dx.split(",")) if c in RHYTHM_CODES}
    if len(found) != 1:
        problem = "several rhythm codes" if found else "no rhythm code"
        found_text = f" ({', '.join(sorted(found))})" if found else ""
        raise RecordError(
            path,
            f"{problem}{found_text} in #Dx {dx or '(empty)'}; expected exactly one of chapman.RHYTHM_CODES",
        )
    return found.pop()


def read_csv_signal(path: str | Path) -> np.ndarray:
    """float32 (12, samples) in mV from a figshare CSV, with or without its header row of lead names."""
    path = Path(path)
    try:
        with path.open() as f:
            first = f.readline()
    except FileNotFoundError:
        raise RecordError(path, "signal file is missing") from None
    names = [t.strip().strip('"') for t in first.split(",")]
    has_header = is_header_row(names)
    try:
        table = pd.read_csv(path, header=0 if has_header else None, dtype=np.float64)
    except (ValueError, pd.errors.ParserError) as exc:
        raise RecordError(path, f"not a table of numbers ({exc})") from None
    if table.shape[1] != len(STANDARD_LEADS):
        raise RecordError(
            path, f"{table.shape[1]} columns; expected the 12 leads {', '.join(STANDARD_LEADS)}"
        )
    x = table.to_numpy(dtype=np.float32).T * np.float32(1e-3)  # µV -> mV
    return reorder_leads(x, names, path=path) if has_header else x


def regenerate_folds(root: str | Path | None = None) -> pd.DataFrame:
    """Recompute `folds/chapman.csv` from Diagnostics.xlsx (all records, stratified on `rhythm`)."""
    reader = Chapman(root)
    if not reader.diagnostics.is_file():
        raise FileNotFoundError(
            f"{reader.root}: no Diagnostics.xlsx; the fold file is keyed by its FileNames"
        )
    records, _ = reader.label_table()
    return write_fold_file("chapman", list(records.index), label_matrix(records["labels"], TASKS["rhythm"]))


def _frame(rows: list[tuple]) -> pd.DataFrame:
    columns = ["record_id", "patient_id", "fs", "n_samples", "labels", "path"]
    return pd.DataFrame(rows, columns=columns).set_index("record_id")


def _unknown_rhythm(rhythm: str) -> str:
    return f"unknown rhythm {rhythm or '(empty)'!r}; expected one of {', '.join(RHYTHMS)}"


def is_header_row(cells: list[str]) -> bool:
    """Whether a CSV's first row names its columns (any non-empty cell that isn't a number)."""
    return any(c and not _is_number(c) for c in cells)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
