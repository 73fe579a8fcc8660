"""What a model's forward may return: logits, or a dict with `logits` and an `aux_loss`.

A model with an extra training loss (a reconstruction, an auxiliary head, a correlation penalty)
returns `{"logits": ..., "aux_loss": ...}` in training mode, the auxiliary term already weighted
as its paper weights it. In eval mode every model returns plain logits, so prediction, export and
Grad-CAM never see the dict. The training loop adds `aux_loss` to the task loss through `split_output`,
the one place that knows about it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def split_output(out: torch.Tensor | Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits, aux_loss or None) from whatever a model's forward returned."""
    if isinstance(out, torch.Tensor):
        return out, None
    if not isinstance(out, Mapping) or "logits" not in out:
        raise TypeError(f"a model's forward returns logits or a dict with 'logits'; got {type(out).__name__}")
    unknown = set(out) - {"logits", "aux_loss"}
    if unknown:
        raise TypeError(
            f"a model's output dict has unknown keys {sorted(unknown)}; expected logits, aux_loss"
        )
    aux = out.get("aux_loss")
    if aux is not None and aux.ndim != 0:
        raise ValueError(f"aux_loss must be a scalar tensor, got shape {tuple(aux.shape)}")
    return out["logits"], aux
