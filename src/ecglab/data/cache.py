"""`prepare`: decode a dataset once into a cache that training memory-maps.

A cache folder holds, per split, one float32 array `<split>.npy` of shape (samples, leads):
the split's records resampled, filtered and concatenated in time (a window is then one
contiguous slice); `metadata.csv` with each record's split, offset, length, fold and raw
labels; and `manifest.json` with the settings, a content hash of every input file, the
counts, and every skipped record with its reason. Records shorter than the window are
zero-padded to it; longer ones are kept whole so training can crop anywhere.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecglab import __version__
from ecglab.atomic import file_lock
from ecglab.data.base import SPLITS, Reader, split_of
from ecglab.data.errors import RecordError
from ecglab.data.preprocess import FILTERS, apply_filter, fit_length, resample

CACHE_FORMAT = 1


@dataclass(frozen=True)
class PrepareSettings:
    fs: float = 100.0
    seconds: float = 10.0
    filter: str = "none"
    val_fold: int = 9
    test_fold: int = 10

    def __post_init__(self):
        if self.filter not in FILTERS:
            raise ValueError(f"unknown filter {self.filter!r}; choose one of {', '.join(FILTERS)}")
        if self.fs <= 0 or self.seconds <= 0:
            raise ValueError(f"fs and seconds must be positive, not {self.fs} and {self.seconds}")


def content_hash(files: list[Path], root: Path) -> str:
    """SHA-256 over every file's relative path and SHA-256, in sorted order."""
    total = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        total.update(f"{path.relative_to(root) if path.is_relative_to(root) else path}\0{digest}\n".encode())
    return total.hexdigest()


_WORKER_READER: Reader | None = None


def _decode(args: tuple[str, PrepareSettings]) -> tuple[str, np.ndarray | None, str | None]:
    """Load, resample, filter and pad one record; any failure becomes a reason string.

    A RecordError gives its own words; anything else a corrupt file makes a library raise is named
    with its type, so one bad record never stops the build.
    """
    record_id, settings = args
    reader = _WORKER_READER
    try:
        x = reader.load_signal(record_id)
        fs_in = float(reader.records.at[record_id, "fs"])
        x = apply_filter(resample(x, fs_in, settings.fs), settings.fs, settings.filter)
        n = round(settings.seconds * settings.fs)
        if x.shape[-1] < n:
            x = fit_length(x, n, "centre")
        return record_id, np.ascontiguousarray(x.T, dtype=np.float32), None
    except RecordError as exc:
        return record_id, None, exc.problem
    except Exception as exc:
        return record_id, None, f"could not be decoded ({type(exc).__name__}: {exc})"


def _write_npy(raw_path: Path, npy_path: Path, n_rows: int, n_cols: int) -> None:
    """Wrap a raw float32 file in an .npy header without holding it in memory."""
    header = np.lib.format.header_data_from_array_1_0(np.empty((0, n_cols), np.float32))
    header["shape"] = (n_rows, n_cols)
    with open(npy_path, "wb") as out, open(raw_path, "rb") as src:
        np.lib.format.write_array_header_1_0(out, header)
        shutil.copyfileobj(src, out, length=16 << 20)
    raw_path.unlink()


def is_up_to_date(out: Path, manifest: dict) -> bool:
    path = out / "manifest.json"
    if not path.is_file():
        return False
    old = json.loads(path.read_text())
    same = all(old.get(k) == manifest[k] for k in ("format", "dataset", "settings", "inputs_hash", "reader"))
    return same and all((out / f"{s}.npy").is_file() for s in SPLITS) and (out / "metadata.csv").is_file()


def prepare(
    reader: Reader,
    out: Path,
    settings: PrepareSettings = PrepareSettings(),
    workers: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[dict, bool]:
    """Build (or confirm) the cache of `reader` in `out`; returns the manifest and whether it was built.

    Records with a signal file are decoded in `workers` processes (0: one per core); any
    RecordError skips that record, with its reason in the manifest, and the rest go on.
    """
    out = Path(out)
    records = reader.records[reader.records["path"] != ""]
    manifest = {
        "format": CACHE_FORMAT,
        "dataset": reader.name,
        "reader": {"root": str(reader.root), "options": getattr(reader, "options", {})},
        "settings": asdict(settings),
        "inputs_hash": content_hash(reader.input_files(), reader.root),
    }
    if is_up_to_date(out, manifest):  # a read-only cache that is up to date needs no lock
        return json.loads((out / "manifest.json").read_text()), False
    with file_lock(out):  # two bench shards reaching one dataset build it once, not over each other
        if is_up_to_date(out, manifest):
            return json.loads((out / "manifest.json").read_text()), False
        return _build_cache(reader, records, settings, out, manifest, workers, on_progress), True


def _build_cache(reader, records, settings, out: Path, manifest: dict, workers: int, on_progress) -> dict:
    """Build the cache in `<out>.partial` and rename it onto `out` when whole."""
    started = time.perf_counter()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        manifest = _build(reader, records, settings, tmp, manifest, workers, on_progress)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no partial cache is left behind
        raise
    manifest["seconds_to_build"] = round(time.perf_counter() - started, 2)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return manifest


def _build(reader, records, settings, tmp: Path, manifest: dict, workers: int, on_progress) -> dict:
    """Decode every record into `tmp`; the manifest with the counts and skipped records."""
    splits = split_of(records["fold"], settings.val_fold, settings.test_fold)
    skipped = [
        dict(zip(("record_id", "path", "reason"), row, strict=True))
        for row in reader.skipped.itertuples(index=False)
    ]
    rows, sinks, offsets = [], {s: open(tmp / f"{s}.f32", "wb") for s in SPLITS}, dict.fromkeys(SPLITS, 0)
    n_leads = len(reader.lead_names)
    global _WORKER_READER
    _WORKER_READER = reader
    jobs = [(rid, settings) for rid in records.index]
    ctx = multiprocessing.get_context("fork")
    try:
        with ctx.Pool(workers or os.cpu_count()) as pool:
            for done, (rid, x, problem) in enumerate(pool.imap(_decode, jobs, chunksize=16), start=1):
                if problem is not None:
                    skipped.append({"record_id": rid, "path": records.at[rid, "path"], "reason": problem})
                else:
                    split = splits[records.index.get_loc(rid)]
                    sinks[split].write(x.tobytes())
                    rows.append((rid, split, offsets[split], len(x), records.at[rid, "fold"], records.at[rid, "patient_id"],
                                 json.dumps(_jsonable(records.at[rid, "labels"]))))  # fmt: skip
                    offsets[split] += len(x)
                if on_progress:
                    on_progress(done, len(jobs))
    finally:
        _WORKER_READER = None
        for f in sinks.values():
            f.close()
    for split in SPLITS:
        _write_npy(tmp / f"{split}.f32", tmp / f"{split}.npy", offsets[split], n_leads)
    meta = pd.DataFrame(
        rows, columns=["record_id", "split", "offset", "length", "fold", "patient_id", "labels"]
    )
    meta.to_csv(tmp / "metadata.csv", index=False)
    manifest |= {
        "ecglab_version": __version__,
        "lead_names": list(reader.lead_names),
        "splits": {s: {"records": int((meta["split"] == s).sum()), "samples": offsets[s]} for s in SPLITS},
        "skipped": skipped,
        "missing_signal": reader.records.index[reader.records["path"] == ""].tolist(),
    }
    return manifest


def _jsonable(labels):
    if isinstance(labels, dict):
        return labels
    if isinstance(labels, str):
        return labels
    return list(labels)


def default_cache_dir(dataset: str, settings: PrepareSettings) -> Path:
    """`$ECGLAB_CACHE/<dataset>/<fs>hz_<seconds>s_<filter>`."""
    from ecglab.paths import cache_root

    return cache_root() / dataset / f"{settings.fs:g}hz_{settings.seconds:g}s_{settings.filter}"
