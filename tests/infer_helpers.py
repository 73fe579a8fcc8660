"""A small real checkpoint for the predict/export tests (random weights: the tests check plumbing)."""

from __future__ import annotations

from pathlib import Path

from ecglab.data.leads import STANDARD_LEADS

CLASSES = ["NORM", "AF", "OTHER"]


def make_checkpoint(
    folder: Path, *, multilabel: bool = False, thresholds=None, seed: int = 0, **meta
) -> Path:
    """`resnet1d_wang`, 12 leads, 3 classes, 10-s windows at 100 Hz, saved with `save_checkpoint`."""
    import torch

    from ecglab.checkpoint_meta import CheckpointMeta
    from ecglab.models import create_model
    from ecglab.train.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    model = create_model("resnet1d_wang", num_classes=len(CLASSES), in_chans=12)
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # a larger last layer spreads the logits, so probabilities differ between records
        last.weight.mul_(20.0)
    config = {
        "model": "resnet1d_wang", "model_kwargs": {}, "num_classes": len(CLASSES), "in_chans": 12,
        "lead_names": list(STANDARD_LEADS), "classes": CLASSES, "multilabel": multilabel, "fs": 100,
        "window_samples": 1000, "seconds": 10.0, "norm": "zscore", "filter": "none", "aggregate": "mean",
        "thresholds": thresholds, "dataset": "ptbxl", "task": "test",
    }  # fmt: skip
    return save_checkpoint(folder, model.eval(), CheckpointMeta.from_json(config | meta))
