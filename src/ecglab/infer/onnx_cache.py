"""Where a checkpoint's ONNX file is: beside it, or, for a shipped model, in the user's cache.

A shipped model's folder sits inside the installed package, which may be read-only and is never
written to; its ONNX file is exported on first use into `<cache>/onnx/<model>-<hash>.onnx`
(`$ECGLAB_CACHE`, else `~/.cache/ecglab`) and reused after. The hash of the weights and config.json
in the name means a new release of a model (new weights, or a new temperature) gets a new file
instead of a stale one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ecglab.infer import is_shipped
from ecglab.infer.predictor import ONNX_FILE
from ecglab.paths import cache_root

HASH_CHARS = 16


def onnx_cache_dir() -> Path:
    return cache_root() / "onnx"


def cached_onnx_path(folder: str | Path) -> Path:
    """The cache file for the checkpoint in `folder`, named after the folder and the SHA-256 of its
    weights and config.json (the temperature, inside the exported graph, lives in the config)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for name in ("model.safetensors", "config.json"):
        digest.update((folder / name).read_bytes())
    digest = digest.hexdigest()
    return onnx_cache_dir() / f"{folder.name}-{digest[:HASH_CHARS]}.onnx"


def default_onnx(folder: str | Path) -> Path:
    """The ONNX file `--runtime onnx` runs for `folder`: its model.onnx, else a shipped model's cached export.

    A shipped model not yet exported is exported now (seconds); any other checkpoint without a
    model.onnx is a FileNotFoundError that says how to make one.
    """
    folder = Path(folder)
    beside = folder / ONNX_FILE
    if beside.is_file() or not is_shipped(folder):
        if not beside.is_file():
            raise FileNotFoundError(
                f"{beside}: no ONNX model; run `ecglab export {folder}` first or pass --onnx FILE"
            )
        return beside
    cached = cached_onnx_path(folder)
    if not cached.is_file():
        export_to_cache(folder)
    return cached


def export_to_cache(folder: str | Path):
    """Export the checkpoint in `folder` to its cache file (atomically: concurrent first uses are safe)."""
    from ecglab.atomic import atomic_path
    from ecglab.infer.onnx_export import ExportError, export_onnx

    out = cached_onnx_path(folder)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out, unique=True) as tmp:
            report = export_onnx(folder, tmp)
    except ExportError as exc:
        raise ValueError(str(exc)) from None
    except OSError as exc:
        raise ValueError(
            f"{out}: cannot write the ONNX cache ({exc.strerror or exc}); set ECGLAB_CACHE to a writable folder"
        ) from None
    return type(report)(out, report.exporter, report.max_abs_diff, report.notes)
