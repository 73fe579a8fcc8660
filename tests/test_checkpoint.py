"""Checkpoints load without unpickling; a pickled file only with the explicit trust flag."""

import json
from dataclasses import replace

import pytest
import torch

from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.models import create_model
from ecglab.train.checkpoint import load_checkpoint, save_checkpoint
from helpers import run_cli

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
META = {"model": "fcn_wang", "model_kwargs": {}, "num_classes": 3, "in_chans": 12, "lead_names": LEADS,
        "classes": ["A", "B", "C"], "multilabel": True, "fs": 100, "window_samples": 250}  # fmt: skip


def test_safetensors_round_trip(tmp_path):
    model = create_model("fcn_wang", 3).eval()
    save_checkpoint(tmp_path / "ckpt", model, CheckpointMeta.from_json(META))
    loaded, meta = load_checkpoint(tmp_path / "ckpt")
    x = torch.randn(2, 12, 500)
    assert meta == replace(CheckpointMeta.from_json(META), weights_sha256=meta.weights_sha256)
    assert torch.equal(loaded(x), model(x)) and len(meta.weights_sha256) == 64
    assert not list((tmp_path / "ckpt").glob("*.tmp"))


def test_pickles_need_the_trust_flag(tmp_path):
    model = create_model("fcn_wang", 3).eval()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "config.json").write_text(json.dumps(META))
    with pytest.raises(ValueError, match=r"weights.pt: pickled checkpoints can run arbitrary code.*--trust"):
        load_checkpoint(tmp_path / "weights.pt")
    loaded, _ = load_checkpoint(tmp_path / "weights.pt", trust=True)
    x = torch.randn(1, 12, 500)
    assert torch.equal(loaded(x), model(x))
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="needs config.json beside it"):
        load_checkpoint(tmp_path / "weights.pt", trust=True)


def test_predict_refuses_a_pickle_without_trust(tmp_path):
    torch.save(create_model("fcn_wang", 3).state_dict(), tmp_path / "weights.pt")
    (tmp_path / "config.json").write_text(json.dumps(META))
    from ecglab.infer.synthetic import write_example

    hea = write_example(tmp_path, "sinus")
    proc = run_cli("predict", str(hea), "--model", str(tmp_path / "weights.pt"), check=False)
    assert proc.returncode == 2 and "pickled checkpoints can run arbitrary code" in proc.stderr
    proc = run_cli(
        "predict", str(hea), "--model", str(tmp_path / "weights.pt"), "--trust", "--format", "json"
    )
    assert json.loads(proc.stdout)[0]["record"] == str(hea)
