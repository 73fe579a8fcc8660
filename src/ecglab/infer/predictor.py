"""Scoring ECG recordings with a checkpoint, exactly as training evaluated them.

A record is put in the model's lead order, resampled to its rate and filtered like the cache;
a record shorter than one window is zero-padded at both ends (with a warning), a longer one is
cut into windows with stride = window (the last ending at the record's end). Each window is
z-scored per lead, the model gives logits (divided by the checkpoint's fitted temperature,
`train.checkpoint.calibrated`; the ONNX file has the division inside), and the per-window probabilities (sigmoid for
multi-label, softmax otherwise) are averaged (or max-ed) per record, as `predict_records` does.
The network runs in PyTorch or, from an exported `model.onnx`, in ONNX Runtime.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecglab.checkpoint_meta import CheckpointMeta, read_meta
from ecglab.data.errors import RecordError
from ecglab.data.preprocess import apply_filter, fit_length, normalize, resample, sliding_windows
from ecglab.evaluate.calibration import window_probabilities
from ecglab.infer.files import Recording, select_leads
from ecglab.infer.limits import Limits
from ecglab.infer.quality import quality_warnings

RUNTIMES = ("torch", "onnx")
ONNX_FILE = "model.onnx"
MIN_SECONDS = 1.0
BATCH_SIZE = 64


@dataclass(frozen=True)
class Prediction:
    record: str
    model: str
    probabilities: dict[str, float]
    labels: list[str]
    windows: int
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """The `--format json` object of one record, its warnings included."""
        return {"record": self.record, "model": self.model, "probabilities": self.probabilities,
                "labels": self.labels, "warnings": list(self.warnings)}  # fmt: skip


class Predictor:
    """A checkpoint's preprocessing, network and decision rule, applied to whole recordings."""

    def __init__(self, meta: CheckpointMeta, run: Callable[[np.ndarray], np.ndarray], name: str, model=None):
        self.meta, self.run, self.name = meta, run, name
        self.model = model  # the torch network behind `run` (explanations need it); None for ONNX
        self.classes = list(meta.classes)
        self.lead_names = list(meta.lead_names)
        self.fs = float(meta.fs)
        self.window_samples = meta.window_samples
        self.multilabel = meta.multilabel
        self.norm, self.filter, self.aggregate = meta.norm, meta.filter, meta.aggregate
        self.thresholds = None if meta.thresholds is None else list(meta.thresholds)

    @classmethod
    def from_checkpoint(
        cls, folder: str | Path, *, name: str | None = None, runtime: str = "torch",
        onnx_path: str | Path | None = None, trust: bool = False, device: str = "cpu",
    ) -> Predictor:  # fmt: skip
        """Load a checkpoint folder; `runtime="onnx"` runs `onnx_path`, else `onnx_cache.default_onnx(folder)`.

        `device` (`ecglab.devices.resolve_device`: auto, cpu, cuda, ...) is where the torch model runs.
        """
        folder = Path(folder)
        name = name or str(folder)
        if runtime == "torch":
            from ecglab.devices import resolve_device
            from ecglab.train.checkpoint import calibrated, load_checkpoint

            model, meta = load_checkpoint(folder, trust=trust)
            model = model.to(resolve_device(device))
            return cls(meta, _torch_runner(calibrated(model, meta)), name, model)
        if runtime != "onnx":
            raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
        config = folder / "config.json"
        if not config.is_file():
            raise FileNotFoundError(f"{folder}: not a checkpoint folder (needs config.json)")
        meta = read_meta(config)
        from ecglab.infer.onnx_cache import default_onnx

        onnx_path = Path(onnx_path) if onnx_path else default_onnx(folder)  # a shipped model's: the cache's
        if not onnx_path.is_file():
            raise FileNotFoundError(f"{onnx_path}: no such ONNX file; pass the file `ecglab export` wrote")
        return cls(meta, _onnx_runner(onnx_path, meta.in_chans), name)

    def prepare(self, rec: Recording) -> tuple[np.ndarray, slice, list[str]]:
        """The record as the model sees it before windowing, where its own samples lie, and any warnings.

        Its leads in the model's order, resampled and filtered; a record shorter than one window is
        zero-padded at both ends. A resampling beyond the limits or a flat record is a RecordError;
        flat or saturated leads are warnings (`ecglab.infer.quality`).
        """
        x = select_leads(rec, self.lead_names)
        Limits.from_env().check_resample(rec.path, rec.fs, self.fs)
        quality = quality_warnings(rec.path, x, self.lead_names)
        x = apply_filter(resample(x, rec.fs, self.fs), self.fs, self.filter)
        length, n = x.shape[-1], self.window_samples
        seconds = length / self.fs
        if seconds < MIN_SECONDS:
            raise RecordError(
                rec.path, f"only {seconds:.2f} s long; the model needs at least {MIN_SECONDS:g} s"
            )
        notes, left = quality, 0
        if length < n:
            notes.append(f"{seconds:.1f} s is shorter than the model's {n / self.fs:g}-s window; zero-padded")
            left = (n - length) // 2
            x = fit_length(x, n, "centre")
        return x, slice(left, left + length), notes

    def windows(self, rec: Recording) -> tuple[np.ndarray, list[str]]:
        """The normalised model inputs (windows, leads, samples) of a recording, and any warnings."""
        x, _, notes = self.prepare(rec)
        return normalize(sliding_windows(x, self.window_samples), self.norm), notes

    def probabilities(self, windows: np.ndarray, deadline: float | None = None) -> np.ndarray:
        """Per-class probabilities of one record from its windows.

        Past `deadline` (a `time.monotonic()` value) no further batch starts: a TimeoutError instead.
        """
        logits = np.concatenate([self._logits(windows[i : i + BATCH_SIZE], deadline)
                                 for i in range(0, len(windows), BATCH_SIZE)])  # fmt: skip
        probs = window_probabilities(finite_outputs(logits, self.name), self.multilabel)
        return probs.max(axis=0) if self.aggregate == "max" else probs.mean(axis=0)

    def _logits(self, batch: np.ndarray, deadline: float | None) -> np.ndarray:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{self.name}: the time allowed for one request ran out while scoring")
        return self.run(batch)

    def decide(self, probs: np.ndarray) -> list[str]:
        """Classes at or above their tuned threshold; without thresholds, 0.5 (multi-label) or argmax."""
        if self.thresholds is not None:
            chosen = np.flatnonzero(probs >= np.asarray(self.thresholds))
        elif self.multilabel:
            chosen = np.flatnonzero(probs >= 0.5)
        else:
            chosen = [int(probs.argmax())]
        return [self.classes[i] for i in chosen]

    def predict(self, rec: Recording, record: str | None = None, deadline: float | None = None) -> Prediction:
        windows, notes = self.windows(rec)
        probs = self.probabilities(windows, deadline)
        return Prediction(
            record or str(rec.path), self.name, {c: float(p) for c, p in zip(self.classes, probs, strict=True)},
            self.decide(probs), len(windows), tuple(notes),
        )  # fmt: skip


def finite_outputs(logits: np.ndarray, name: str) -> np.ndarray:
    """The logits as float64, or an error when any is NaN or infinite (never NaN probabilities)."""
    if not np.isfinite(logits).all():
        raise ValueError(f"model {name} gave NaN or infinite outputs; its weights or this input are broken")
    return logits.astype(np.float64)


def _torch_runner(model) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    device = next(model.parameters()).device

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
            return model(x).float().cpu().numpy()

    return run


def _onnx_runner(path: Path, in_chans: int) -> Callable[[np.ndarray], np.ndarray]:
    from ecglab.extras import require

    require("onnx", "--runtime onnx", ("onnxruntime",))
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for invalid files
        raise ValueError(
            f"{path}: ONNX Runtime cannot load it ({exc}); re-export with `ecglab export`"
        ) from None
    inputs = session.get_inputs()
    shape = inputs[0].shape
    leads = shape[1] if len(shape) == 3 and isinstance(shape[1], int) else None  # None: symbolic
    if len(inputs) != 1 or len(shape) != 3 or leads not in (None, in_chans):
        raise ValueError(
            f"{path}: takes input {shape}, not (batch, {in_chans}, samples); it belongs to another model, "
            "export this checkpoint with `ecglab export`"
        )
    input_name = inputs[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run
