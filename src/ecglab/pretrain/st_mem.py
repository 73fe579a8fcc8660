"""ST-MEM pretraining (Na et al., ICLR 2024): mask 75% of each lead's patches, reconstruct them lead by lead.

The encoder (`st_mem_vit` of the zoo) sees only the visible patches of every lead, with their
separators and lead embeddings. A light decoder puts a learned mask token where each hidden patch
was, then runs over one lead at a time (it cannot copy from the other leads), and predicts every
patch's samples; the loss is the mean squared error on the hidden patches only.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models import create_model
from ecglab.models.layers.mixers import make_block
from ecglab.models.st_mem import StMemViT, patchify, sincos_positions
from ecglab.pretrain.losses import masked_patch_mse

MASK_RATIO = 0.75


def random_patch_mask(
    batch: int, leads: int, n: int, ratio: float = MASK_RATIO, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which patches each lead keeps, drawn independently per lead: (keep (B, L, k) sorted, mask (B, L, n)).

    k = int(n * (1 - ratio)) as MAE counts it, so a lead of 40 patches keeps 10 and hides 30.
    mask is 1 where a patch is hidden.
    """
    keep_count = int(n * (1 - ratio))
    if not 0 < keep_count < n:
        raise ValueError(
            f"mask ratio {ratio} of {n} patches keeps {keep_count}; it must keep some and hide some"
        )
    order = torch.rand(batch, leads, n, device=device).argsort(dim=-1)
    keep = order[..., :keep_count].sort(dim=-1).values
    mask = torch.ones(batch, leads, n, device=device)
    mask.scatter_(-1, keep, 0.0)
    return keep, mask


def normalize_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each patch standardised to zero mean, unit variance (the published ST-MEM config's norm_pix_loss)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True, unbiased=False)
    return (patches - mean) / (var + eps).sqrt()


class LeadwiseDecoder(nn.Module):
    """Transformer blocks over each lead's tokens alone, then a linear layer to the patch's samples."""

    def __init__(self, dim: int, patch_size: int, depth: int, num_heads: int):
        super().__init__()
        self.blocks = nn.Sequential(*(make_block("mhsa", dim, num_heads, "mlp", 4.0) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, patch_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, leads, T, dim) -> (B, leads, T, patch_size); no token sees another lead."""
        b, leads = tokens.shape[:2]
        x = self.norm(self.blocks(tokens.flatten(0, 1)))
        return self.head(x).unflatten(0, (b, leads))


class STMEM(nn.Module):
    """The ST-MEM masked autoencoder around a `st_mem_vit` encoder; forward(x) is the loss.

    The paper's decoder is 4 blocks of width 256 (the published config `dec256d4b`); ours is 2 blocks
    of width 128 with 4 heads, to suit the smaller encoder. Targets are standardised per patch, as the
    published config does (`norm_target=False` reconstructs raw samples). `present` (B, leads), for
    a pool that zero-fills leads a record lacks, drops the absent leads' patches from the loss.
    """

    def __init__(
        self,
        encoder: StMemViT | None = None,
        in_chans: int = 12,
        mask_ratio: float = MASK_RATIO,
        decoder_dim: int = 128,
        decoder_depth: int = 2,
        decoder_heads: int = 4,
        norm_target: bool = True,
    ):
        super().__init__()
        self.encoder = encoder if encoder is not None else create_model("st_mem_vit", 0, in_chans)
        if not isinstance(self.encoder, StMemViT):
            raise TypeError(f"ST-MEM pretrains a st_mem_vit encoder, not {type(self.encoder).__name__}")
        self.mask_ratio, self.norm_target = mask_ratio, norm_target
        self.to_decoder = nn.Linear(self.encoder.num_features, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(decoder_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.decoder = LeadwiseDecoder(decoder_dim, self.encoder.patch_size, decoder_depth, decoder_heads)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(prediction, target, mask) for x (B, leads, samples): the first two (B, leads, n, patch_size)."""
        target = patchify(x, self.encoder.patch_size)
        tokens = self.encoder.embed(x)
        b, leads, n, dim = tokens.shape
        keep, mask = random_patch_mask(b, leads, n, self.mask_ratio, x.device)
        visible = tokens.gather(2, keep[..., None].expand(-1, -1, -1, dim))
        encoded = self.to_decoder(self.encoder.encode(visible, n))
        full = self.mask_token.expand(b, leads, n, -1).clone()
        full = full.scatter(2, keep[..., None].expand(-1, -1, -1, full.shape[-1]), encoded[:, :, 1:-1])
        seps = encoded[:, :, [0, -1]]
        tokens = torch.cat([seps[:, :, :1], full, seps[:, :, 1:]], dim=2)
        pred = self.decoder(tokens + sincos_positions(n + 2, tokens.shape[-1], x.device))[:, :, 1:-1]
        return pred, normalize_patches(target) if self.norm_target else target, mask

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        pred, target, mask = self.reconstruct(x)
        if present is not None:
            mask = mask * present.to(mask.dtype)[:, :, None]
        return masked_patch_mse(pred, target, mask)
