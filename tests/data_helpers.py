"""Helpers of the dataset reader tests: tiny CinC-style WFDB records, Chapman releases, fold balance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from ecglab.data.leads import STANDARD_LEADS


def write_cinc_record(
    folder: Path,
    name: str,
    val: np.ndarray | None = None,
    *,
    fs: int = 500,
    leads: tuple[str, ...] = STANDARD_LEADS,
    gain: str = "1000/mV",
    comments: dict[str, str] | None = None,
    record_line_name: str | None = None,
    variable: str = "val",
) -> Path:
    """Write `name.hea` + `name.mat` into `folder`; `val` is (leads, samples), int16 unless it holds NaN."""
    folder.mkdir(parents=True, exist_ok=True)
    if val is None:
        rng = np.random.default_rng(len(name))
        val = rng.integers(-500, 500, size=(len(leads), 10 * fs)).astype(np.int16)
    scipy.io.savemat(folder / f"{name}.mat", {variable: val}, format="4")
    lines = [f"{record_line_name or name} {len(leads)} {fs} {val.shape[1]} 05-May-2020 09:49:17"]
    for lead, row in zip(leads, val, strict=True):
        checksum = (
            0 if not np.issubdtype(val.dtype, np.integer) else ((int(row.sum()) + 32768) % 65536) - 32768
        )
        first = int(row[0]) if np.isfinite(row[0]) else 0
        lines.append(f"{name}.mat 16+24 {gain} 16 0 {first} {checksum} 0 {lead}")
    for key, value in (comments or {}).items():
        lines.append(f"#{key}: {value}")
    hea = folder / f"{name}.hea"
    hea.write_text("\n".join(lines) + "\n")
    return hea


def fold_counts_even(folds: np.ndarray, y: np.ndarray, n_folds: int = 10, tolerance: float = 1.0) -> bool:
    """Every class's count in every fold is within `tolerance` of its tenth."""
    for c in range(y.shape[1]):
        share = y[:, c].sum() / n_folds
        counts = np.bincount(folds[y[:, c] > 0], minlength=n_folds + 1)[1:]
        if np.abs(counts - share).max() > tolerance:
            return False
    return True


def write_release(root, rows, csv_folder="ECGData"):
    """Chapman's Diagnostics.xlsx with (FileName, Rhythm) rows, and a CSV folder to fill."""
    root.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows, columns=["FileName", "Rhythm"]).assign(Beat="NONE", PatientAge=60)
    table.to_excel(root / "Diagnostics.xlsx", index=False)
    (root / csv_folder).mkdir(exist_ok=True)
    return root / csv_folder


def microvolts(seed=0, samples=5000):
    """Twelve leads of 10 s at 500 Hz of noise in µV, rounded as Chapman's CSV files are."""
    return np.random.default_rng(seed).normal(0, 300, (12, samples)).round()


def write_chapman_csv(path, x_uv, names=STANDARD_LEADS, header=True):
    """One record as a Chapman CSV file: a column per lead, with or without a header row."""
    pd.DataFrame(x_uv.T, columns=list(names)).to_csv(path, index=False, header=header)
