"""The ST-MEM encoder (Na et al., ICLR 2024): a ViT over per-lead patches with lead and separator embeddings.

Every lead is cut into non-overlapping patches; a patch of every lead is one token. Positions are
shared by the leads, a learned embedding tells the leads apart, and a learned separator token
stands before and after each lead's patches. One transformer attends over the tokens of all leads.
The masked-autoencoder pretraining around it is `ecglab.pretrain.st_mem`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin
from ecglab.models.layers.mixers import make_block


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, leads, samples) -> (B, leads, samples / patch_size, patch_size); the patches tile each lead."""
    if x.shape[-1] % patch_size:
        raise ValueError(
            f"{x.shape[-1]} samples are not a whole number of {patch_size}-sample patches; "
            f"crop the input to a multiple of {patch_size}"
        )
    return x.unflatten(-1, (-1, patch_size))


def sincos_positions(n: int, dim: int, device=None) -> torch.Tensor:
    """Fixed sine-cosine embeddings of positions 0..n-1, (n, dim); they extend to any length."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(n, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return out


class LeadMean(nn.Module):
    """Drops the separators and averages the leads' tokens of each time patch: (B, L, n+2, D) -> (B, D, n)."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens[:, :, 1:-1].mean(dim=1).transpose(1, 2)


class StMemViT(ClassifierMixin, nn.Module):
    """ST-MEM's encoder: per-lead patch tokens, shared positions, lead embeddings, separators, a ViT.

    The paper's encoder is ViT-B (12 blocks, width 768, 12 heads) on patches of 75 samples at
    250 Hz (0.3 s; 2,250 samples, 30 patches a lead), ~85 M weights. Ours is sized for ecglab's
    100 Hz and CPU baselines (~2.7 M weights): patches of 25 samples (0.25 s; 40 a lead over 10 s),
    6 blocks of width 192 with 6 heads, MLP ratio 4. Also our choices: fixed sine-cosine positions
    (so any length works; the patch projection is linear as the paper writes), an input not a whole
    number of patches is zero-padded at the end. `forward_features` keeps time: the leads' tokens of
    each patch are averaged, so the head's mean over time is the mean over all patch tokens.
    """

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        patch_size: int = 25,
        dim: int = 192,
        depth: int = 6,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.in_chans, self.patch_size, self.min_samples = in_chans, patch_size, patch_size
        self.patch_embed = nn.Linear(patch_size, dim)
        self.lead_embed = nn.Parameter(torch.zeros(in_chans, dim))
        self.sep_embed = nn.Parameter(torch.zeros(dim))
        self.blocks = nn.Sequential(
            *(make_block("mhsa", dim, num_heads, "mlp", mlp_ratio) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(dim)
        self.pool = LeadMean()
        self.num_features = dim
        self.feature_info = [{"module": "pool", "num_chs": dim, "reduction": patch_size}]
        self.head = ClassifierHead(dim, num_classes, drop_rate)
        self.num_classes = num_classes
        nn.init.trunc_normal_(self.lead_embed, std=0.02)
        nn.init.trunc_normal_(self.sep_embed, std=0.02)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with their positions, (B, leads, n, dim); patch i sits at position i + 1."""
        if x.shape[1] != self.in_chans:
            raise ValueError(f"StMemViT was built for {self.in_chans} leads, got {x.shape[1]}")
        x = F.pad(x, (0, -x.shape[-1] % self.patch_size))
        tokens = self.patch_embed(patchify(x, self.patch_size))
        n = tokens.shape[2]
        return tokens + sincos_positions(n + 2, tokens.shape[-1], x.device)[1 : n + 1]

    def encode(self, tokens: torch.Tensor, n: int) -> torch.Tensor:
        """Encode (B, leads, k, dim) tokens (all n patches, or the visible k of them) -> (B, leads, k + 2, dim).

        Separators at positions 0 and n + 1 frame each lead; every token gets its lead's embedding.
        """
        b, leads, k, dim = tokens.shape
        pos = sincos_positions(n + 2, dim, tokens.device)
        left = (self.sep_embed + pos[0]).expand(b, leads, 1, dim)
        right = (self.sep_embed + pos[n + 1]).expand(b, leads, 1, dim)
        x = torch.cat([left, tokens, right], dim=2) + self.lead_embed[None, :, None]
        x = self.blocks(x.flatten(1, 2))
        return self.norm(x).unflatten(1, (leads, k + 2))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, leads, samples) -> (B, dim, ceil(samples / patch_size))."""
        tokens = self.embed(x)
        return self.pool(self.encode(tokens, tokens.shape[2]))


@register_model
def st_mem_vit(num_classes, in_chans=12, **kwargs):
    """ST-MEM's encoder at a CPU-friendly size: 25-sample patches, 6 blocks of width 192, 6 heads."""
    return StMemViT(num_classes, in_chans, **kwargs)
