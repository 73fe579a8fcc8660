"""How fast `prepare` builds a cache and how many windows per second training can read from it.

    python benchmarks/data_speed.py [--dataset ptbxl] [--fs 100] [--windows 20000] [--workers 0,4,8]

Prints the prepare wall time and peak memory (this process and its decoding workers, from
getrusage), then random-crop windows/s read through `WindowDataset` on one core, with and
without per-lead z-scoring, then windows/s of shuffled batches of 64 through a DataLoader with
each number of `--workers` (0: in the main process), to set beside the samples/s a model trains
at (benchmarks/speed.py). Nothing here is a test: numbers vary between machines.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ecglab.data import get_reader
from ecglab.data.cache import PrepareSettings, prepare
from ecglab.data.dataset import WindowDataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ptbxl")
    parser.add_argument("--task", default=None)
    parser.add_argument("--fs", type=float, default=100.0)
    parser.add_argument("--windows", type=int, default=20000)
    parser.add_argument("--workers", default="0", help="comma-separated DataLoader worker counts, e.g. 0,4,8")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    workers = [int(n) for n in args.workers.split(",")]
    torch.set_num_threads(1)

    reader = get_reader(args.dataset, fs=args.fs)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cache"
        start = time.perf_counter()
        manifest, _ = prepare(reader, out, PrepareSettings(fs=args.fs))
        seconds = time.perf_counter() - start
        peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        n = sum(s["records"] for s in manifest["splits"].values())
        print(f"prepare {args.dataset} at {args.fs:g} Hz: {n} records in {seconds:.1f} s "
              f"({n / seconds:.0f} records/s, records table and hashing included)")  # fmt: skip
        print(
            f"peak resident memory: main process {peak_self:.0f} MiB, largest worker {peak_workers:.0f} MiB"
        )
        for norm in ("none", "zscore"):
            ds = WindowDataset(out, "train", reader.task(args.task), seconds=10, mode="random", norm=norm)
            idx = np.random.default_rng(0).integers(0, len(ds), args.windows)
            start = time.perf_counter()
            for i in idx:
                ds[int(i)]
            rate = args.windows / (time.perf_counter() - start)
            print(f"random 10 s windows read on one core, norm={norm}: {rate:,.0f} windows/s")
        ds = WindowDataset(out, "train", reader.task(args.task), seconds=10, mode="random", norm="zscore")
        for n in workers:
            rate = loader_rate(ds, n, args.batch, args.windows)
            print(f"DataLoader, {n} worker(s), batches of {args.batch}, norm=zscore: {rate:,.0f} windows/s")


def loader_rate(ds: WindowDataset, workers: int, batch: int, windows: int) -> float:
    """Windows/s of shuffled batches through a DataLoader (persistent workers, as training keeps
    them), after the workers have started."""
    loader = DataLoader(
        ds,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )
    if len(loader) < 2:
        raise SystemExit(f"{len(ds)} training windows make fewer than two batches of {batch}; use --batch")
    seen, start = 0, None
    while seen < windows:
        for x, _ in loader:
            if start is None:  # the first batch pays for starting the workers
                start = time.perf_counter()
                continue
            seen += len(x)
            if seen >= windows:
                break
    return seen / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
