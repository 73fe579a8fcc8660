"""CLOCS (Kiyasseh et al. 2021): contrast views of records, with every record of one patient a positive.

The views (`views.py`: CMSC, CMLC or CMSMLC) of a batch go through one encoder of the zoo; its
features, averaged over time and linearly projected, are the embeddings `clocs_loss` contrasts.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models import create_model
from ecglab.pretrain.losses import CLOCS_TEMPERATURE, clocs_loss


class CLOCS(nn.Module):
    """Encoder and projection; forward(views, patient_ids) is the CLOCS loss.

    views: (B, V, channels, samples); `in_chans` is the channels of one view (1 for CMLC and
    CMSMLC, the record's leads for CMSC). The 128-wide embedding is the paper's; the projection
    after time-averaged features is our choice, and is dropped when the encoder is transferred.
    """

    def __init__(
        self,
        encoder: str | nn.Module = "resnet1d_wang",
        in_chans: int = 1,
        embed_dim: int = 128,
        temperature: float = CLOCS_TEMPERATURE,
        **encoder_kwargs,
    ):
        super().__init__()
        if isinstance(encoder, str):
            encoder = create_model(encoder, 0, in_chans, **encoder_kwargs)
        self.encoder, self.temperature = encoder, temperature
        self.project = nn.Linear(encoder.num_features, embed_dim)

    def embed(self, views: torch.Tensor) -> torch.Tensor:
        """(B, V, channels, samples) -> (B, V, embed_dim)."""
        b, v = views.shape[:2]
        features = self.encoder.forward_features(views.flatten(0, 1)).mean(dim=-1)
        return self.project(features).unflatten(0, (b, v))

    def forward(self, views: torch.Tensor, patient_ids: torch.Tensor) -> torch.Tensor:
        return clocs_loss(self.embed(views), patient_ids, self.temperature)
