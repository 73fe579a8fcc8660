"""`ecglab explain` in a subprocess, as a user runs it, on tiny checkpoints with random weights."""

import subprocess

import numpy as np
import pytest
import torch

from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.infer.files import read_ecg
from ecglab.models import create_model
from ecglab.train.checkpoint import save_checkpoint
from helpers import run_cli, write_wfdb

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
CLASSES = ["SR", "AFIB", "STACH"]


def explain_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_cli("explain", *args, check=check)


def _checkpoint(folder, model: str):
    torch.manual_seed(0)
    meta = {"model": model, "model_kwargs": {}, "num_classes": len(CLASSES), "in_chans": 12, "lead_names": LEADS,
            "classes": CLASSES, "multilabel": True, "fs": 100, "window_samples": 250, "seconds": 2.5,
            "norm": "zscore", "filter": "none", "aggregate": "mean", "thresholds": None}  # fmt: skip
    return save_checkpoint(folder, create_model(model, len(CLASSES), 12), CheckpointMeta.from_json(meta))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 12-lead 8 s record at 500 Hz (so resampling is exercised) and two checkpoints."""
    root = tmp_path_factory.mktemp("explain")
    t = np.arange(4000) / 500
    beat = np.exp(-0.5 * (((t % 0.8) - 0.3) / 0.012) ** 2) - 0.2 * np.exp(
        -0.5 * (((t % 0.8) - 0.5) / 0.04) ** 2
    )
    x = np.stack([beat * (0.5 + k / 12) for k in range(12)])
    record = write_wfdb(root / "rec1", x, 500, ["I", "II", "III", "AVR", "AVL", "AVF", *LEADS[6:]])
    return (
        record,
        _checkpoint(root / "wang", "resnet1d_wang"),
        _checkpoint(root / "former", "inceptionformer_tiny"),
    )


def test_explain_writes_png_and_svg_for_the_top_class(files, tmp_path):
    record, wang, _ = files
    proc = explain_cli(str(record), "--model", str(wang), "--out", str(tmp_path / "fig"), "--dpi", "100")
    png, svg = tmp_path / "fig.png", tmp_path / "fig.svg"
    assert png.stat().st_size > 50_000 and svg.stat().st_size > 50_000
    assert str(png) in proc.stdout and str(svg) in proc.stdout
    assert "with Grad-CAM at stages.2" in proc.stdout and "(p = 0." in proc.stdout
    assert any(f"explained {c} " in proc.stdout for c in CLASSES)
    assert "rec1" in svg.read_text()  # the title names the record


def test_unknown_class_lists_the_classes(files, tmp_path):
    record, wang, _ = files
    proc = explain_cli(str(record), "--model", str(wang), "--class", "AF", "--out", str(tmp_path / "x.png"),
                       check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "unknown class 'AF'" in proc.stderr and "SR, AFIB, STACH" in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_attention_of_an_inceptionformer_for_a_chosen_class(files, tmp_path):
    record, wang, former = files
    out = tmp_path / "attn.svg"
    proc = explain_cli(
        str(record), "--model", str(former), "--class", "AFIB", "--attention", "--out", str(out)
    )
    assert "explained AFIB" in proc.stdout and "with attention" in proc.stdout and out.stat().st_size > 50_000
    refused = explain_cli(str(record), "--model", str(wang), "--attention", "--out", str(out), check=False)
    assert refused.returncode == 2 and "no attention maps" in refused.stderr


def test_bad_input_is_named_and_warnings_reach_the_figure(files, tmp_path):
    record, wang, _ = files
    dpi = explain_cli(str(record), "--model", str(wang), "--dpi", "5000", check=False)
    assert dpi.returncode == 2 and "--dpi 5000: choose a resolution from 50 to 300" in dpi.stderr
    np.savez(tmp_path / "archive.npz", x=np.zeros((12, 1000)))
    (tmp_path / "archive.npz").rename(tmp_path / "archive.npy")
    bad = explain_cli(str(tmp_path / "archive.npy"), "--model", str(wang), "--fs", "100", "--leads",
                      ",".join(LEADS), check=False)  # fmt: skip
    assert bad.returncode == 2 and f"{tmp_path / 'archive.npy'}: is an .npz archive" in bad.stderr
    assert "Traceback" not in bad.stderr
    x = read_ecg(record).x
    x[7] = 0.0  # V2 flat
    flat = write_wfdb(tmp_path / "flat_v2", x, 500, ["I", "II", "III", "AVR", "AVL", "AVF", *LEADS[6:]])
    out = tmp_path / "flat.svg"
    proc = explain_cli(str(flat), "--model", str(wang), "--out", str(out))
    assert "warning: flat lead(s) V2" in proc.stdout and "WARNING: flat lead(s) V2" in out.read_text()
