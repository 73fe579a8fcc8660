"""Test helpers shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(
    *args: str, env: dict | None = None, check: bool = True, timeout: float = 300, cwd=None
) -> subprocess.CompletedProcess:
    """Run `python -m ecglab ARGS` in a subprocess (in folder `cwd`), as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "ecglab", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"ecglab {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def write_wfdb(path_stem, x, fs, leads=None, fmt="16"):
    """Write x (leads, samples) in mV as a WFDB record `<path_stem>.hea/.dat`; returns the .hea path."""
    from pathlib import Path

    import numpy as np
    import wfdb

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    leads = leads or ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"][: len(x)]
    wfdb.wrsamp(
        stem.name, fs=fs, units=["mV"] * len(x), sig_name=list(leads), p_signal=np.asarray(x, dtype=np.float64).T,
        fmt=[fmt] * len(x), adc_gain=[1000.0] * len(x), baseline=[0] * len(x), write_dir=str(stem.parent),
    )  # fmt: skip
    return stem.with_suffix(".hea")


def write_ptbxl(root, records, statements_from=None):
    """A PTB-XL tree: `records` is a list of (ecg_id, patient_id, fold, scp_codes dict, signal or None)."""
    import shutil
    from pathlib import Path

    import numpy as np
    import pandas as pd

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if statements_from is not None:
        shutil.copy(Path(statements_from) / "scp_statements.csv", root / "scp_statements.csv")
    rows = []
    for ecg_id, patient_id, fold, codes, signal in records:
        stem = f"records100/{ecg_id // 1000 * 1000:05d}/{ecg_id:05d}_lr"
        if signal is not None:
            write_wfdb(root / stem, np.asarray(signal), 100)
        rows.append({"ecg_id": ecg_id, "patient_id": float(patient_id), "scp_codes": repr(codes),
                     "strat_fold": fold, "filename_lr": stem, "filename_hr": stem.replace("100", "500").replace("_lr", "_hr")})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    return root
