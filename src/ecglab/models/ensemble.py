"""An ensemble shipped as one model: the mean of its members' logits, one safetensors and one ONNX file.

Each member is a registered model given as `{"model": name, "kwargs": {...}}`; all share the
ensemble's classes, leads and input window. The mean is taken over logits, not probabilities,
so the ensemble is itself a network that outputs logits: the temperature, sigmoid or softmax,
per-window averaging, ONNX export and the page's inference apply to it exactly as to a single
model (the mean of logits is the geometric-mean ensemble of the members' odds; its ranking is
within noise of the probability mean, and it keeps one code path for every model).

It is not part of the zoo that `list_models` walks (see `register_combination`): it has no
architecture of its own to train or benchmark. Grad-CAM explains it through its first member's
layers (`feature_info` is that member's, prefixed): the gradient of the mean logit reaches them
scaled by 1 / members, which the map's normalisation removes.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._output import split_output
from ecglab.models._registry import create_model, register_combination


class Ensemble(nn.Module):
    """Members in a ModuleList (`members.<i>.` in the state dict); forward is the mean of their logits."""

    def __init__(self, members: list[nn.Module], specs: list[dict], num_classes: int):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.specs, self.num_classes = specs, num_classes
        self.min_samples = max(getattr(m, "min_samples", 1) for m in members)
        first = getattr(members[0], "feature_info", [])
        self.feature_info = [dict(f, module=f"members.0.{f['module']}") for f in first]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = [split_output(member(x))[0] for member in self.members]
        return torch.stack(logits).mean(dim=0)


def _check_specs(members) -> list[dict]:
    if not isinstance(members, list | tuple) or not members:
        raise ValueError(
            'ensemble: members must be a non-empty list of {"model": NAME, "kwargs": {...}}, '
            f"got {members!r}"
        )
    specs = []
    for i, spec in enumerate(members):
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("model"), str)
            or set(spec) - {"model", "kwargs"}
        ):
            raise ValueError(
                f'ensemble: member {i} is {spec!r}; expected {{"model": NAME, "kwargs": {{...}}}}'
            )
        if spec["model"] == "ensemble":
            raise ValueError(f"ensemble: member {i} is itself an ensemble; list its members instead")
        specs.append({"model": spec["model"], "kwargs": dict(spec.get("kwargs") or {})})
    return specs


@register_combination(
    "a combination of registered models built from member specs; its members pass the contract"
)
def ensemble(num_classes, in_chans=12, members=None):
    """The mean of the logits of `members` ([{"model": name, "kwargs": {...}}, ...]), built with the
    ensemble's `num_classes` and `in_chans`."""
    specs = _check_specs(members)
    nets = [
        create_model(s["model"], num_classes=num_classes, in_chans=in_chans, **s["kwargs"]) for s in specs
    ]
    return Ensemble(nets, specs, num_classes)
