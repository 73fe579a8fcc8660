"""Contrastive predictive coding (Oord et al. 2018) with any encoder of the zoo.

The encoder turns the signal into a sequence of frame features z_t (its `forward_features`, whose
time steps are short strided frames of the input); a GRU summarises z_1..z_t into a context c_t;
one linear predictor per step k = 1..K maps c_t to a guess of z_{t+k}. InfoNCE scores the guess
against the z_{t+k} of every record in the batch: its own record's is the positive.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models import create_model
from ecglab.pretrain.losses import info_nce


class CPC(nn.Module):
    """Encoder, GRU context network and per-step predictors; forward(x) is the CPC loss.

    `encoder` is a registered model name (built with `num_classes=0`, `in_chans` leads and
    `encoder_kwargs`) or a module with `forward_features` and `num_features`. Defaults are ours:
    resnet1d_wang (one feature step per 4 samples, 40 ms at 100 Hz), a one-layer GRU of 256 units
    and 12 steps ahead (Oord et al.'s audio setting: K = 12, GRU 256).
    """

    def __init__(
        self,
        encoder: str | nn.Module = "resnet1d_wang",
        in_chans: int = 12,
        context_dim: int = 256,
        steps: int = 12,
        **encoder_kwargs,
    ):
        super().__init__()
        if isinstance(encoder, str):
            encoder = create_model(encoder, 0, in_chans, **encoder_kwargs)
        self.encoder = encoder
        dim = encoder.num_features
        self.context = nn.GRU(dim, context_dim, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(context_dim, dim) for _ in range(steps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The InfoNCE loss of x (B, leads, samples), averaged over steps ahead, positions and records."""
        z = self.encoder.forward_features(x).transpose(1, 2)  # (B, T, C)
        steps = len(self.predictors)
        if z.shape[1] <= steps:
            raise ValueError(
                f"the encoder gives {z.shape[1]} feature steps for {x.shape[-1]} samples; predicting "
                f"{steps} steps ahead needs more: use longer windows or fewer steps"
            )
        c, _ = self.context(z)
        losses = [
            info_nce(predict(c[:, :-k]).transpose(0, 1), z[:, k:].transpose(0, 1))
            for k, predict in enumerate(self.predictors, start=1)
        ]
        return torch.stack(losses).mean()
