"""Signal quality before a verdict: what a model must not score, and what it scores with a warning.

A model trained on real ECGs still answers for a flat line, often with a confident "sinus rhythm".
So `check_samples` refuses what holds no real-valued, finite ECG, and `quality_warnings` refuses a
record in which every lead is a constant (all zeros, say) and warns about flat or saturated leads,
or a record whose every lead is flat (a gain or units error, as in the CinC 2020 copy of PTB whose
headers give 2,000,000 adu/mV); the warning travels with the prediction into every output
(table, JSON, CSV, the web page, the explain figure).

Thresholds, on the leads the model reads, in mV:
- flat: the 1st-99th percentile span is under FLAT_MV (20 µV, a tenth of a small P wave); the
  percentiles ignore a few spikes, so a lead that is flat but for an artefact counts as flat.
- saturated: at least SATURATED_SHARE of the samples sit exactly at the lead's maximum or minimum,
  as happens when an amplifier clips (an ECG touches its extremes for a few samples per beat).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecglab.data.errors import RecordError

FLAT_MV = 0.02
SATURATED_SHARE = 0.1


def check_samples(path, x: np.ndarray, lead_names: Sequence[str]) -> np.ndarray:
    """`x` as float32 when it holds real, finite numbers; a RecordError naming the problem otherwise."""
    if np.iscomplexobj(x):
        raise RecordError(path, f"holds complex numbers ({x.dtype}); an ECG is real-valued samples in mV")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise RecordError(path, f"holds {x.dtype} values, not numbers")
    with np.errstate(over="ignore"):
        x = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        leads = [lead_names[i] for i in np.flatnonzero(bad.any(axis=1))]
        raise RecordError(
            path,
            f"{int(bad.sum())} NaN or infinite sample(s) in lead(s) "
            f"{', '.join(leads)}; fill or cut the gaps before scoring",
        )
    return x


def quality_warnings(path, x: np.ndarray, lead_names: Sequence[str]) -> list[str]:
    """Warnings for flat and saturated leads of `x` (leads, samples) in mV; a RecordError if every lead is constant."""
    if not np.ptp(x, axis=-1).any():
        what = "every sample is 0" if not x.any() else "every lead is a constant"
        raise RecordError(
            path, f"no ECG to classify: {what} (a flat line); check the file, its gain and units"
        )
    low, high = np.percentile(x, [1, 99], axis=-1)
    flat = (high - low) < FLAT_MV
    notes = []
    if flat.all():
        notes.append(
            f"every lead spans under {FLAT_MV * 1000:g} µV: a wrong gain or units, or no ECG at all; "
            "do not trust this result"
        )
    elif flat.any():
        names = ", ".join(n for n, f in zip(lead_names, flat, strict=True) if f)
        notes.append(
            f"flat lead(s) {names} (under {FLAT_MV * 1000:g} µV): scored anyway, trust the result less"
        )
    at_edge = np.maximum((x == x.max(axis=-1, keepdims=True)).mean(axis=-1),
                         (x == x.min(axis=-1, keepdims=True)).mean(axis=-1))  # fmt: skip
    saturated = (at_edge >= SATURATED_SHARE) & ~flat
    if saturated.any():
        names = ", ".join(n for n, s in zip(lead_names, saturated, strict=True) if s)
        notes.append(
            f"saturated lead(s) {names} (at least {SATURATED_SHARE:.0%} of samples at the lead's limit, "
            "clipped): scored anyway, trust the result less"
        )
    return notes
