"""Overlapping sliding windows over time, the segmentation several literature models start from."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sliding_windows(x: torch.Tensor, length: int, step: int) -> torch.Tensor:
    """Windows of `length` every `step` samples along the last axis: (..., n) -> (..., S, length).

    The end is zero-padded to a whole window, so no sample is dropped and a record shorter than one
    window gives one window.
    """
    n = x.shape[-1]
    count = max(0, -(-(n - length) // step)) + 1
    x = F.pad(x, (0, (count - 1) * step + length - n))
    return x.unfold(-1, length, step)
