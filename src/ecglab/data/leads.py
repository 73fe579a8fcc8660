"""Lead names: the standard 12, matched case-insensitively, and reordering into them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ecglab.data.errors import RecordError

STANDARD_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip
_CANONICAL = {name.lower(): name for name in STANDARD_LEADS}
# Spellings met in real files: "AVR" (PTB-XL), "ECG" (CinC 2017's single lead, lead-I-like), "MLI".
_ALIASES = {"ecg": "I", "lead i": "I", "lead ii": "II", "mli": "I", "mlii": "II"}


def canonical_lead(name: str, path: str | Path = "") -> str:
    """The standard spelling of a lead name (`AVR` -> `aVR`); an unknown name is a RecordError."""
    key = name.strip().lower()
    if key in _CANONICAL:
        return _CANONICAL[key]
    if key in _ALIASES:
        return _ALIASES[key]
    raise RecordError(path, f"unknown lead name {name!r}; expected one of {', '.join(STANDARD_LEADS)}")


def reorder_leads(
    x: np.ndarray, names: Sequence[str], target: Sequence[str] = STANDARD_LEADS, path: str | Path = ""
) -> np.ndarray:
    """Rows of `x` (leads, samples) put in the order of `target`; a missing lead is a RecordError."""
    canon = [canonical_lead(n, path) for n in names]
    if len(set(canon)) != len(canon):
        raise RecordError(path, f"duplicate lead names {', '.join(names)}")
    missing = [t for t in target if t not in canon]
    if missing:
        raise RecordError(path, f"missing lead(s) {', '.join(missing)}; the file has {', '.join(names)}")
    order = [canon.index(t) for t in target]
    return x if order == list(range(len(canon))) else x[order]


def lead_positions(wanted: Sequence[str], available: Sequence[str], where: str = "leads") -> list[int]:
    """Where each of `wanted` sits among `available`, matched by name (`avr` is `aVR`, `ECG` is `I`).

    A lead that is not there is a ValueError naming `where`, the lead and those available.
    """
    canon = [canonical_lead(name) for name in available]
    positions = []
    for name in wanted:
        try:
            positions.append(canon.index(canonical_lead(name)))
        except ValueError:  # a RecordError too: an unknown name
            raise ValueError(
                f"{where}: lead {name!r} is not among the data's leads ({', '.join(available)})"
            ) from None
    return positions
