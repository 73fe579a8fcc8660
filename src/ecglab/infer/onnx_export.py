"""Exporting a checkpoint to ONNX with a dynamic batch and length, checked against PyTorch.

The graph computes the checkpoint's calibrated logits (divided by its temperature), so a runtime
that applies only sigmoid or softmax to them gets `predict`'s probabilities. The torch.export-based ("dynamo") exporter is tried first; when it fails or fixes the batch or
length to the example's, the TorchScript-based exporter with `dynamic_axes` is tried. The file
is then run in ONNX Runtime on random windows of two batch sizes and two lengths and compared
with PyTorch; a difference above `tolerance` is an error, not a silently wrong model.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ecglab.extras import require
from ecglab.infer.predictor import ONNX_FILE
from ecglab.train.checkpoint import calibrated, load_checkpoint

OPSET = 18
INPUT_NAME, OUTPUT_NAME = "x", "logits"


class ExportError(RuntimeError):
    """A model that cannot be exported, or whose ONNX form disagrees with PyTorch."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    exporter: str
    max_abs_diff: float
    notes: tuple[str, ...] = ()


def export_onnx(
    folder: str | Path, out: str | Path | None = None, *, trust: bool = False, tolerance: float = 1e-4
) -> ExportReport:
    """Write `out` (default: `<folder>/model.onnx`) and check it against the PyTorch model."""
    require("onnx", "ONNX export")
    folder = Path(folder)
    out = Path(out) if out else folder / ONNX_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    model, meta = load_checkpoint(folder, trust=trust)
    model = calibrated(model, meta)  # the temperature's division is part of the exported graph
    example = torch.randn(2, meta.in_chans, meta.window_samples)
    failures = []
    for exporter, fn in (("dynamo", _export_dynamo), ("torchscript", _export_torchscript)):
        try:
            with _quiet():
                fn(model, example, out)
            fixed = _fixed_axes(out)
            if not fixed:
                break
            failures.append(f"{exporter}: fixed the {' and '.join(fixed)} axis")
        except Exception as exc:  # exporters raise many types; each is reported below
            failures.append(f"{exporter}: {type(exc).__name__}: {_first_line(exc)}")
    else:
        out.unlink(missing_ok=True)
        raise ExportError(
            f"{folder}: model {meta.model!r} cannot be exported to ONNX with a dynamic batch and length "
            f"({'; '.join(failures)}); use it with --runtime torch"
        )
    diff, notes = check_onnx(model, out, example.shape[1], example.shape[2])
    if diff > tolerance:
        raise ExportError(
            f"{out}: ONNX Runtime differs from PyTorch by {diff:.2e} (> {tolerance:g}); "
            f"model {meta.model!r} does not export faithfully, use --runtime torch"
        )
    return ExportReport(out, exporter, diff, tuple(notes))


def check_onnx(model: torch.nn.Module, path: Path, in_chans: int, n: int) -> tuple[float, list[str]]:
    """Largest |ONNX Runtime - PyTorch| logit over batches 1 and 3 and lengths n and 1.5 n."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst, notes = 0.0, []
    for batch, length in ((1, n), (3, n), (2, n + n // 2)):
        x = rng.standard_normal((batch, in_chans, length)).astype(np.float32)
        try:
            with torch.inference_mode():
                ref = model(torch.from_numpy(x)).float().numpy()
        except Exception as exc:  # a model that itself only takes its training length
            notes.append(f"PyTorch model fails at length {length} ({_first_line(exc)}); not compared")
            continue
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst, notes


def _export_dynamo(model: torch.nn.Module, example: torch.Tensor, out: Path) -> None:
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("length")}
    torch.onnx.export(
        model, (example,), str(out), dynamo=True, dynamic_shapes=(dims,), input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME], opset_version=OPSET, external_data=False, verbose=False,
    )  # fmt: skip


def _export_torchscript(model: torch.nn.Module, example: torch.Tensor, out: Path) -> None:
    torch.onnx.export(
        model, (example,), str(out), dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch", 2: "length"}, OUTPUT_NAME: {0: "batch"}}, opset_version=OPSET,
    )  # fmt: skip


def _fixed_axes(path: Path) -> list[str]:
    """Which of the input's batch and length axes the exported graph fixed to a number."""
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return [axis for axis, i in (("batch", 0), ("length", 2)) if dims[i].HasField("dim_value")]


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress prints, log lines and warnings (failures still raise)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "no message"
