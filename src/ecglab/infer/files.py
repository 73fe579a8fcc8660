"""Reading any ECG file a user may hand to `predict`: float32 (leads, samples) in mV, its rate and lead names.

The extension picks the reader: `.hea` (and `.dat` or a CinC `.mat` beside it) is WFDB; a `.mat`
alone is the original CPSC 2018 release (struct `ECG`, 500 Hz); `.csv` is a Chapman-Shaoxing
file (12 lead columns, µV) unless `leads` is given, its columns are other leads or a leading
`# fs=HZ` comment states its rate, then a generic table (samples x leads, mV); a CSV needs `fs`
unless that comment states it. `.npy` is an array (leads, samples) or (samples, leads);
`.edf`/`.bdf` go through edfio. Files whose format fixes rate, units and lead names (WFDB, EDF,
CPSC 2018) ignore `fs`, `units` and `leads`; the others need what they don't state. Every
reading passes `quality.check_samples` and the rate and length `limits`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecglab.data.errors import RecordError
from ecglab.data.leads import STANDARD_LEADS, canonical_lead
from ecglab.infer.limits import Limits
from ecglab.infer.quality import check_samples

SUFFIXES = (".hea", ".dat", ".mat", ".csv", ".npy", ".edf", ".bdf")
CPSC_FS = 500.0
CHAPMAN_FS = 500.0
UNITS = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
_PREFIX = re.compile(r"^(ecg|ekg|lead)[\s_:.-]*", re.IGNORECASE)
_STATED_FS = re.compile(r"^#.*?(?:fs|rate|frequency)\s*[:=]?\s*([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class Recording:
    """One ECG as read from a file: `x` float32 (leads, samples) in mV, with the file's own lead names."""

    path: Path
    x: np.ndarray
    fs: float
    lead_names: tuple[str, ...]


def read_ecg(
    path: str | Path, *, fs: float | None = None, leads: Sequence[str] | None = None, units: str | None = None,
    limits: Limits | None = None,
) -> Recording:  # fmt: skip
    """Read any supported file; every problem is a RecordError naming the file and the fix.

    A rate or length outside `limits` (default: `Limits.from_env()`) is refused before the samples are read.
    """
    path = Path(path)
    limits = limits or Limits.from_env()
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES and path.with_name(path.name + ".hea").is_file():
        path, suffix = path.with_name(path.name + ".hea"), ".hea"  # a WFDB record name without extension
    if suffix not in SUFFIXES:
        raise RecordError(
            path, f"unsupported file type {suffix or '(none)'!r}; ecglab reads {', '.join(SUFFIXES)}"
        )
    if not path.is_file():
        raise RecordError(path, "no such file")
    if units is not None and units.lower() not in UNITS:
        raise RecordError(path, f"unknown units {units!r}; use mV or uV")
    if fs is not None:
        limits.check_rate(path, fs)
    if suffix in (".hea", ".dat"):
        x, rate, names = _read_wfdb(path, limits)
    elif suffix == ".mat":
        x, rate, names = _read_mat(path, limits)
    elif suffix == ".csv":
        x, rate, names = _read_csv(path, fs, leads, units)
    elif suffix == ".npy":
        x, rate, names = _read_npy(path, fs, leads, units)
    else:
        x, rate, names = _read_edf(path, units)
    return _checked(Recording(path, x, float(rate), tuple(names)), limits)


def as_record_error(path: str | Path, exc: Exception) -> RecordError:
    """Any failure while reading or scoring `path` as a RecordError naming the file.

    A corrupt file can make a third-party reader raise anything; one such file must not take the
    others of a batch down, and its message must still say which file it was.
    """
    if isinstance(exc, RecordError):
        return exc
    if isinstance(exc, OSError) and exc.strerror:
        return RecordError(path, f"could not be read ({exc.strerror})")
    return RecordError(path, f"could not be read or scored ({type(exc).__name__}: {exc})")


def lead_key(name: str) -> str | None:
    """The standard name of a lead label (`avr`, `ECG V1`, `Lead II`), or None for a non-ECG signal."""
    for candidate in (name, _PREFIX.sub("", name.strip())):
        try:
            return canonical_lead(candidate)
        except RecordError:
            continue
    return None


def select_leads(rec: Recording, target: Sequence[str]) -> np.ndarray:
    """Rows of `rec.x` in the order of `target`, matched case-insensitively; extra leads are dropped.

    A lead the model needs and the file lacks is a RecordError naming every missing lead.
    """
    found: dict[str, int] = {}
    for i, name in enumerate(rec.lead_names):
        key = lead_key(name)
        if key is not None:
            if key in found:
                raise RecordError(rec.path, f"two signals are lead {key} ({', '.join(rec.lead_names)})")
            found[key] = i
    keys = [lead_key(t) or t for t in target]
    missing = [t for t, k in zip(target, keys, strict=True) if k not in found]
    if missing:
        raise RecordError(
            rec.path,
            f"the model needs lead(s) {', '.join(missing)}, which the file lacks "
            f"(it has {', '.join(rec.lead_names)}); use a model trained on the leads you have",
        )
    order = [found[k] for k in keys]
    return rec.x if order == list(range(len(rec.lead_names))) else rec.x[order]


def parse_leads(text: str | None) -> list[str] | None:
    """`I,II,V1` -> ['I', 'II', 'V1'] (the `--leads` option)."""
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _checked(rec: Recording, limits: Limits) -> Recording:
    x = np.asarray(rec.x)
    if x.ndim != 2 or x.shape[0] != len(rec.lead_names):
        raise RecordError(rec.path, f"decoded to shape {x.shape} for {len(rec.lead_names)} lead name(s)")
    if x.shape[1] == 0:
        raise RecordError(rec.path, "holds no samples")
    limits.check_rate(rec.path, rec.fs)
    limits.check_length(rec.path, x.shape[1], rec.fs)
    return Recording(rec.path, check_samples(rec.path, x, rec.lead_names), rec.fs, rec.lead_names)


def _read_wfdb(path: Path, limits: Limits):
    from ecglab.data.wfdb_io import read_header, read_record

    hea = path.with_suffix(".hea")
    if not hea.is_file():
        raise RecordError(path, f"a .dat file holds only samples; its header {hea.name} must sit beside it")
    header = read_header(hea)
    limits.check_rate(hea, header.fs)  # before the samples are read
    limits.check_length(hea, header.n_samples, header.fs)
    x, header = read_record(hea)
    return x, header.fs, header.lead_names


def _read_mat(path: Path, limits: Limits):
    import scipy.io

    hea = path.with_suffix(".hea")
    if hea.is_file():
        return _read_wfdb(hea, limits)  # CinC form: int16 `val`, the header gives rate, gains and leads
    try:
        names = [name for name, _, _ in scipy.io.whosmat(path)]
    except Exception as exc:  # scipy raises several types for corrupt files
        raise RecordError(path, f"not a readable MATLAB file ({exc})") from None
    if "ECG" in names:
        from ecglab.data.cpsc2018 import load_original_mat

        return load_original_mat(path), CPSC_FS, STANDARD_LEADS  # the whole release is 500 Hz
    if "val" in names:
        raise RecordError(
            path,
            f"a CinC-form .mat (variable 'val') needs its header {hea.name} beside it for rate and leads",
        )
    found = ", ".join(names) or "none"
    raise RecordError(
        path, f"neither CPSC 2018 (struct 'ECG') nor CinC (variable 'val') form (variables: {found})"
    )


def _read_csv(path: Path, fs: float | None, leads: Sequence[str] | None, units: str | None):
    import pandas as pd

    from ecglab.data.chapman import is_header_row, read_csv_signal

    stated, first = _csv_preamble(path)
    fs = fs or stated
    cells = [c.strip().strip('"') for c in first.split(",")]
    header = cells if is_header_row(cells) else None
    keys = [lead_key(c) for c in header] if header else []
    chapman = (
        leads is None
        and stated is None
        and len(cells) == len(STANDARD_LEADS)
        and (not header or set(keys) == set(STANDARD_LEADS))
    )
    if fs is None:
        hint = " (Chapman-Shaoxing files are 500 Hz)" if chapman else ""
        raise RecordError(
            path,
            f"a CSV file does not state its sampling rate; pass --fs HZ{hint} or start it with '# fs=HZ'",
        )
    if chapman:
        x = read_csv_signal(path)  # µV -> mV, reordered to the standard leads
        scale = UNITS[units.lower()] / UNITS["uv"] if units else 1.0
        return x * np.float32(scale), fs, STANDARD_LEADS
    names = list(leads) if leads else header
    if not names:
        raise RecordError(
            path, f"{len(cells)} unnamed columns; add a header row of lead names or pass --leads"
        )
    try:
        table = pd.read_csv(path, header=0 if header else None, dtype=np.float64, comment="#")
    except (ValueError, pd.errors.ParserError) as exc:
        raise RecordError(path, f"not a table of numbers ({exc})") from None
    if table.shape[1] != len(names):
        raise RecordError(path, f"{table.shape[1]} columns but {len(names)} lead names ({', '.join(names)})")
    return table.to_numpy(np.float32).T * np.float32(UNITS[(units or "mv").lower()]), fs, names


def _csv_preamble(path: Path) -> tuple[float | None, str]:
    """The rate a leading `# fs=500` comment states (or None) and the first line that is not a comment."""
    stated = None
    with path.open(errors="replace") as f:
        for line in f:
            if not line.lstrip().startswith("#"):
                if not line.strip():
                    break
                return stated, line
            match = _STATED_FS.match(line.strip())
            if match and stated is None:
                stated = float(match.group(1))
    raise RecordError(path, "empty file")


def _read_npy(path: Path, fs: float | None, leads: Sequence[str] | None, units: str | None):
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise RecordError(path, f"not a readable .npy array ({exc})") from None
    if not isinstance(x, np.ndarray):  # np.load opens an .npz archive whatever the name says
        x.close()
        raise RecordError(path, "is an .npz archive, not one .npy array; save the signal with np.save")
    if fs is None or not leads:
        raise RecordError(
            path, "a .npy array states neither rate nor leads; pass --fs HZ and --leads I,II,..."
        )
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or len(leads) not in x.shape:
        raise RecordError(
            path, f"array of shape {x.shape} ({x.dtype}) is not (leads, samples) for {len(leads)} lead(s)"
        )
    if x.shape[0] != len(leads):
        x = x.T  # (samples, leads)
    return check_samples(path, x, leads) * np.float32(UNITS[(units or "mv").lower()]), fs, list(leads)


def _read_edf(path: Path, units: str | None):
    import edfio

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            edf = edfio.read_bdf(path) if path.suffix.lower() == ".bdf" else edfio.read_edf(path)
    except Exception as exc:  # edfio raises several types for malformed files
        raise RecordError(path, f"not a readable EDF/BDF file ({exc})") from None
    short = [str(w.message) for w in caught if "truncated" in str(w.message) or "indicates" in str(w.message)]
    if short:  # edfio reads what is there and only warns; a cut-off recording must not pass for a whole one
        raise RecordError(path, f"truncated ({'; '.join(short)}); copy the whole file again")
    signals = [s for s in edf.signals if lead_key(s.label) is not None]
    if not signals:
        labels = ", ".join(s.label for s in edf.signals) or "none"
        raise RecordError(path, f"no ECG lead among its signals (labels: {labels})")
    rates = {s.sampling_frequency for s in signals}
    if len(rates) > 1:
        raise RecordError(
            path, f"ECG leads sampled at different rates ({', '.join(f'{r:g}' for r in rates)} Hz)"
        )
    rows = []
    for s in signals:
        unit = s.physical_dimension.strip() or units
        if not unit or unit.lower() not in UNITS:
            raise RecordError(path, f"signal {s.label!r}: unknown units {unit!r}; pass --units mV or uV")
        rows.append(np.asarray(s.data, dtype=np.float64) * UNITS[unit.lower()])
    return np.stack(rows).astype(np.float32), rates.pop(), [s.label for s in signals]
