"""What a record may ask of `predict`, `explain` and the server, checked before any work is done.

A header claiming 0.01 Hz or 1e9 Hz, or `--fs 0.001`, would make resampling blow a small file up
into millions of windows; such a record is refused with the limits stated. The defaults cover
every ECG device we know of (50 Hz to 10 kHz, up to an hour, resampled by at most 100x either way);
`ECGLAB_MIN_FS`, `ECGLAB_MAX_FS`, `ECGLAB_MAX_MINUTES` and `ECGLAB_MAX_RESAMPLE` change them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ecglab.data.errors import RecordError

DPI_RANGE = (50, 300)  # explain's PNG resolution, on the command line and the server alike
ENV = {"min_fs": "ECGLAB_MIN_FS", "max_fs": "ECGLAB_MAX_FS", "max_minutes": "ECGLAB_MAX_MINUTES",
       "max_resample": "ECGLAB_MAX_RESAMPLE"}  # fmt: skip


@dataclass(frozen=True)
class Limits:
    min_fs: float = 50.0
    max_fs: float = 10_000.0
    max_minutes: float = 60.0
    max_resample: float = 100.0  # the model's rate over the record's, or the other way round

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, each overridden by its environment variable when set."""
        values = {}
        for key, name in ENV.items():
            text = os.environ.get(name)
            if text:
                try:
                    values[key] = float(text)
                except ValueError:
                    raise ValueError(f"{name}={text!r} is not a number") from None
                if not (math.isfinite(values[key]) and values[key] > 0):
                    raise ValueError(f"{name}={text!r}: give a positive number")
        return cls(**values)

    def check_rate(self, path, fs: float) -> None:
        """A RecordError unless `fs` lies within the accepted sampling rates."""
        if not (math.isfinite(fs) and self.min_fs <= fs <= self.max_fs):
            raise RecordError(
                path,
                f"sampling rate {fs:g} Hz is outside {self.min_fs:g}-{self.max_fs:g} Hz; "
                f"give the true rate (--fs), or set {ENV['min_fs']}/{ENV['max_fs']} to accept it",
            )

    def check_length(self, path, samples: int, fs: float) -> None:
        """A RecordError when `samples` at `fs` last longer than `max_minutes`."""
        minutes = samples / fs / 60
        if minutes > self.max_minutes:
            raise RecordError(
                path,
                f"{minutes:.1f} minutes long; records up to {self.max_minutes:g} minutes are scored, so "
                f"send an excerpt or set {ENV['max_minutes']}",
            )

    def check_resample(self, path, fs_in: float, fs_out: float) -> None:
        """A RecordError when going from `fs_in` to `fs_out` changes the length by more than `max_resample`."""
        factor = max(fs_in / fs_out, fs_out / fs_in)
        if factor > self.max_resample:
            raise RecordError(
                path,
                f"resampling {fs_in:g} Hz to the model's {fs_out:g} Hz is a factor of {factor:g}, over the "
                f"limit of {self.max_resample:g}; use a model trained nearer that rate or set {ENV['max_resample']}",
            )


def check_dpi(dpi: int) -> int:
    """`dpi` when within DPI_RANGE; a ValueError stating the range otherwise."""
    low, high = DPI_RANGE
    if not low <= dpi <= high:
        raise ValueError(f"--dpi {dpi}: choose a resolution from {low} to {high}")
    return dpi
