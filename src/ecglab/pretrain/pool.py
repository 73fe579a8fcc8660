"""The unlabelled pool: the training split of every prepared dataset, leads mapped into one order by name.

Built on prepared caches (`ecglab data prepare`), never on the raw files. A 12-lead record fills
every row; a CinC 2017 record (one lead, named `ECG` in its files, lead I here) fills row I and
the other rows are zeros, marked absent in `present`. The pool refuses to hold a validation or
test fold of a dataset that will be evaluated, and leaves out CinC 2020's copies of such a
dataset (its PTB-XL, CPSC 2018 and Chapman records), naming them in `left_out`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ecglab.data import DATASETS, get_reader
from ecglab.data.cache import PrepareSettings, default_cache_dir, prepare
from ecglab.data.cinc2020 import source_of
from ecglab.data.dataset import CachedSplit
from ecglab.data.leads import STANDARD_LEADS, canonical_lead
from ecglab.data.preprocess import normalize
from ecglab.paths import data_root

# CinC 2020's source databases that are copies of datasets ecglab reads on their own.
CINC2020_COPIES = {"PTB_XL": "ptbxl", "CPSC": "cpsc2018", "Chapman_Shaoxing": "chapman"}


def refuse_evaluated_folds(
    dataset: str, folds: Collection[int], evaluated: Mapping[str, Collection[int]], where: str | Path = ""
) -> None:
    """Raise if `folds` of `dataset` include a validation or test fold of an evaluation on it.

    `evaluated` maps each dataset to be evaluated on to its validation and test folds.
    """
    held = sorted(set(int(f) for f in folds) & set(evaluated.get(dataset, ())))
    if held:
        raise ValueError(
            f"{where or dataset}: the pool would hold fold {held[0]} of {dataset}, a validation or test "
            f"fold of an evaluation on {dataset} (folds {sorted(evaluated[dataset])}); prepare its cache "
            f"with those folds as val_fold/test_fold, or leave {dataset} out of the pool"
        )


def copy_of_evaluated(dataset: str, record_id: str, evaluated: Mapping[str, Collection[int]]) -> str | None:
    """The evaluated dataset a record is a copy of (CinC 2020's PTB-XL records, say), or None."""
    if dataset != "cinc2020":
        return None
    original = CINC2020_COPIES.get(source_of(record_id))
    return original if original in evaluated else None


class UnlabelledPool:
    """The training splits of several caches as one list of records, in the lead order `leads`.

    `caches` maps dataset names to prepared cache folders (one sampling rate for all).
    """

    def __init__(
        self,
        caches: Mapping[str, str | Path],
        evaluated: Mapping[str, Collection[int]] | None = None,
        leads: Sequence[str] = STANDARD_LEADS,
    ):
        evaluated = evaluated or {}
        self.leads = tuple(canonical_lead(name) for name in leads)
        self.splits: list[CachedSplit] = []
        self._lead_rows: list[np.ndarray] = []  # per source: its row for each pool lead, -1 if absent
        self.left_out: list[tuple[str, str]] = []
        sources, rows, patients = [], [], []
        for dataset, cache_dir in caches.items():
            split = self._open(dataset, cache_dir, evaluated)
            keep = []
            for row, record_id in enumerate(split.meta["record_id"]):
                original = copy_of_evaluated(dataset, record_id, evaluated)
                if original:
                    self.left_out.append(
                        (f"{dataset}/{record_id}", f"a copy of a {original} record under evaluation")
                    )
                else:
                    keep.append(row)
            sources += [len(self.splits)] * len(keep)
            rows += keep
            patients += [(dataset, p) for p in split.meta["patient_id"].iloc[keep]]
            self.splits.append(split)
        self._source, self._row = np.array(sources, dtype=np.int64), np.array(rows, dtype=np.int64)
        self.patient_ids = _patient_numbers(patients)

    def _open(self, dataset: str, cache_dir: str | Path, evaluated) -> CachedSplit:
        split = CachedSplit(cache_dir, "train")
        if split.manifest["dataset"] != dataset:
            raise ValueError(f"{cache_dir}: a cache of {split.manifest['dataset']}, not of {dataset}")
        if self.splits and split.fs != self.splits[0].fs:
            raise ValueError(
                f"{cache_dir}: prepared at {split.fs:g} Hz, the pool's other caches at {self.splits[0].fs:g} Hz; "
                "prepare every cache at one rate"
            )
        refuse_evaluated_folds(dataset, split.meta["fold"], evaluated, cache_dir)
        names = [canonical_lead(n, cache_dir) for n in split.manifest["lead_names"]]
        self._lead_rows.append(np.array([names.index(lead) if lead in names else -1 for lead in self.leads]))
        return split

    @property
    def fs(self) -> float:
        return self.splits[0].fs

    def __len__(self) -> int:
        return len(self._row)

    def name(self, i: int) -> str:
        """`dataset/record_id` of record i."""
        split = self.splits[self._source[i]]
        return f"{split.manifest['dataset']}/{split.meta['record_id'].iat[self._row[i]]}"

    def length(self, i: int) -> int:
        return int(self.splits[self._source[i]]._lengths[self._row[i]])

    def present(self, i: int) -> np.ndarray:
        """Which of the pool's leads record i has, (leads,) bool."""
        return self._lead_rows[self._source[i]] >= 0

    def record(self, i: int) -> np.ndarray:
        """The whole record i, (pool leads, samples); absent leads are zeros."""
        return self._to_pool_leads(i, self.splits[self._source[i]].record(self._row[i]))

    def window(self, i: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """A random window of n samples of record i, (pool leads, n); a shorter record is padded."""
        return self._to_pool_leads(i, self.splits[self._source[i]].window(self._row[i], n, "random", rng))

    def _to_pool_leads(self, i: int, x: np.ndarray) -> np.ndarray:
        lead_rows = self._lead_rows[self._source[i]]
        out = np.zeros((len(self.leads), x.shape[-1]), dtype=np.float32)
        out[lead_rows >= 0] = x[lead_rows[lead_rows >= 0]]
        return out

    @classmethod
    def from_data_root(
        cls,
        settings: PrepareSettings = PrepareSettings(),
        evaluated: Mapping[str, Collection[int]] | None = None,
        root: str | Path | None = None,
        datasets: Sequence[str] | None = None,
        workers: int = 0,
    ) -> UnlabelledPool:
        """The pool of every dataset under the data root (or `datasets`), preparing caches that are missing.

        `prepare` is incremental: an up-to-date cache is only checked, not rebuilt.
        """
        root = Path(root) if root is not None else data_root()
        names = datasets or [name for name in DATASETS if (root / name).is_dir()]
        caches = {}
        for name in names:
            reader = get_reader(name, root / name, settings.fs)
            caches[name] = default_cache_dir(name, settings)
            prepare(reader, caches[name], settings, workers)
        return cls(caches, evaluated)


def _patient_numbers(patients: list[tuple[str, object]]) -> np.ndarray:
    """One integer per (dataset, patient id) pair, -1 where the id is unknown."""
    numbers, out = {}, np.full(len(patients), -1, dtype=np.int64)
    for i, (dataset, patient) in enumerate(patients):
        if patient is None or (isinstance(patient, float) and np.isnan(patient)) or patient == "":
            continue
        out[i] = numbers.setdefault((dataset, str(patient)), len(numbers))
    return out


class PoolWindows(Dataset):
    """(x, present) pairs for CPC and ST-MEM: a random z-scored window of `samples` from each pool record.

    A record shorter than `samples` is left out and named with its length in `skipped`. Windows
    are drawn per (seed, epoch, item), so they are reproducible anywhere, as WindowDataset's.
    """

    def __init__(self, pool: UnlabelledPool, samples: int, seed: int = 0):
        self.pool, self.samples, self.seed, self.epoch = pool, samples, seed, 0
        self.keep = [i for i in range(len(pool)) if pool.length(i) >= samples]
        self.skipped = [
            (pool.name(i), f"{pool.length(i)} samples; windows of {samples} needed")
            for i in range(len(pool))
            if pool.length(i) < samples
        ]

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, k: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, k = k if isinstance(k, tuple) else (self.epoch, k)  # EpochSampler sends (epoch, k)
        i = self.keep[k]
        rng = np.random.default_rng((self.seed, epoch, int(k)))
        x = normalize(self.pool.window(i, self.samples, rng))
        return torch.from_numpy(x), torch.from_numpy(self.pool.present(i))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
