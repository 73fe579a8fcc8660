"""Checkpoints without pickles: safetensors for tensors, JSON for everything else.

A checkpoint is a folder with `model.safetensors` and `config.json` (enough to rebuild the model
with `create_model` and use it on a file). The resume state is one safetensors file holding the
model, optimizer and scheduler, with the rest as JSON metadata. Every file is written to a
temporary name and renamed into place, so a killed process never leaves a torn file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ecglab.models import create_model

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
UNSAFE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_save_tensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def save_checkpoint(folder: str | Path, model: torch.nn.Module, meta: dict) -> Path:
    """Write `model.safetensors` and `config.json` (meta: model name, kwargs, classes, fs, ...)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_save_tensors(folder / MODEL_FILE, _unwrap(model).state_dict())
    _atomic_write_text(folder / CONFIG_FILE, json.dumps(meta, indent=1))
    return folder


def _build(meta: dict) -> torch.nn.Module:
    return create_model(
        meta["model"],
        num_classes=meta["num_classes"],
        in_chans=meta["in_chans"],
        **meta.get("model_kwargs", {}),
    )


def load_checkpoint(folder: str | Path, trust: bool = False) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of a checkpoint folder; a pickled file (`.pt`, ...) only with `trust=True`."""
    folder = Path(folder)
    if folder.is_file() and folder.suffix in UNSAFE_SUFFIXES:
        return _load_pickled(folder, trust)
    config_path = folder / CONFIG_FILE
    if not config_path.is_file() or not (folder / MODEL_FILE).is_file():
        raise FileNotFoundError(f"{folder}: not a checkpoint folder (needs {MODEL_FILE} and {CONFIG_FILE})")
    meta = json.loads(config_path.read_text())
    model = _build(meta)
    state = {}
    with safe_open(str(folder / MODEL_FILE), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
            state[key] = f.get_tensor(key)
    model.load_state_dict(state, strict=True)
    return model.eval(), meta


def _load_pickled(path: Path, trust: bool) -> tuple[torch.nn.Module, dict]:
    """A pickled model or state dict with `config.json` beside it, for users who trust its source."""
    if not trust:
        raise ValueError(
            f"{path}: pickled checkpoints can run arbitrary code when loaded; use a safetensors "
            "checkpoint folder, or pass the explicit trust flag (--trust) if you trust its source"
        )
    config_path = path.with_name(CONFIG_FILE)
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{path}: a pickled checkpoint needs {CONFIG_FILE} beside it (model, classes, fs, ...)"
        )
    meta = json.loads(config_path.read_text())
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, torch.nn.Module):
        return obj.eval(), meta
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, neither a model nor a state dict")
    model = _build(meta)
    model.load_state_dict(obj.get("state_dict", obj), strict=True)
    return model.eval(), meta


def save_state(path: str | Path, model, optimizer, scheduler, extra: dict) -> None:
    """The resume state in one file: model and optimizer tensors, everything else as JSON."""
    tensors = {f"model/{k}": v for k, v in _unwrap(model).state_dict().items()}
    opt = optimizer.state_dict()
    plain_state: dict[str, dict] = {}
    for idx, entry in opt["state"].items():
        plain_state[str(idx)] = {}
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim/{idx}/{name}"] = value
            else:
                plain_state[str(idx)][name] = value
    meta = {
        "param_groups": opt["param_groups"],
        "optim_plain": plain_state,
        "scheduler": scheduler.state_dict(),
        "extra": extra,
    }
    _atomic_save_tensors(Path(path), tensors, metadata={"state": json.dumps(meta)})


def load_state(path: str | Path, model, optimizer, scheduler) -> dict:
    """Restore what `save_state` wrote; returns its `extra` dict."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["state"])
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    _unwrap(model).load_state_dict(
        {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}, strict=True
    )
    state: dict[int, dict] = {int(i): dict(plain) for i, plain in meta["optim_plain"].items()}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    scheduler.load_state_dict(meta["scheduler"])
    return meta["extra"]
