"""Training-time augmentations on one window (leads, samples), drawn from the caller's generator.

Each record's randomness comes from a generator seeded by (seed, epoch, index), so a run is the
same whether it resumes, uses loader workers or is split over DDP processes.
"""

from __future__ import annotations

import numpy as np

from ecglab.train.config import AugmentConfig


class Augment:
    def __init__(self, config: AugmentConfig, fs: float):
        self.config = config
        self.fs = fs

    @property
    def active(self) -> bool:
        c = self.config
        return any((c.lead_mask_p, c.segment_mask_p, c.noise_std, c.wander_amplitude, c.scale_range))

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        leads, n = x.shape
        x = x.copy()
        if c.scale_range:
            x *= rng.uniform(1 - c.scale_range, 1 + c.scale_range)
        if c.wander_amplitude:
            t = np.arange(n) / self.fs
            freq, phase = rng.uniform(0.05, 0.5), rng.uniform(0, 2 * np.pi)
            x += (c.wander_amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)
        if c.noise_std:
            x += rng.normal(0, c.noise_std, x.shape).astype(np.float32)
        if c.lead_mask_p:
            x[rng.random(leads) < c.lead_mask_p] = 0
        if c.segment_mask_p and rng.random() < c.segment_mask_p:
            length = int(rng.uniform(0, c.segment_mask_max) * n)
            if rng.random() < 0.5:
                x[:, :length] = 0
            else:
                x[:, n - length :] = 0
        return x
