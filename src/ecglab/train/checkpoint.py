"""Checkpoints without pickles: safetensors for tensors, JSON for everything else.

A checkpoint is a folder with `model.safetensors` and `config.json` (enough to rebuild the model
with `create_model` and use it on a file). The resume state is one safetensors file holding the
model, optimizer and scheduler, with the rest as JSON metadata. Every file is written to a
temporary name and renamed into place, so a killed process never leaves a torn file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ecglab.atomic import atomic_path, write_text
from ecglab.checkpoint_meta import CheckpointMeta, read_meta
from ecglab.models import create_model
from ecglab.models.layers.heads import add_linear_probe

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
UNSAFE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def _atomic_save_tensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def save_checkpoint(folder: str | Path, model: torch.nn.Module, meta: CheckpointMeta) -> Path:
    """Write `model.safetensors`, then `config.json` with the weights' SHA-256 (checked at load)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_save_tensors(folder / MODEL_FILE, _unwrap(model).state_dict())
    meta = replace(meta, weights_sha256=_sha256(folder / MODEL_FILE))
    write_text(folder / CONFIG_FILE, json.dumps(meta.to_json(), indent=1))
    return folder


def load_checkpoint(folder: str | Path, trust: bool = False) -> tuple[torch.nn.Module, CheckpointMeta]:
    """Rebuild the model of a checkpoint folder; a pickled file (`.pt`, ...) only with `trust=True`.

    Anything wrong with either file (garbage or missing keys in config.json; a truncated, changed
    or foreign model.safetensors; missing, extra, misshapen or non-finite tensors) is a ValueError
    naming the file and the problem.
    """
    folder = Path(folder)
    if folder.is_file() and folder.suffix in UNSAFE_SUFFIXES:
        return _load_pickled(folder, trust)
    config_path, weights_path = folder / CONFIG_FILE, folder / MODEL_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"{folder}: not a checkpoint folder (needs {MODEL_FILE} and {CONFIG_FILE})")
    meta = read_meta(config_path)
    model = _build(meta, config_path)
    state = _read_tensors(weights_path)
    _check_tensors(model, state, weights_path)
    if meta.weights_sha256 is not None and _sha256(weights_path) != meta.weights_sha256:
        raise ValueError(
            f"{weights_path}: its SHA-256 differs from the one {CONFIG_FILE} records; the file was changed "
            "or damaged after training (restore it, or remove weights_sha256 if you changed it on purpose)"
        )
    model.load_state_dict(state, strict=True)
    return model.eval(), meta


class TemperatureScaled(torch.nn.Module):
    """`model`'s logits divided by a fitted temperature: the network `predict` and the ONNX file run."""

    def __init__(self, model: torch.nn.Module, temperature: float):
        super().__init__()
        self.model, self.temperature = model, float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature


def calibrated(model: torch.nn.Module, meta: CheckpointMeta) -> torch.nn.Module:
    """The network whose outputs are the checkpoint's calibrated logits (logits / meta.temperature).

    The one place the temperature is applied: the torch runtime and the ONNX export both run this,
    so an ONNX file (and the page that applies only sigmoid or softmax to it) agrees with `predict`.
    The weights stay those of `model`; Grad-CAM reads `model` itself (a positive scale changes no map).
    """
    return model if meta.temperature == 1.0 else TemperatureScaled(model, meta.temperature).eval()


def _build(meta: CheckpointMeta, config_path: Path) -> torch.nn.Module:
    try:
        model = create_model(
            meta.model, num_classes=meta.num_classes, in_chans=meta.in_chans, **meta.model_kwargs
        )
        return add_linear_probe(model) if meta.linear_probe else model
    except (TypeError, ValueError) as exc:  # an unknown model name, or arguments it does not take
        raise ValueError(f"{config_path}: cannot build model {meta.model!r}: {exc}") from None


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except SafetensorError as exc:
        raise ValueError(f"{path}: truncated or not a safetensors file ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _check_tensors(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """What `load_state_dict(strict=True)` would refuse, and non-finite weights, as errors naming the tensor."""
    expected = model.state_dict()
    for problem, names in (
        ("misses", set(expected) - set(state)),
        ("has unexpected", set(state) - set(expected)),
    ):
        if names:
            raise ValueError(
                f"{path}: {problem} tensor(s) {_names(names)}; the weights belong to another model or "
                f"other model_kwargs than {CONFIG_FILE} states"
            )
    for name, tensor in state.items():
        want = expected[name]
        if tensor.shape != want.shape:
            raise ValueError(
                f"{path}: tensor {name!r} has shape {tuple(tensor.shape)}, the model expects {tuple(want.shape)}"
            )
        if tensor.is_floating_point() != want.is_floating_point():
            raise ValueError(f"{path}: tensor {name!r} is {tensor.dtype}, the model expects {want.dtype}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(
                f"{path}: tensor {name!r} holds {bad} NaN or infinite value(s); the weights are broken"
            )


def _names(names: set[str], most: int = 5) -> str:
    shown = ", ".join(repr(n) for n in sorted(names)[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_pickled(path: Path, trust: bool) -> tuple[torch.nn.Module, CheckpointMeta]:
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
    meta = read_meta(config_path)
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, torch.nn.Module):
        return obj.eval(), meta
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, neither a model nor a state dict")
    model = _build(meta, config_path)
    state = obj.get("state_dict", obj)
    _check_tensors(model, state, path)
    model.load_state_dict(state, strict=True)
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
