"""Signal preprocessing, one implementation of each step; arrays are (leads, samples)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import scipy.ndimage
import scipy.signal

FILTERS = ("none", "bandpass", "baseline")
WINDOW_MODES = ("centre", "random", "start")


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling with scipy's anti-aliasing FIR filter."""
    if fs_in == fs_out:
        return x.astype(np.float32, copy=False)
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    y = scipy.signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    return y.astype(np.float32, copy=False)


def bandpass(x: np.ndarray, fs: float, low: float = 0.5, high: float = 40.0, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis.

    0.5 Hz removes baseline wander without flattening ST segments; the upper edge is kept
    below Nyquist so the filter stays valid at 100 Hz.
    """
    high = min(high, 0.45 * fs)
    sos = scipy.signal.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    return scipy.signal.sosfiltfilt(sos, x, axis=-1).astype(np.float32)


def remove_baseline(x: np.ndarray, fs: float) -> np.ndarray:
    """Subtract the baseline estimated by 200 ms then 600 ms median filters.

    Median filters follow the wander without the phase or ringing of a high-pass filter,
    leaving the P-QRS-T shape intact.
    """
    k1 = int(0.2 * fs) | 1
    k2 = int(0.6 * fs) | 1
    base = scipy.ndimage.median_filter(x, size=(1, k1), mode="nearest")
    base = scipy.ndimage.median_filter(base, size=(1, k2), mode="nearest")
    return (x - base).astype(np.float32)


def apply_filter(x: np.ndarray, fs: float, name: str = "none") -> np.ndarray:
    if name == "none":
        return x
    if name == "bandpass":
        return bandpass(x, fs)
    if name == "baseline":
        return remove_baseline(x, fs)
    raise ValueError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}")


def fit_length(
    x: np.ndarray, n: int, mode: str = "centre", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Crop or zero-pad the last axis to `n` samples.

    `centre` crops or pads equally on both sides, `start` keeps the beginning and pads at the
    end, `random` crops at a uniformly random offset (and pads like `centre`).
    """
    length = x.shape[-1]
    if length < n:
        left = 0 if mode == "start" else (n - length) // 2
        pad = [(0, 0)] * (x.ndim - 1) + [(left, n - length - left)]
        return np.pad(x, pad)
    if mode == "centre":
        start = (length - n) // 2
    elif mode == "random":
        start = int((rng or np.random.default_rng()).integers(0, length - n + 1))
    elif mode == "start":
        start = 0
    else:
        raise ValueError(f"unknown window mode {mode!r}; choose one of {', '.join(WINDOW_MODES)}")
    return x[..., start : start + n]


def window_starts(length: int, n: int, stride: int | None = None) -> np.ndarray:
    """Start offsets of windows of `n` samples covering a record; the last one ends at the end."""
    stride = stride or n
    if length <= n:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - n + 1, stride)
    if starts[-1] != length - n:
        starts = np.append(starts, length - n)
    return starts


def sliding_windows(x: np.ndarray, n: int, stride: int | None = None) -> np.ndarray:
    """Every window of `n` samples (leads, n) of a record, stacked: (windows, leads, n)."""
    if x.shape[-1] < n:
        return fit_length(x, n)[None]
    return np.stack([x[..., s : s + n] for s in window_starts(x.shape[-1], n, stride)])


def normalize(x: np.ndarray, mode: str = "zscore", eps: float = 1e-6) -> np.ndarray:
    """Per-lead standardisation (`zscore`) or nothing (`none`)."""
    if mode == "none":
        return x
    if mode == "zscore":
        mean = x.mean(axis=-1, keepdims=True)
        std = x.std(axis=-1, keepdims=True)
        return ((x - mean) / (std + eps)).astype(np.float32)
    raise ValueError(f"unknown normalisation {mode!r}; choose zscore or none")
