"""CLOCS's views of a record (Kiyasseh et al. 2021): segments in time, leads in space, or both.

- CMSC: adjacent non-overlapping segments of one record, each with all its leads.
- CMLC: the record's leads over one segment, each lead a view of one channel.
- CMSMLC: every lead of every segment, each a view of one channel.

A record that cannot give the views (too short, or too few leads) is found before training by
`views_problem` and skipped by name; `make_views` raises `ViewsError` naming it, never a shape
error inside a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ecglab.data.preprocess import normalize
from ecglab.pretrain.pool import UnlabelledPool

VARIANTS = ("cmsc", "cmlc", "cmsmlc")


class ViewsError(ValueError):
    """A record that cannot give the views a recipe asks for; names the record and the reason."""

    def __init__(self, record: str, problem: str):
        self.record, self.problem = record, problem
        super().__init__(f"{record}: {problem}")


@dataclass(frozen=True)
class ViewSpec:
    """Which views: the variant, the segment length in samples, how many segments, which lead rows.

    `leads` are row indices of the record (the pool's lead order); None means every row, which for
    CMSC includes rows a record lacks (zeros: a single-lead record joins a 12-lead pool), while a
    lead that is a view (CMLC, CMSMLC) must be present. CLOCS cut
    each record into 2 adjacent halves; at 100 Hz a 10-s record gives two 500-sample segments.
    """

    variant: str = "cmsc"
    segment_samples: int = 500
    segments: int = 2
    leads: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown CLOCS variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.segment_samples < 1 or self.segments < 1:
            raise ValueError(
                f"segment_samples and segments must be positive, not {self.segment_samples}, {self.segments}"
            )
        if self.variant == "cmsc" and self.segments < 2:
            raise ValueError("CMSC contrasts segments: it needs segments >= 2")

    @property
    def segments_used(self) -> int:
        """How many adjacent segments one record gives (CMLC takes one)."""
        return 1 if self.variant == "cmlc" else self.segments

    def lead_rows(self, n_rows: int) -> list[int]:
        return list(range(n_rows)) if self.leads is None else list(self.leads)


def views_problem(length: int, present: Sequence[bool], spec: ViewSpec) -> str | None:
    """Why a record of `length` samples with leads `present` (one flag per row) cannot give the views, or None."""
    need = spec.segments_used * spec.segment_samples
    if length < need:
        return f"{length} samples; {spec.variant.upper()} needs {need} ({spec.segments_used} x {spec.segment_samples})"
    rows = spec.lead_rows(len(present))
    missing = [r for r in rows if r >= len(present) or not present[r]]
    if spec.variant == "cmsc" and spec.leads is None:  # segments keep every row, absent ones zero
        missing = [] if any(present) else rows
    if missing:
        return f"lacks lead row(s) {', '.join(map(str, missing))} that the views use"
    if spec.variant != "cmsc" and len(rows) < 2:
        return f"{len(rows)} lead(s); {spec.variant.upper()} contrasts leads and needs at least 2"
    return None


def make_views(
    x: np.ndarray,
    spec: ViewSpec,
    rng: np.random.Generator,
    record: str = "record",
    present: Sequence[bool] | None = None,
) -> np.ndarray:
    """The views of x (leads, samples) as (views, channels, segment_samples), from a random start.

    CMSC gives (segments, leads, S); CMLC (leads, 1, S); CMSMLC (segments * leads, 1, S), segment-major.
    """
    present = [True] * x.shape[0] if present is None else present
    problem = views_problem(x.shape[-1], present, spec)
    if problem:
        raise ViewsError(record, problem)
    span = spec.segments_used * spec.segment_samples
    start = int(rng.integers(0, x.shape[-1] - span + 1))
    rows = spec.lead_rows(x.shape[0])
    segments = x[rows, start : start + span].reshape(len(rows), spec.segments_used, spec.segment_samples)
    segments = segments.transpose(1, 0, 2)  # (segments, leads, S)
    if spec.variant == "cmsc":
        return np.ascontiguousarray(segments)
    return np.ascontiguousarray(segments.reshape(-1, 1, spec.segment_samples))


class ContrastiveViews(Dataset):
    """(views, patient id) for every pool record that can give the views; the others are listed in `skipped`.

    Each view is z-scored per lead, as CLOCS normalises each view. Views are drawn per (seed, epoch,
    item). Patient ids are the pool's: -1 where unknown, which `clocs_loss` treats as a patient alone.
    """

    def __init__(self, pool: UnlabelledPool, spec: ViewSpec, seed: int = 0):
        self.pool, self.spec, self.seed, self.epoch = pool, spec, seed, 0
        self.keep: list[int] = []
        self.skipped: list[tuple[str, str]] = []
        for i in range(len(pool)):
            problem = views_problem(pool.length(i), pool.present(i), spec)
            if problem:
                self.skipped.append((pool.name(i), problem))
            else:
                self.keep.append(i)

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, k: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, k = k if isinstance(k, tuple) else (self.epoch, k)  # EpochSampler sends (epoch, k)
        i = self.keep[k]
        rng = np.random.default_rng((self.seed, epoch, int(k)))
        views = make_views(self.pool.record(i), self.spec, rng, self.pool.name(i), self.pool.present(i))
        return torch.from_numpy(normalize(views)), torch.tensor(self.pool.patient_ids[i])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
