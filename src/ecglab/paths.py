"""Where datasets and caches live."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """The folder that holds one sub-folder per dataset.

    `$ECGLAB_DATA` when set, otherwise `../shared/data` beside the repository checkout.
    """
    env = os.environ.get("ECGLAB_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def dataset_root(name: str, root: str | Path | None = None) -> Path:
    """The folder of dataset `name`: `root` when given, else `data_root() / name`."""
    return Path(root) if root is not None else data_root() / name


def cache_root() -> Path:
    """Default folder for prepared caches: `$ECGLAB_CACHE`, else `~/.cache/ecglab`."""
    env = os.environ.get("ECGLAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ecglab"
