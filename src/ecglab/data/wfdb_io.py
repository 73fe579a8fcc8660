"""WFDB records as real files have them: `.hea` + `.dat` (PTB-XL) or `.hea` + `.mat` (CinC 2017/2020/2021).

The header is parsed here rather than by `wfdb.rdheader` because published CinC headers carry
quirks that it rejects (Georgia's record line names `E07500.mat`); format-16 data and the CinC
`.mat` files are decoded with numpy/scipy, every other WFDB format through `wfdb.rdrecord`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io
import wfdb

from ecglab.data.errors import RecordError

_GAIN = re.compile(r"^([-+\d.eE]+)(?:\(([-+\d]+)\))?(?:/(\S+))?$")
FORMATS = (
    "8",
    "16",
    "24",
    "32",
    "61",
    "80",
    "160",
    "212",
    "310",
    "311",
    "508",
    "516",
    "524",
)  # what wfdb decodes
_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}


@dataclass(frozen=True)
class Signal:
    file: str
    fmt: str
    byte_offset: int
    gain: float
    baseline: int
    units: str
    checksum: int | None
    name: str


@dataclass(frozen=True)
class Header:
    path: Path
    n_sig: int
    fs: float
    n_samples: int
    signals: tuple[Signal, ...]
    comments: dict[str, str] = field(default_factory=dict)

    @property
    def lead_names(self) -> list[str]:
        return [s.name for s in self.signals]

    @property
    def data_path(self) -> Path:
        return self.path.with_name(self.signals[0].file)


def _number(text: str, kind, path: Path, what: str, line_no: int):
    """`kind(text)` (int or a finite float); a RecordError naming the header line and the field otherwise."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (kind is float and not np.isfinite(value)):
        raise RecordError(
            path, f"line {line_no}: {what} {text!r} is not a {'whole ' if kind is int else ''}number"
        )
    return value


def _signal_file(name: str, path: Path, line_no: int) -> str:
    """The signal file a header names, which must sit beside the header (no folders, no `..`)."""
    if "/" in name or "\\" in name or name in (".", ".."):
        raise RecordError(
            path,
            f"line {line_no}: names its signal file {name!r} outside its own folder; "
            "a header's signal file must sit beside it",
        )
    return name


def _parse_signal(line: str, path: Path, line_no: int) -> Signal:
    tok = line.split()
    if len(tok) < 2:
        raise RecordError(path, f"line {line_no}: malformed signal line {line!r}")
    fmt, _, offset = tok[1].partition("+")
    fmt = re.split(r"[x:]", fmt)[0]
    if fmt not in FORMATS:
        raise RecordError(
            path, f"line {line_no}: signal format {fmt!r} is not a WFDB format ({', '.join(FORMATS)})"
        )
    gain, baseline, units = 200.0, None, "mV"
    if len(tok) > 2:
        m = _GAIN.match(tok[2])
        if not m:
            raise RecordError(path, f"line {line_no}: malformed gain {tok[2]!r}")
        gain = _number(m.group(1), float, path, "ADC gain", line_no) or 200.0
        baseline = _number(m.group(2), int, path, "baseline", line_no) if m.group(2) else None
        units = m.group(3) or "mV"
    adc_zero = _number(tok[4], int, path, "ADC zero", line_no) if len(tok) > 4 else 0
    checksum = _number(tok[6], int, path, "checksum", line_no) if len(tok) > 6 else 0
    name = " ".join(tok[8:]) if len(tok) > 8 else f"sig{len(tok)}"
    return Signal(
        _signal_file(tok[0], path, line_no), fmt, _number(offset or "0", int, path, "byte offset", line_no),
        gain, adc_zero if baseline is None else baseline, units,
        checksum or None,  # 0 means "not computed" in converted files (CinC 2017 writes 0 throughout)
        name,
    )  # fmt: skip


def read_header(hea_path: str | Path) -> Header:
    """Parse a `.hea` file; tolerant of the CinC quirks, strict about what the data needs.

    Every malformed field is a RecordError naming the header, the line and the field.
    """
    path = Path(hea_path)
    try:
        text = path.read_text(encoding="latin-1")
    except FileNotFoundError:
        raise RecordError(path, "header file is missing") from None
    numbered = [(i, ln.strip()) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    body = [(i, ln) for i, ln in numbered if not ln.startswith("#")]
    if not body:
        raise RecordError(path, "empty header")
    line_no, record_line = body[0]
    rec = record_line.split()
    if len(rec) < 2:
        raise RecordError(
            path, f"line {line_no}: record line {record_line!r} does not give the number of signals"
        )
    n_sig = _number(rec[1], int, path, "number of signals", line_no)
    fs = (
        _number(rec[2].split("/")[0].split("(")[0], float, path, "sampling rate", line_no)
        if len(rec) > 2
        else 250.0
    )
    n_samples = _number(rec[3], int, path, "number of samples", line_no) if len(rec) > 3 else 0
    if n_sig < 1:
        raise RecordError(path, f"line {line_no}: says {n_sig} signals; a record needs at least one")
    if fs <= 0 or n_samples < 0:
        raise RecordError(
            path, f"line {line_no}: sampling rate {fs:g} Hz and {n_samples} samples are not possible"
        )
    signals = tuple(_parse_signal(ln, path, i) for i, ln in body[1 : 1 + n_sig])
    if len(signals) != n_sig:
        raise RecordError(path, f"record line says {n_sig} signals, header describes {len(signals)}")
    comments = {}
    for _, ln in numbered:
        if ln.startswith("#") and ":" in ln:
            key, _, value = ln.lstrip("#").partition(":")
            comments[key.strip()] = value.strip()
    return Header(path, n_sig, fs, n_samples, signals, comments)


def read_mat_variable(path: Path, name: str, kind: str = "variable", hint: str = ""):
    """One variable of a MATLAB file; a RecordError names the file and what it holds instead."""
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise RecordError(path, f"not a readable MATLAB file ({exc})") from None
    if name not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise RecordError(path, f"no {kind} {name!r} (found: {found}){hint}")
    return mat[name]


def _digital(header: Header) -> np.ndarray:
    """The stored integers, (leads, samples)."""
    data_path = header.data_path
    if not data_path.exists():
        raise RecordError(data_path, "signal file named by the header is missing")
    if data_path.suffix == ".mat":
        return np.atleast_2d(read_mat_variable(data_path, "val", "variable"))
    if header.signals[0].fmt == "16" and len({s.file for s in header.signals}) == 1:
        offset, size = header.signals[0].byte_offset, data_path.stat().st_size
        if offset > size:
            raise RecordError(
                data_path, f"the header's byte offset {offset} lies past the end of this {size}-byte file"
            )
        raw = np.fromfile(data_path, dtype="<i2", offset=offset)
        if header.n_samples and raw.size < header.n_sig * header.n_samples:
            raise RecordError(
                data_path,
                f"truncated: holds {raw.size // header.n_sig} of the {header.n_samples} samples the header gives",
            )
        if raw.size % header.n_sig:
            raise RecordError(data_path, f"{raw.size} values do not split into {header.n_sig} signals")
        return raw.reshape(-1, header.n_sig).T
    try:
        rec = wfdb.rdrecord(str(header.path.with_suffix("")), physical=False)
    except Exception as exc:
        raise RecordError(data_path, f"wfdb could not read it ({exc})") from None
    return rec.d_signal.T


def read_record(hea_path: str | Path) -> tuple[np.ndarray, Header]:
    """float32 (leads, samples) in mV and the parsed header; a RecordError for any disagreement."""
    header = read_header(hea_path)
    digital = _digital(header)
    if digital.shape[0] != header.n_sig:
        raise RecordError(
            header.data_path, f"holds {digital.shape[0]} signals; the header says {header.n_sig}"
        )
    if header.n_samples and digital.shape[1] != header.n_samples:
        raise RecordError(
            header.data_path,
            f"holds {digital.shape[1]} samples per signal; the header says {header.n_samples}",
        )
    for row, sig in zip(digital, header.signals, strict=True):
        if sig.checksum is not None and (int(row.astype(np.int64).sum()) - sig.checksum) % 65536:
            raise RecordError(header.data_path, f"lead {sig.name}: data checksum disagrees with the header's")
    baseline = np.array([s.baseline for s in header.signals], dtype=np.float32)[:, None]
    scale = np.array([_units_to_mv(s.units, header.path) / s.gain for s in header.signals], dtype=np.float32)[
        :, None
    ]
    x = (digital.astype(np.float32) - baseline) * scale
    if digital.dtype == np.int16:
        x[digital == -32768] = np.nan  # WFDB's "invalid sample" value for 16-bit formats
    return x, header


def _units_to_mv(units: str, path: Path) -> float:
    try:
        return _TO_MV[units.lower()]
    except KeyError:
        raise RecordError(path, f"unknown signal units {units!r}") from None
