"""A synthetic 12-lead ECG, so that `predict` and `explain` can be tried with nothing but the package.

Each beat is a sum of Gaussian P, Q, R, S and T waves (the idea of McSharry et al.'s dynamical
model, reduced to its wave shapes); each lead sees them with its own amplitudes, roughly as a
normal heart projects onto the 12 leads. `afib` drops the P waves, draws irregular RR intervals
and adds fibrillatory baseline waves. It is NOT a patient recording, and says so in its header.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecglab.data.leads import STANDARD_LEADS

# Wave centre (s from the R peak) and width (s), then amplitude (mV) per lead for P Q R S T.
WAVES = {"P": (-0.2, 0.025), "Q": (-0.03, 0.01), "R": (0.0, 0.012), "S": (0.03, 0.012), "T": (0.3, 0.06)}
AMPLITUDES = {  # lead: P, Q, R, S, T
    "I": (0.10, -0.05, 0.8, -0.15, 0.25), "II": (0.15, -0.05, 1.2, -0.20, 0.35),
    "III": (0.05, -0.02, 0.5, -0.10, 0.10), "aVR": (-0.12, 0.05, -0.9, 0.15, -0.30),
    "aVL": (0.03, -0.03, 0.3, -0.08, 0.08), "aVF": (0.10, -0.03, 0.8, -0.15, 0.22),
    "V1": (0.08, 0.00, 0.3, -1.00, -0.10), "V2": (0.10, 0.00, 0.6, -1.20, 0.30),
    "V3": (0.10, -0.03, 1.0, -0.80, 0.40), "V4": (0.10, -0.05, 1.4, -0.50, 0.40),
    "V5": (0.10, -0.07, 1.3, -0.30, 0.35), "V6": (0.10, -0.07, 1.0, -0.20, 0.30),
}  # fmt: skip
RHYTHMS = ("sinus", "afib")


def synthetic_ecg(
    rhythm: str = "sinus", fs: float = 500, seconds: float = 10, heart_rate: float = 70, seed: int = 0
) -> np.ndarray:
    """float32 (12, samples) in mV, leads in the standard order."""
    if rhythm not in RHYTHMS:
        raise ValueError(f"unknown rhythm {rhythm!r}; choose one of {', '.join(RHYTHMS)}")
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    rr = 60.0 / heart_rate
    beats, at = [], 0.4
    while at < seconds:
        beats.append(at)
        at += rr * (rng.uniform(0.6, 1.4) if rhythm == "afib" else rng.normal(1.0, 0.02))
    amps = np.array([AMPLITUDES[lead] for lead in STANDARD_LEADS])  # (12, 5)
    x = np.zeros((12, n))
    for beat in beats:
        for k, (centre, width) in enumerate(WAVES.values()):
            if rhythm == "afib" and k == 0:
                continue
            x += amps[:, k : k + 1] * np.exp(-0.5 * ((t - beat - centre) / width) ** 2)
    if rhythm == "afib":
        f = rng.uniform(5, 7)
        x += 0.05 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, (12, 1)))
    x += rng.normal(0, 0.01, x.shape)
    return x.astype(np.float32)


def write_example(folder: str | Path, rhythm: str = "sinus", fs: int = 500, seed: int = 0) -> Path:
    """Write a synthetic 10 s record as WFDB (`synthetic_<rhythm>.hea/.dat`); returns the header path."""
    import wfdb

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"synthetic_{rhythm}"
    x = synthetic_ecg(rhythm, fs, seed=seed)
    wfdb.wrsamp(name, fs=fs, units=["mV"] * 12, sig_name=list(STANDARD_LEADS), p_signal=x.T.astype(np.float64),
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(folder),
                comments=[f"SYNTHETIC {rhythm} ECG made by ecglab's own code; not a patient recording"])  # fmt: skip
    return folder / f"{name}.hea"
