"""Beats as model inputs: R peaks found by scipy's peak finder, beat windows gathered by tensor indexing.

Detection runs on a detached CPU copy (numpy and scipy), so a model that calls it inside `forward`
cannot be captured by torch.export; the gathering is plain indexing and differentiable in the
signal. A record where no R peak is found falls back to fixed windows tiled along the record, one
every beat window, so a flat or unusual record never stops an epoch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage, signal

QRS_BAND = (5.0, 15.0)  # Hz: where the QRS complex has most of its energy
MIN_RR_S = 0.3  # s: no two beats closer than a refractory period (200 bpm)


def qrs_envelope(x: np.ndarray, fs: float) -> np.ndarray:
    """Band-pass 5-15 Hz, squared slope summed over leads, smoothed over 0.1 s: (..., leads, n) -> (..., n)."""
    high = min(QRS_BAND[1], 0.45 * fs)
    sos = signal.butter(2, (QRS_BAND[0], high), btype="bandpass", fs=fs, output="sos")
    padlen = min(x.shape[-1] - 1, 3 * (2 * len(sos) + 1))
    filtered = signal.sosfiltfilt(sos, x, axis=-1, padlen=padlen)
    slope = np.square(np.diff(filtered, axis=-1, prepend=filtered[..., :1])).sum(axis=-2)
    return ndimage.uniform_filter1d(slope, size=max(1, round(0.1 * fs)), axis=-1)


def detect_r_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of the R peaks of one record (leads, n); empty when there are none (a flat record)."""
    if x.shape[-1] < 4:
        return np.zeros(0, dtype=np.int64)
    return envelope_peaks(qrs_envelope(np.asarray(x, dtype=np.float64), fs), fs)


def envelope_peaks(env: np.ndarray, fs: float) -> np.ndarray:
    """Peaks of a QRS envelope (n,) at least 0.3 s apart and above 30% of its 99th percentile."""
    level = np.percentile(env, 99)
    if not level > 0:
        return np.zeros(0, dtype=np.int64)
    peaks, _ = signal.find_peaks(env, height=0.3 * level, distance=max(1, round(MIN_RR_S * fs)))
    return peaks.astype(np.int64)


def fallback_centres(n_samples: int, window: int) -> np.ndarray:
    """Centres of fixed windows tiling a record where no R peak was found: one per `window` samples."""
    return np.arange(min(window // 2, n_samples // 2), max(n_samples, 1), window, dtype=np.int64)


def beat_centres(x: torch.Tensor, fs: float, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """R peaks of each record of (B, leads, n) as (B, N) centres and a (B, N) mask of real beats.

    Records with fewer beats than the batch's most repeat their centres to fill (mask False);
    records without any peak get `fallback_centres`.
    """
    n_samples = x.shape[-1]
    if n_samples < 4:
        envelopes = np.zeros((x.shape[0], n_samples))
    else:  # one scipy call filters the whole batch
        envelopes = qrs_envelope(x.detach().double().cpu().numpy(), fs)
    found = []
    for env in envelopes:
        peaks = envelope_peaks(env, fs)
        found.append(peaks if len(peaks) else fallback_centres(n_samples, window))
    n = max(len(p) for p in found)
    centres = torch.tensor(np.stack([np.resize(p, n) for p in found]), device=x.device)
    valid = torch.arange(n)[None, :] < torch.tensor([len(p) for p in found])[:, None]
    return centres, valid.to(x.device)


def gather_beats(x: torch.Tensor, centres: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Windows [c - before, c + after) around each centre: (B, leads, n), (B, N) -> (B, N, leads, W).

    The record is zero-padded, so windows that reach past either end keep their length.
    """
    padded = F.pad(x, (before, after))
    idx = centres[:, :, None] + torch.arange(before + after, device=x.device)  # (B, N, W), in padded coords
    b, leads = x.shape[:2]
    idx = idx[:, None].expand(b, leads, *idx.shape[1:])  # (B, leads, N, W)
    beats = padded.gather(2, idx.flatten(2)).view(idx.shape)
    return beats.transpose(1, 2)


def fill_padding(feats: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Replace padded beats of a (B, C, N) map by the mean of the record's real beats.

    The mean over beats, and so a mean-pooling head, then sees exactly the record's own beats,
    whatever other records share its batch.
    """
    w = valid[:, None, :].to(feats.dtype)
    mean = (feats * w).sum(-1, keepdim=True) / w.sum(-1, keepdim=True).clamp(min=1)
    return torch.where(valid[:, None, :], feats, mean)
