"""Training end to end: config errors, a dry run on real data, resume after SIGKILL, DDP."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from ecglab.train.config import TrainConfig, load_config
from ecglab.train.loop import DRY_RUN_RECORDS
from helpers import run_cli, synthetic_ptbxl, write_config


def test_config_typo_names_file_and_key(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("model: resnet1d18\nepocs: 3\n")
    with pytest.raises(ValueError, match=r"recipe.yaml: unknown key 'epocs'; did you mean 'epochs'\?"):
        load_config(path)
    path.write_text("augment:\n  noise_sd: 0.1\n")
    with pytest.raises(ValueError, match="recipe.yaml: augment: unknown key 'noise_sd'"):
        load_config(path)
    proc = run_cli("train", str(path), check=False)
    assert proc.returncode == 2 and "unknown key 'noise_sd'" in proc.stderr and "Traceback" not in proc.stderr


def test_set_overrides_nested_keys(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model: resnet1d18\n")
    cfg = load_config(path, ["lr=3e-4", "augment.noise_std=0.1", "model_kwargs={drop_rate: 0.2}"])
    assert cfg.lr == 3e-4 and cfg.augment.noise_std == 0.1 and cfg.model_kwargs == {"drop_rate": 0.2}
    with pytest.raises(ValueError, match="scheduler: 'linear' is not one of cosine, step"):
        load_config(path, ["scheduler=linear"])
    with pytest.raises(ValueError, match="r.yaml: epochs: expected int, got 'ten'"):
        load_config(path, ["epochs=ten"])
    assert TrainConfig().run_name == "resnet1d18-ptbxl-default-s0"


@pytest.mark.data
def test_dry_run_on_real_ptbxl_writes_a_complete_run(ptbxl_root, tmp_path):
    config = tmp_path / "dry.yaml"
    config.write_text(
        f"model: resnet1d18\ndataset: ptbxl\ntask: rhythm\ncache: {tmp_path / 'cache'}\nout: {tmp_path / 'runs'}\n"
    )
    run_cli("train", str(config), "--dry-run")
    run = tmp_path / "runs" / "resnet1d18-ptbxl-rhythm-s0"
    for name in ("config.yaml", "log.txt", "history.csv", "metrics.json", "checkpoint/model.safetensors",
                 "checkpoint/config.json", "predictions/val_probs.npy", "predictions/test_probs.npy"):  # fmt: skip
        assert (run / name).is_file(), name
    # a dry run, not real training: one epoch, and predictions for the first DRY_RUN_RECORDS records only
    assert len((run / "history.csv").read_text().splitlines()) == 2
    assert len(np.load(run / "predictions/val_probs.npy")) <= DRY_RUN_RECORDS
    meta = json.loads((run / "checkpoint/config.json").read_text())
    assert meta["classes"][0] == "AFIB" and len(meta["thresholds"]) == 12 and meta["fs"] == 100
    assert len(meta["data_manifest_hash"]) == 64 and meta["model"] == "resnet1d18"


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(tmp_path):
    root = synthetic_ptbxl(tmp_path / "ptbxl")
    whole = write_config(tmp_path / "whole.yaml", root, tmp_path, name="whole")
    run_cli("train", str(whole))
    killed = write_config(tmp_path / "killed.yaml", root, tmp_path, name="killed")
    proc = subprocess.Popen([sys.executable, "-m", "ecglab", "train", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=os.environ.copy())  # fmt: skip
    state = tmp_path / "runs/killed/state.safetensors"
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "runs/killed/metrics.json").exists(), "the run finished before it could be killed"
    run_cli("train", str(killed))
    a, b = tmp_path / "runs/whole", tmp_path / "runs/killed"
    wa, wb = load_file(a / "checkpoint/model.safetensors"), load_file(b / "checkpoint/model.safetensors")
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    np.testing.assert_array_equal(
        np.load(a / "predictions/test_probs.npy"), np.load(b / "predictions/test_probs.npy")
    )
    drop_time = lambda text: [line.rsplit(",", 1)[0] for line in text.splitlines()]  # noqa: E731
    assert drop_time((a / "history.csv").read_text()) == drop_time((b / "history.csv").read_text())
    assert "resumed after epoch" in (b / "log.txt").read_text()


@pytest.mark.slow
def test_ddp_two_gloo_processes_follow_the_single_process_loss_curve(tmp_path):
    root = synthetic_ptbxl(tmp_path / "ptbxl")
    # A model without batch norm: BN statistics over 8 records per process would differ from 16.
    small = {
        "model": "inceptionformer_tiny",
        "model_kwargs": {"norm": "layer"},
        "crop_seconds": 2.5,
        "epochs": 2,
    }
    one = write_config(tmp_path / "one.yaml", root, tmp_path, name="one", **small)
    run_cli("train", str(one))
    two = write_config(tmp_path / "two.yaml", root, tmp_path, name="two", **small)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "ecglab",
        "train",
        str(two),
    ]
    proc = subprocess.run(
        torchrun, capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    read = lambda run: np.genfromtxt(tmp_path / "runs" / run / "history.csv", delimiter=",", names=True)  # noqa: E731
    h1, h2 = read("one"), read("two")
    np.testing.assert_allclose(h2["train_loss"], h1["train_loss"], rtol=1e-3)
    np.testing.assert_allclose(h2["val_loss"], h1["val_loss"], rtol=1e-3)
    assert (tmp_path / "runs/two/metrics.json").is_file()


def test_a_time_budget_shortens_the_cosine_schedule_to_the_epochs_that_fit():
    import torch

    from ecglab.train.loop import fit_schedule_to_budget

    def rates(scheduler, optimizer, n):
        out = []
        for _ in range(n):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return out

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1e-3)
    budgeted = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=50)
    assert fit_schedule_to_budget(budgeted, 50, first_epoch_seconds=100.0, max_minutes=15) == 9
    reference_opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(reference_opt, T_max=9)
    assert np.allclose(rates(budgeted, optimizer, 9), rates(reference, reference_opt, 9))
    assert optimizer.param_groups[0]["lr"] < 1e-9  # annealed to zero when the budget ends
    assert (
        fit_schedule_to_budget(budgeted, 50, first_epoch_seconds=1.0, max_minutes=15) == 50
    )  # capped by epochs
    assert fit_schedule_to_budget(budgeted, 50, first_epoch_seconds=3600.0, max_minutes=15) == 1
