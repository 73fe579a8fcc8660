"""PTB-XL (Wagner et al., 2020) in the publisher's layout, versions 1.0.1 to 1.0.3.

`ptbxl_database.csv` is the label table, `scp_statements.csv` the statement vocabulary, and
`records100/` / `records500/` the WFDB records. `strat_fold` is the fold: the publisher assigns
it per patient, so the splits are patient-wise by construction.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ecglab.data.base import Reader, check_signal
from ecglab.data.labels import Task
from ecglab.data.leads import STANDARD_LEADS, reorder_leads
from ecglab.data.wfdb_io import read_record

TASK_NAMES = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")


def ptbxl_tasks(statements: pd.DataFrame) -> dict[str, Task]:
    """The six tasks of the PTB-XL benchmark (Strodthoff et al., 2021), from `scp_statements.csv`.

    As in the benchmark, every statement of a record counts whatever its likelihood, and each
    task's classes are its statements (or aggregated classes) in alphabetical order. The class
    lists come from the vocabulary, not from the records at hand, so a subset and a full
    download give the same columns.
    """
    diag = statements[statements["diagnostic"] == 1]
    sub = diag["diagnostic_subclass"].to_dict()
    sup = diag["diagnostic_class"].to_dict()

    def members(flag: str):
        keep = set(statements.index[statements[flag] == 1])
        return lambda codes: [c for c in codes if c in keep]

    def mapped(table: dict[str, str]):
        return lambda codes: {table[c] for c in codes if c in table}

    everything = set(statements.index)
    return {
        "all": Task(
            "all", tuple(sorted(everything)), True, lambda codes: [c for c in codes if c in everything]
        ),
        "diagnostic": Task("diagnostic", tuple(sorted(diag.index)), True, members("diagnostic")),
        "subdiagnostic": Task("subdiagnostic", tuple(sorted(set(sub.values()))), True, mapped(sub)),
        "superdiagnostic": Task("superdiagnostic", tuple(sorted(set(sup.values()))), True, mapped(sup)),
        "form": Task("form", tuple(sorted(statements.index[statements["form"] == 1])), True, members("form")),
        "rhythm": Task(
            "rhythm", tuple(sorted(statements.index[statements["rhythm"] == 1])), True, members("rhythm")
        ),
    }


def parse_scp_codes(text: str) -> dict[str, float]:
    """`scp_codes` is a Python dict literal; JSON parses it ten times faster than `ast`."""
    try:
        return json.loads(text.replace("'", '"'))
    except json.JSONDecodeError:
        return ast.literal_eval(text)


class PTBXL(Reader):
    """PTB-XL at 100 Hz (`records100/`) or 500 Hz (`records500/`).

    `labels` holds a record's SCP statements as a dict {code: likelihood}.
    """

    name = "ptbxl"
    default_task = "rhythm"
    lead_names = STANDARD_LEADS

    def __init__(self, root: str | Path | None = None, fs: int = 100):
        super().__init__(root)
        if fs not in (100, 500):
            raise ValueError(f"PTB-XL comes at 100 or 500 Hz, not {fs}")
        self.fs = fs
        self.options = {"fs": fs}
        for name in ("ptbxl_database.csv", "scp_statements.csv"):
            if not (self.root / name).is_file():
                raise FileNotFoundError(
                    f"{self.root}: no {name}; point root at the folder holding records{fs}/"
                )
        self.statements = pd.read_csv(self.root / "scp_statements.csv", index_col=0)
        self.tasks = ptbxl_tasks(self.statements)

    @classmethod
    def options_for(cls, fs: float) -> dict:
        return {"fs": 100 if fs <= 100 else 500}

    def _build_records(self):
        table_path = self.root / "ptbxl_database.csv"
        db = pd.read_csv(table_path, index_col="ecg_id")
        file_column = "filename_lr" if self.fs == 100 else "filename_hr"
        known = set(self.statements.index)
        present = {str(p) for p in self.root.glob(f"records{self.fs}/*/*.hea")}
        rows, skipped = [], []
        for ecg_id, patient_id, scp, fold, stem in zip(
            db.index, db["patient_id"], db["scp_codes"], db["strat_fold"], db[file_column], strict=True
        ):
            record_id = f"{ecg_id:05d}"
            hea = self.root / f"{stem}.hea"
            codes = parse_scp_codes(scp)
            unknown = sorted(set(codes) - known)
            if unknown:
                reason = f"unknown SCP code(s) {', '.join(unknown)} (not in scp_statements.csv)"
                skipped.append((record_id, str(table_path), reason))
                continue
            path = str(hea) if str(hea) in present else ""
            rows.append((record_id, int(patient_id), self.fs, self.fs * 10, codes, int(fold), path))
        records = pd.DataFrame(
            rows, columns=["record_id", "patient_id", "fs", "n_samples", "labels", "fold", "path"]
        )
        return records.set_index("record_id"), skipped

    def load_signal(self, record_id: str) -> np.ndarray:
        path = self.signal_path(record_id)
        x, header = read_record(path)
        if header.fs != self.fs:
            from ecglab.data.errors import RecordError

            raise RecordError(
                path, f"header gives {header.fs:g} Hz; records{self.fs}/ should hold {self.fs} Hz"
            )
        return check_signal(reorder_leads(x, header.lead_names, path=path), path, self.fs)
