"""What the in-browser page (`/local`) downloads: the models' metadata and ONNX files, ONNX Runtime Web.

The page runs a model itself, so it needs what `Predictor` reads from a checkpoint (classes, leads,
rate, window, normalisation, aggregation, thresholds) and the network as ONNX. These are plain
GETs of files; no record is ever sent. The models are the shipped ones (`ecglab/weights/*`) and
the one the server was started with; an ONNX file is the checkpoint's own `model.onnx`, else the
export `onnx_cache` keeps in the user's cache (made on first request, never inside the package).
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from ecglab.checkpoint_meta import read_meta
from ecglab.infer import DEFAULT_MODEL, SINGLE_LEAD_MODEL, default_models
from ecglab.infer.limits import Limits
from ecglab.infer.predictor import ONNX_FILE

VENDOR = Path(__file__).resolve().parent / "static" / "vendor"
VENDOR_FILES = {  # ONNX Runtime Web's single-threaded WebAssembly build, copied here by `make web`
    "ort.wasm.min.mjs": "text/javascript",
    "ort-wasm-simd-threaded.mjs": "text/javascript",
    "ort-wasm-simd-threaded.wasm": "application/wasm",
}
INSTALL_HINT = (
    "ONNX Runtime Web is not installed in this ecglab ({folder}); run `make web` in the ecglab source "
    "folder (it needs npm), then restart the server"
)
META_KEYS = ("classes", "lead_names", "fs", "window_samples", "multilabel", "norm", "filter", "aggregate",
             "thresholds")  # fmt: skip


def runtime_missing() -> str | None:
    """Why the page cannot load ONNX Runtime Web (naming `make web`), or None when its files are there."""
    if all(vendor_path(name).is_file() for name in VENDOR_FILES):
        return None
    return INSTALL_HINT.format(folder=VENDOR)


def vendor_path(name: str) -> Path:
    """Where the runtime file `name` (one of VENDOR_FILES) lies in the package."""
    return VENDOR / name


class PageModels:
    """The models the page may run, by name: every shipped model, and `served` (folder, name) if given."""

    def __init__(self, served: tuple[Path, str] | None = None):
        self.folders = dict(default_models())
        self.default = DEFAULT_MODEL if DEFAULT_MODEL in self.folders else next(iter(self.folders), None)
        if served is not None:
            folder, name = served
            self.default = Path(name).name or name
            self.folders[self.default] = Path(folder)
        self.lock = threading.Lock()  # one export at a time

    def catalog(self) -> dict:
        """The `/models` answer: each model's metadata and ONNX address, the default, the record limits."""
        models = []
        for name, folder in self.folders.items():
            meta = read_meta(folder / "config.json")
            models.append({"name": name, **{k: getattr(meta, k) for k in META_KEYS},
                           "onnx": f"/models/{name}/{ONNX_FILE}"})  # fmt: skip
        single = SINGLE_LEAD_MODEL if SINGLE_LEAD_MODEL in self.folders else None
        limits = dataclasses.asdict(Limits.from_env())
        return {"models": models, "default": self.default, "single_lead": single, "limits": limits,
                "runtime_missing": runtime_missing()}  # fmt: skip

    def onnx(self, name: str) -> Path | None:
        """The ONNX file of model `name` (exported into the cache on first use), or None for an unknown name."""
        folder = self.folders.get(name)
        if folder is None:
            return None
        beside = folder / ONNX_FILE
        if beside.is_file():
            return beside
        from ecglab.infer.onnx_cache import cached_onnx_path, export_to_cache

        with self.lock:
            cached = cached_onnx_path(folder)
            if not cached.is_file():
                export_to_cache(folder)
        return cached
