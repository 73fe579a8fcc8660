"""One device resolver for every command: auto, cpu, cuda, cuda:N, mps; a missing device is named."""

import json

import pytest
import torch

from ecglab.devices import resolve_device
from ecglab.infer import default_models
from helpers import run_cli


def test_device_resolution_names_what_exists(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"device 'cuda:7' does not exist on this machine; available: cpu"):
        resolve_device("cuda:7")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda:1")  # torchrun: cuda:LOCAL_RANK
    assert resolve_device("cuda") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="every process on one GPU"):
        resolve_device("cuda:0", local_rank=1)


@pytest.mark.skipif("ptbxl_rhythm" not in default_models(), reason="no shipped ptbxl_rhythm model")
def test_predict_explain_and_serve_take_a_device(tmp_path):
    hea = run_cli("example", "--out", str(tmp_path)).stdout.strip()
    on_cpu = json.loads(run_cli("predict", hea, "--format", "json", "--device", "cpu").stdout)
    assert on_cpu == json.loads(run_cli("predict", hea, "--format", "json").stdout)  # auto: cpu here
    for command in (["predict", hea], ["explain", hea, "--out", str(tmp_path / "x.png")], ["serve"]):
        proc = run_cli(*command, "--device", "cuda:99", check=False)
        assert proc.returncode == 2 and "device 'cuda:99' does not exist" in proc.stderr, proc.stderr
