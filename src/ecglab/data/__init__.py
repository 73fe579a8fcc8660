"""Dataset readers in their publishers' layouts, preprocessing, and the training cache."""

from __future__ import annotations

import importlib
from pathlib import Path

from ecglab.data.base import Reader, split_of
from ecglab.data.errors import RecordError
from ecglab.data.labels import Task, label_matrix, task_records

# name -> "module:class"; imported on demand so `import ecglab.data` stays light.
DATASETS = {
    "ptbxl": "ecglab.data.ptbxl:PTBXL",
    "cpsc2018": "ecglab.data.cpsc2018:CPSC2018",
    "chapman": "ecglab.data.chapman:Chapman",
    "cinc2017": "ecglab.data.cinc2017:CinC2017",
    "cinc2020": "ecglab.data.cinc2020:CinC2020",
}


def get_reader(name: str, root: str | Path | None = None, fs: float | None = None, **kwargs) -> Reader:
    """The reader of dataset `name` over `root` (default: the data root's `name` folder).

    `fs`, a target sampling rate, lets the reader pick its best source (PTB-XL: records100 or
    records500); other keyword arguments go to the reader itself.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    module, cls_name = DATASETS[name].split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    return cls(root, **(cls.options_for(fs) if fs else {}) | kwargs)


__all__ = [
    "DATASETS",
    "Reader",
    "RecordError",
    "Task",
    "get_reader",
    "label_matrix",
    "split_of",
    "task_records",
]
