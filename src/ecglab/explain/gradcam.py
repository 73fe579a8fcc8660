"""Grad-CAM for 1-D ECG models: which samples of the input speak for a class.

Needs only the model contract: the default layer is `feature_info[-1]` (the module whose output
`forward_features` returns, (B, C, T)). The channel weights are the time-averaged gradients of the
class logit, the map is ReLU(sum_c weight_c * activation_c), linearly stretched to the input length
and divided by its maximum, so 0 means "no evidence" and 1 the strongest evidence in the record.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

Prepare = Callable[[np.ndarray], np.ndarray]


def default_layer(model: nn.Module) -> str:
    """The dotted name of the last stage: the module whose output `forward_features` returns."""
    info = getattr(model, "feature_info", None)
    if not info:
        raise ValueError(f"{type(model).__name__}: no feature_info; name the layer to explain")
    return info[-1]["module"]


def find_layer(model: nn.Module, layer: str | None) -> tuple[str, nn.Module]:
    """(name, module) of the layer to explain: `layer`, or the last stage."""
    name = layer or default_layer(model)
    try:
        return name, model.get_submodule(name)
    except AttributeError:
        stages = ", ".join(f["module"] for f in getattr(model, "feature_info", []))
        raise ValueError(f"{type(model).__name__}: no layer {name!r}; its stages are {stages}") from None


def lead_axis(model: nn.Module, layer: str) -> int:
    """The axis of a 4-D layer output that indexes the leads: 1, (B, leads, C, T), unless the layer's
    feature_info entry names another `lead_axis` (2 for a 2-D network's (B, C, leads, T) image)."""
    entry = next((f for f in getattr(model, "feature_info", []) if f["module"] == layer), {})
    return entry.get("lead_axis", 1)


def _output(out):
    return out[0] if isinstance(out, tuple) else out


def _activation_and_grad(model: nn.Module, x: torch.Tensor, class_index: int, layer: str | None):
    """The chosen layer's output for a batch and the gradient of the summed class logit with respect to it."""
    name, module = find_layer(model, layer)
    captured = []
    handle = module.register_forward_hook(lambda m, i, o: captured.append(_output(o)))
    try:
        with torch.enable_grad():
            logits = model(x)
            if not 0 <= class_index < logits.shape[-1]:
                raise ValueError(f"class index {class_index} out of range for {logits.shape[-1]} classes")
            (grad,) = torch.autograd.grad(logits[:, class_index].sum(), captured[-1])
    finally:
        handle.remove()
    return captured[-1].detach(), grad, name


def stretch(cam: torch.Tensor, samples: int) -> torch.Tensor:
    """Linear interpolation of (..., T) to (..., samples), each feature step centred on the samples it covers."""
    shape = cam.shape
    flat = cam.reshape(-1, 1, shape[-1]).float()
    return F.interpolate(flat, size=samples, mode="linear", align_corners=False).reshape(*shape[:-1], samples)


def raw_cam(
    model: nn.Module, x: torch.Tensor, class_index: int, layer: str | None = None, per_lead: bool = False
) -> torch.Tensor:
    """Unnormalised Grad-CAM of a batch (B, leads, samples) -> (B, samples), or (B, leads, samples) per lead.

    Per lead needs a layer whose output keeps a lead axis, (B, leads, C, T) or the axis its feature_info
    entry names; a (B, C, T) output has mixed the leads. Channel weights are per lead either way.
    """
    act, grad, name = _activation_and_grad(model, x, class_index, layer)
    leads, samples = x.shape[1], x.shape[-1]
    if per_lead:
        if act.ndim == 4:
            axis = lead_axis(model, name)
            act, grad = act.movedim(axis, 1), grad.movedim(axis, 1)
        if act.ndim != 4 or act.shape[1] != leads:
            raise ValueError(
                f"{type(model).__name__}: layer {name!r} outputs {tuple(act.shape)}, not (B, {leads} leads, C, T): "
                "its channels mix the leads, so there is no per-lead map; use grad_cam for one map over time"
            )
    elif act.ndim != 3:
        raise ValueError(
            f"{type(model).__name__}: layer {name!r} outputs {tuple(act.shape)}, expected (B, C, T)"
        )
    weights = grad.mean(dim=-1, keepdim=True)  # one weight per channel (and lead): time-averaged gradient
    cam = F.relu((weights * act).sum(dim=-2))
    return stretch(cam, samples)


def normalize_map(cam: np.ndarray) -> np.ndarray:
    """Divide by the maximum so the map lies in [0, 1]; an all-zero map stays zero (no evidence anywhere)."""
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(cam.max()) if cam.size else 0.0
    return cam / top if top > 0 else np.zeros_like(cam)


def window_starts(samples: int, window: int, stride: int) -> list[int]:
    """Window offsets that cover a record; the last window ends at the record's end."""
    if samples <= window:
        return [0]
    starts = list(range(0, samples - window + 1, stride))
    if starts[-1] != samples - window:
        starts.append(samples - window)
    return starts


def stitch(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: np.ndarray | torch.Tensor,
    window: int | None = None,
    stride: int | None = None,
    prepare: Prepare | None = None,
) -> np.ndarray:
    """Run `fn` ((W, leads, n) -> (W, ..., n) maps) on sliding windows of a record and average the overlaps.

    `prepare` turns each raw window into the model's input (e.g. the per-window z-score the model was
    trained with). A record shorter than `window` is explained as it is.
    """
    x = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, dtype=np.float32)
    samples = x.shape[-1]
    window = min(window or samples, samples)
    starts = window_starts(samples, window, stride or max(window // 2, 1))
    batch = np.stack([x[:, s : s + window] for s in starts])
    if prepare is not None:
        batch = np.stack([prepare(w) for w in batch])
    maps = fn(torch.from_numpy(np.ascontiguousarray(batch))).detach().cpu().numpy()
    total = np.zeros(maps.shape[1:-1] + (samples,), dtype=np.float64)
    count = np.zeros(samples)
    for s, m in zip(starts, maps, strict=True):
        total[..., s : s + window] += m
        count[s : s + window] += 1
    return (total / count).astype(np.float32)


def model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def grad_cam(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    class_index: int,
    layer: str | None = None,
    *,
    window: int | None = None,
    stride: int | None = None,
    prepare: Prepare | None = None,
) -> np.ndarray:
    """Grad-CAM of one record (leads, samples) for one class -> (samples,) in [0, 1].

    With `window` (the model's input length, meta["window_samples"]) the record is explained window by
    window (stride: half a window) and the raw maps are averaged before the one normalisation, so a
    window with stronger evidence stays brighter than a weak one.
    """
    device = model_device(model)
    cam = stitch(lambda b: raw_cam(model, b.to(device), class_index, layer), x, window, stride, prepare)
    return normalize_map(cam)


def grad_cam_leads(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    class_index: int,
    layer: str | None = None,
    *,
    window: int | None = None,
    stride: int | None = None,
    prepare: Prepare | None = None,
) -> np.ndarray:
    """Grad-CAM per lead (leads, samples) in [0, 1], for a layer that keeps the leads apart (`lead_axis`).

    Raises ValueError when the layer's output is (B, C, T): most models mix the leads in their first
    convolution, and a per-lead map cannot be recovered from mixed channels.
    """
    device = model_device(model)

    def fn(batch: torch.Tensor) -> torch.Tensor:
        return raw_cam(model, batch.to(device), class_index, layer, per_lead=True)

    return normalize_map(stitch(fn, x, window, stride, prepare))


def keeps_leads(model: nn.Module, leads: int, samples: int, layer: str | None = None) -> bool:
    """Whether the layer's output has a lead axis (see `lead_axis`), found by one forward pass on zeros."""
    shapes = []
    name, module = find_layer(model, layer)
    handle = module.register_forward_hook(lambda m, i, o: shapes.append(_output(o).shape))
    try:
        with torch.no_grad():
            model(torch.zeros(1, leads, samples, device=model_device(model)))
    finally:
        handle.remove()
    return len(shapes[-1]) == 4 and shapes[-1][lead_axis(model, name)] == leads
