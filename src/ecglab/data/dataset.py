"""Reading a prepared cache: windows of records for training and evaluation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from ecglab.data.labels import Task, label_matrix
from ecglab.data.preprocess import fit_length, normalize, window_starts


class CachedSplit:
    """One split of a cache: the memory-mapped signal array and its records' metadata."""

    def __init__(self, cache_dir: str | Path, split: str):
        self.dir = Path(cache_dir)
        manifest_path = self.dir / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{self.dir}: no manifest.json; run `ecglab data prepare` first")
        self.manifest = json.loads(manifest_path.read_text())
        self.fs = float(self.manifest["settings"]["fs"])
        meta = pd.read_csv(self.dir / "metadata.csv", dtype={"record_id": str})
        self.meta = meta[meta["split"] == split].reset_index(drop=True)
        self.signals = np.load(self.dir / f"{split}.npy", mmap_mode="r")
        self._offsets = self.meta["offset"].to_numpy()
        self._lengths = self.meta["length"].to_numpy()

    def __len__(self) -> int:
        return len(self.meta)

    def labels(self, task: Task) -> np.ndarray:
        raw = [_from_json(s) for s in self.meta["labels"]]
        return label_matrix(raw, task)

    def record(self, i: int) -> np.ndarray:
        """The whole record i, (leads, samples)."""
        start = self._offsets[i]
        return self.signals[start : start + self._lengths[i]].T

    def window(
        self, i: int, n: int, mode: str = "centre", rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """A window of `n` samples of record i, (leads, n), as a fresh float32 array."""
        length = self._lengths[i]
        if length <= n:
            return np.ascontiguousarray(fit_length(self.record(i), n, mode, rng))
        if mode == "centre":
            start = (length - n) // 2
        elif mode == "random":
            start = int((rng or np.random.default_rng()).integers(0, length - n + 1))
        else:
            start = 0
        offset = self._offsets[i] + start
        return np.ascontiguousarray(self.signals[offset : offset + n].T)


class WindowDataset(Dataset):
    """(x, y) pairs from a cached split, restricted to the records that have a class of `task`.

    `mode` is `random` (a random crop per access: training), `centre` (one window per record)
    or `sliding` (every window of every record, for aggregated evaluation; `record_index`
    maps each item back to its record). `transform(x, rng)` augments a normalised window.
    `leads` keeps those rows of every window (positions in the cache's lead order; None: all).
    An item is an index, or `(epoch, index)` from `EpochSampler`: the randomness of an item
    depends on (seed, epoch, index) only, never on which process or loader worker reads it.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        split: str,
        task: Task,
        seconds: float | None = None,
        mode: str = "random",
        stride_seconds: float | None = None,
        norm: str = "zscore",
        seed: int = 0,
        transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        leads: list[int] | None = None,
    ):
        self.split, self.task, self.leads = CachedSplit(cache_dir, split), task, leads
        y = self.split.labels(task)
        self.keep = np.flatnonzero(y.any(axis=1))
        self.y = y[self.keep]
        seconds = seconds or float(self.split.manifest["settings"]["seconds"])
        self.n = round(seconds * self.split.fs)
        self.mode, self.norm, self.transform = mode, norm, transform
        self.seed, self.epoch = seed, 0
        if mode == "sliding":
            stride = round((stride_seconds or seconds) * self.split.fs)
            items = [
                (k, s)
                for k, i in enumerate(self.keep)
                for s in window_starts(self.split._lengths[i], self.n, stride)
            ]
            self.items = np.array(items, dtype=np.int64).reshape(-1, 2)
            self.record_index = self.items[:, 0]
        else:
            self.record_index = np.arange(len(self.keep))

    def __len__(self) -> int:
        return len(self.record_index)

    def restrict(self, positions: np.ndarray) -> None:
        """Keep only these records (positions among the current ones): training on a label subset."""
        if self.mode == "sliding":
            raise ValueError("restrict() applies to random or centre windows, not sliding evaluation")
        self.keep, self.y = self.keep[positions], self.y[positions]
        self.record_index = np.arange(len(self.keep))

    @property
    def patient_ids(self) -> list:
        """Each kept record's patient id (NaN where the dataset has none)."""
        return self.split.meta["patient_id"].iloc[self.keep].tolist()

    def __getitem__(self, idx: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, idx = idx if isinstance(idx, tuple) else (self.epoch, idx)
        if self.mode == "sliding":
            k, start = self.items[idx]
            i = self.keep[k]
            rec = self.split.record(i)
            x = np.ascontiguousarray(fit_length(rec[:, start : start + self.n], self.n, "start"))
        else:
            k = idx
            x = self.split.window(self.keep[k], self.n, self.mode, self._rng(epoch, idx))
        if self.leads is not None:
            x = x[self.leads]
        x = normalize(x, self.norm)
        if self.transform is not None:
            x = self.transform(x, self._rng(epoch, idx, 1))
        return torch.from_numpy(x), torch.from_numpy(self.y[k])

    def set_epoch(self, epoch: int) -> None:
        """Random crops and augmentations are drawn per (seed, epoch, item): reproducible anywhere."""
        self.epoch = epoch

    def _rng(self, epoch: int, idx: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng((self.seed, int(epoch), int(idx), stream))


class EpochSampler(Sampler):
    """Yields `(epoch, index)` from a sampler with `set_epoch` (DistributedSampler).

    A persistent loader worker keeps the dataset copy it started with, so an epoch set on the
    main process's dataset never reaches it; the epoch travels with each index instead.
    """

    def __init__(self, sampler):
        self.sampler, self.epoch = sampler, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        return ((self.epoch, int(i)) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def _from_json(text: str):
    value = json.loads(text)
    return tuple(value) if isinstance(value, list) else value
