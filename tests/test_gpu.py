"""Training on CUDA: mixed precision, checkpoints that load on the CPU, DDP over two GPUs (skipped without them)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ecglab.train.checkpoint import load_checkpoint
from ecglab.train.config import load_config
from ecglab.train.loop import fit
from helpers import Interrupted, stop_at_epoch, synthetic_ptbxl, write_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def gpu_recipe(tmp_path, name, **extra):
    root = synthetic_ptbxl(tmp_path / "ptbxl")
    keys = {"name": name, "epochs": 2, "device": "cuda", "workers": 2} | extra
    return write_config(tmp_path / f"{name}.yaml", root, tmp_path, **keys)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_two_epochs_on_cuda_in_mixed_precision_leave_device_free_files(tmp_path, precision):
    run = fit(load_config(gpu_recipe(tmp_path, precision, precision=precision, clip_grad_norm=1.0)))
    history = np.genfromtxt(run / "history.csv", delimiter=",", names=True)
    assert len(history) == 2 and np.isfinite(history["train_loss"]).all()
    assert "1 process(es) on cuda:0" in (run / "log.txt").read_text()
    model, meta = load_checkpoint(run / "checkpoint")  # on the CPU: nothing in it names a GPU
    probs = np.load(run / "predictions/test_probs.npy")
    assert np.isfinite(probs).all() and probs.shape[1] == meta["num_classes"]
    x = torch.zeros(1, meta["in_chans"], meta["window_samples"])
    assert torch.isfinite(model(x)).all()


def test_a_run_started_on_cuda_resumes_on_the_cpu(tmp_path):
    config = load_config(gpu_recipe(tmp_path, "moved", workers=0))
    with pytest.raises(Interrupted):
        fit(config, progress=stop_at_epoch(2))
    run = fit(load_config(tmp_path / "moved.yaml", ["device=cpu"]))
    log = (run / "log.txt").read_text()
    assert "reopened with device 'cpu' (config.yaml: 'cuda')" in log and "resumed after epoch 0" in log
    assert (run / "metrics.json").is_file()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_ddp_on_two_gpus_with_sync_bn_in_bf16(tmp_path):
    recipe = gpu_recipe(tmp_path, "ddp", precision="bf16", sync_bn=True, model="resnet1d18")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "ecglab", "train", str(recipe)]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs/ddp"
    assert "2 process(es) on cuda:0" in (run / "log.txt").read_text()
    assert (run / "metrics.json").is_file()
