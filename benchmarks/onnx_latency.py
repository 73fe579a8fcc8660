"""Batch-1 CPU latency of a model in PyTorch and in ONNX Runtime, and their ratio.

    python benchmarks/onnx_latency.py [--model resnet1d_wang | --checkpoint FOLDER] [--threads 1]

A registered model gets random weights (latency does not depend on them); a checkpoint is used
as it is. The model is exported with `export_onnx` (which checks ONNX Runtime against PyTorch),
then both run one window (12 leads x 1000 samples unless the checkpoint says otherwise) with the
same thread count, alternating call by call so that load from other processes hits both alike.
Prints the median of each and PyTorch / ONNX Runtime. Nothing here is a test: numbers vary
between machines.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet1d_wang", help="registered model name (random weights)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder instead of --model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=200)
    args = parser.parse_args()

    import onnxruntime as ort

    from ecglab.infer.onnx_export import export_onnx
    from ecglab.train.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.checkpoint or _random_checkpoint(args.model, Path(tmp) / "checkpoint")
        report = export_onnx(folder, Path(tmp) / "model.onnx")
        model, meta = load_checkpoint(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(report.path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, meta.in_chans, meta.window_samples)).astype(np.float32)
    xt, name = torch.from_numpy(x), session.get_inputs()[0].name
    runs = {"torch": lambda: model(xt), "onnx": lambda: session.run(None, {name: x})}
    times: dict[str, list[float]] = {k: [] for k in runs}
    with torch.inference_mode():
        for i in range(args.iters + 10):  # the first 10 of each are warm-up
            for key, fn in runs.items():
                start = time.perf_counter()
                fn()
                if i >= 10:
                    times[key].append(time.perf_counter() - start)
    ms = {k: 1000 * float(np.median(v)) for k, v in times.items()}
    print(f"{meta.model}, input 1 x {meta.in_chans} x {meta.window_samples}, {args.threads} thread(s), "
          f"{report.exporter} exporter, max |diff| {report.max_abs_diff:.1e}")  # fmt: skip
    print(f"PyTorch {torch.__version__}: {ms['torch']:.2f} ms (median of {args.iters})")
    print(f"ONNX Runtime {ort.__version__}: {ms['onnx']:.2f} ms (median of {args.iters})")
    print(f"PyTorch / ONNX Runtime: {ms['torch'] / ms['onnx']:.2f}x")


def _random_checkpoint(name: str, folder: Path) -> Path:
    from ecglab.checkpoint_meta import CheckpointMeta
    from ecglab.data.leads import STANDARD_LEADS
    from ecglab.models import create_model
    from ecglab.train.checkpoint import save_checkpoint

    model = create_model(name, num_classes=5, in_chans=12).eval()
    meta = {"model": name, "model_kwargs": {}, "num_classes": 5, "in_chans": 12, "lead_names": list(STANDARD_LEADS),
            "classes": [f"c{i}" for i in range(5)], "multilabel": True, "fs": 100, "window_samples": 1000,
            "seconds": 10.0, "norm": "zscore", "filter": "none", "aggregate": "mean", "thresholds": None}  # fmt: skip
    return save_checkpoint(folder, model, CheckpointMeta.from_json(meta))


if __name__ == "__main__":
    main()
