"""Training at scale, on the CPU: devices, mixed precision, loader workers, accumulation, clipping, resume."""

import json
import re
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from torch import nn

from ecglab.train.config import load_config
from ecglab.train.distributed import World, micro_batch_size
from ecglab.train.epoch import Stepper, run_epoch
from ecglab.train.loop import build_datasets, build_model_and_optimizer, fit
from helpers import Interrupted, run_cli, stop_at_epoch, synthetic_ptbxl, write_config


@pytest.fixture(scope="module")
def ptbxl(tmp_path_factory):
    return synthetic_ptbxl(tmp_path_factory.mktemp("data") / "ptbxl")


def recipe(ptbxl, tmp_path, **extra):
    return load_config(write_config(tmp_path / "recipe.yaml", ptbxl, tmp_path, **({"epochs": 2} | extra)))


def test_recipe_keys_for_devices_precision_loading_and_steps(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("precision: bf16\nworkers: 2\ngrad_accum_steps: 4\nclip_grad_norm: 1\ncompile: yes\n")
    cfg = load_config(path, ["device=cuda:1", "sync_bn=true"])
    assert (cfg.precision, cfg.workers, cfg.grad_accum_steps, cfg.clip_grad_norm) == ("bf16", 2, 4, 1.0)
    assert cfg.compile and cfg.sync_bn and cfg.device == "cuda:1" and cfg.persistent_workers
    defaults = load_config(None)
    assert (defaults.device, defaults.precision, defaults.workers, defaults.grad_accum_steps) == (
        "auto",
        "fp32",
        0,
        1,
    )
    for bad, message in [("precision=fp8", "precision: 'fp8' is not one of fp32, bf16, fp16"),
                         ("device=gpu", "device: 'gpu' is not one of auto, cpu, cuda, cuda:N or mps"),
                         ("workers=-1", "workers must be at least 0"),
                         ("clip_grad_norm=0", "clip_grad_norm: 0.0 must be positive")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            load_config(path, [bad])


def test_cli_errors_for_a_missing_device_fp16_on_cpu_and_an_indivisible_batch(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"dataset: ptbxl\nroot: {tmp_path / 'absent'}\nbatch_size: 30\n")
    cases = [(["--device", "cuda:99"], "device 'cuda:99' does not exist on this machine; available: cpu"),
             (["--device", "cpu", "--set", "precision=fp16"], "on the CPU use precision bf16"),
             (["--device", "cpu", "--set", "sync_bn=true", "--set", "batch_size=32"], "SyncBatchNorm runs on CUDA"),
             (["--device", "cpu", "--set", "grad_accum_steps=4"],
              r"batch_size 30 is not divisible by 1 process\(es\) x 4 accumulation step\(s\) = 4")]  # fmt: skip
    for args, message in cases:
        proc = run_cli("train", str(path), *args, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert re.search(message, " ".join(proc.stderr.split())), proc.stderr
    spec = tmp_path / "spec.yaml"
    spec.write_text("models: [resnet1d18]\n")
    proc = run_cli("bench", str(spec), "--device", "gpu", check=False)  # every cell gets the device
    assert proc.returncode == 2 and "device: 'gpu' is not one of auto, cpu, cuda" in proc.stderr, proc.stderr
    with pytest.raises(ValueError, match=r"batch_size 64 is not divisible by 3 process\(es\) x 2"):
        micro_batch_size(64, 3, 2)
    assert micro_batch_size(64, 4, 2) == 8


def test_batches_do_not_depend_on_the_number_of_workers(ptbxl, tmp_path):
    cfg = recipe(ptbxl, tmp_path, device="cpu", batch_size=8)
    cfg = replace(cfg, augment=replace(cfg.augment, noise_std=0.1, scale_range=0.2))

    def batches(workers):
        data = build_datasets(replace(cfg, workers=workers), World())
        out = []
        for epoch in range(2):  # persistent workers must see the new epoch
            data.sampler.set_epoch(epoch)
            out.append([(x.clone(), y.clone()) for x, y in data.loader])
        return out

    in_process, two_workers = batches(0), batches(2)
    for epoch_a, epoch_b in zip(in_process, two_workers, strict=True):
        assert len(epoch_a) == len(epoch_b) > 0
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(in_process[0][0][0], in_process[1][0][0])  # each epoch draws anew


def _no_batchnorm_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(3, 4, 5), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 28, 2))


def _one_step(model, batches, accum, clip=None, optimizer=torch.optim.SGD):
    stepper = Stepper(optimizer(model.parameters(), lr=0.1), torch.device("cpu"), "fp32", accum, clip)
    loss_fn = nn.CrossEntropyLoss()
    return run_epoch(model, batches, lambda x, y: loss_fn(model(x), y), stepper, max_steps=1)


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.AdamW])
def test_two_accumulated_micro_batches_make_the_step_of_one_double_batch(optimizer):
    x, y = torch.randn(8, 3, 32), torch.randint(0, 2, (8,))
    whole, split = _no_batchnorm_model(), _no_batchnorm_model()
    loss_whole = _one_step(whole, [(x, y)], accum=1, optimizer=optimizer)
    loss_split = _one_step(split, [(x[:4], y[:4]), (x[4:], y[4:])], accum=2, optimizer=optimizer)
    assert loss_split == pytest.approx(loss_whole, rel=1e-5)
    for a, b in zip(whole.parameters(), split.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_clipping_bounds_the_gradient_norm():
    x, y = torch.randn(8, 3, 32), torch.randint(0, 2, (8,))
    norm = lambda m: torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in m.parameters()])).item()  # noqa: E731
    free, clipped = _no_batchnorm_model(), _no_batchnorm_model()
    _one_step(free, [(x, y)], accum=1)
    _one_step(clipped, [(x, y)], accum=1, clip=1e-3)
    assert norm(free) > 1e-2 and norm(clipped) <= 1e-3 * (1 + 1e-5)


def test_bf16_autocast_runs_the_forward_in_bf16_on_the_cpu():
    model, dtypes = _no_batchnorm_model(), []
    stepper = Stepper(torch.optim.SGD(model.parameters(), lr=0.1), torch.device("cpu"), "bf16")

    def batch_loss(x, y):
        logits = model(x)
        dtypes.append(logits.dtype)
        return nn.functional.cross_entropy(logits, y)

    loss = run_epoch(model, [(torch.randn(4, 3, 32), torch.tensor([0, 1, 0, 1]))], batch_loss, stepper)
    assert dtypes == [torch.bfloat16] and np.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay fp32
    with pytest.raises(ValueError, match="use precision bf16"):
        Stepper(torch.optim.SGD(model.parameters(), lr=0.1), torch.device("cpu"), "fp16")


def test_a_bf16_dry_run_writes_a_complete_run(ptbxl, tmp_path):
    write_config(tmp_path / "bf16.yaml", ptbxl, tmp_path, name="bf16", precision="bf16", clip_grad_norm=1.0)
    run_cli("train", str(tmp_path / "bf16.yaml"), "--dry-run", "--device", "cpu")
    run = tmp_path / "runs/bf16"
    assert (run / "metrics.json").is_file() and (run / "checkpoint/model.safetensors").is_file()
    assert "1 process(es) on cpu" in (run / "log.txt").read_text()


def test_compile_wraps_the_training_model_and_saves_the_plain_one(ptbxl, tmp_path):
    cfg = replace(recipe(ptbxl, tmp_path, device="cpu"), compile=True)
    data = SimpleNamespace(task=SimpleNamespace(num_classes=2, multilabel=False),
                           reader=SimpleNamespace(lead_names=["I"] * 12), leads=("I",) * 12)  # fmt: skip
    parts = build_model_and_optimizer(cfg, data, World())
    assert isinstance(parts.train_model, torch._dynamo.eval_frame.OptimizedModule)
    assert parts.train_model._orig_mod is parts.model
    assert not any(key.startswith("_orig_mod") for key in parts.model.state_dict())


@pytest.mark.slow
def test_resume_with_another_device_and_workers_is_bit_identical_and_changes_are_logged(ptbxl, tmp_path):
    base = dict(device="cpu", epochs=3, augment={"noise_std": 0.05})
    whole = fit(recipe(ptbxl, tmp_path, name="whole", **base))
    killed = recipe(ptbxl, tmp_path, name="killed", **base)
    with pytest.raises(Interrupted):
        fit(replace(killed, device="auto"), progress=stop_at_epoch(2))
    resumed = fit(replace(killed, workers=2))
    wa, wb = (
        load_file(whole / "checkpoint/model.safetensors"),
        load_file(resumed / "checkpoint/model.safetensors"),
    )
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    np.testing.assert_array_equal(np.load(whole / "predictions/test_probs.npy"),
                                  np.load(resumed / "predictions/test_probs.npy"))  # fmt: skip
    log = (resumed / "log.txt").read_text()
    assert "reopened with device 'cpu' (config.yaml: 'auto')" in log and "resumed after epoch 0" in log
    with pytest.raises(ValueError, match=r"different config \(lr: 0.003 -> 0.001\)"):
        fit(replace(killed, lr=0.001))
    assert json.loads((resumed / "metrics.json").read_text())["test"]  # nothing written was lost


@pytest.mark.slow
def test_resume_with_another_accumulation_continues_the_same_batches(ptbxl, tmp_path):
    base = dict(device="cpu", epochs=2, model="inceptionformer_tiny", model_kwargs={"norm": "layer"},
                crop_seconds=2.5, augment={})  # fmt: skip
    whole = fit(recipe(ptbxl, tmp_path, name="whole", **base))
    split = recipe(ptbxl, tmp_path, name="split", **base)
    with pytest.raises(Interrupted):
        fit(split, progress=stop_at_epoch(2))
    resumed = fit(replace(split, grad_accum_steps=2))
    assert "reopened with grad_accum_steps 2 (config.yaml: 1)" in (resumed / "log.txt").read_text()
    read = lambda run: np.genfromtxt(run / "history.csv", delimiter=",", names=True)  # noqa: E731
    np.testing.assert_allclose(read(resumed)["train_loss"], read(whole)["train_loss"], rtol=1e-4)
