"""Token selection-based multi-scale dual-branch CNN-Transformer (with the RR loss).

Zhang S., Lian C., Xu B., Zang J., Zeng Z. "A token selection-based multi-scale dual-branch
CNN-transformer network for 12-lead ECG signal classification", Knowledge-Based Systems 285:111006
(2024). CNN blocks with residual additions extract local features; a multi-scale embedding layer
turns them into tokens of two sizes, each by convolutions of several kernel sizes; each size feeds
its own Transformer branch with a CLS token; midway, each branch drops its redundant tokens, those
its CLS token attends to least; the two CLS tokens classify together, and the RR loss,
1 - Pearson correlation of the two CLS tokens, pulls the branches towards the same decision.

The feature map follows timm's ViT: position 0 holds the two CLS tokens, the other positions the
branches' tokens on the fine branch's time grid (dropped tokens are zeros, the coarse branch's
tokens are repeated to the fine grid); the head reads position 0.

Sizes and weights (ours; the paper's exact figures were not available to us): CNN of 64 and 128
channels (4x downsampling), token sizes 2 and 4 (kernels 1x, 2x and 4x the token size), width 128,
4 heads, 4 blocks per branch, selection after block 2 keeping 70% of the tokens, positions from a
depthwise convolution (records vary in length), RR loss weight 0.1.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin, ConvNormAct
from ecglab.models.layers.attention import attend
from ecglab.models.layers.inception_next import Mlp, depthwise


def rr_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - Pearson correlation of two (B, C) batches of vectors, averaged over the batch."""
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    r = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp(min=1e-8)
    return (1 - r).mean()


class ResidualConv(nn.Module):
    """A strided conv to `out_chans`, then two convs added back to it (the paper's element-wise addition)."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int):
        super().__init__()
        self.down = ConvNormAct(in_chans, out_chans, kernel_size, stride=2)
        self.body = nn.Sequential(
            ConvNormAct(out_chans, out_chans, kernel_size),
            ConvNormAct(out_chans, out_chans, kernel_size, act=None, zero_init=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return F.relu(x + self.body(x))


class MultiScaleEmbedding(nn.Module):
    """Tokens of `size` samples from (B, C, T): convolutions of kernels size, 2 size and 4 size, stride
    `size`, concatenated on channels: (B, C, T) -> (B, T // size, dim)."""

    def __init__(self, in_chans: int, dim: int, size: int):
        super().__init__()
        widths = [dim - 2 * (dim // 3), dim // 3, dim // 3]
        self.convs = nn.ModuleList(
            nn.Conv1d(in_chans, w, k * size, stride=size, padding=(k * size - size) // 2)
            for w, k in zip(widths, (1, 2, 4), strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = [conv(x) for conv in self.convs]
        n = min(t.shape[-1] for t in tokens)
        return torch.cat([t[..., :n] for t in tokens], dim=1).transpose(1, 2)


class Block(nn.Module):
    """Pre-norm Transformer block; with `keep_cls_attn` it keeps the CLS token's attention (B, T - 1)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor, keep_cls_attn: bool = False):
        q, k, v = self.qkv(self.norm1(x)).unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)
        out, weights = attend(q, k, v, capture=keep_cls_attn)
        x = x + self.proj(out.transpose(1, 2).flatten(2))
        x = x + self.mlp(self.norm2(x))
        cls_attn = weights[:, :, 0, 1:].mean(dim=1) if keep_cls_attn else None
        return x, cls_attn


class TokenSelect(nn.Module):
    """Keep the `keep` fraction of tokens (B, T, C) the CLS token attends to most, in time order.

    Returns the kept tokens and their positions (B, k).
    """

    def __init__(self, keep: float):
        super().__init__()
        self.keep = keep

    def forward(self, tokens: torch.Tensor, cls_attn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = max(1, round(self.keep * tokens.shape[1]))
        idx = cls_attn.topk(k, dim=-1).indices.sort(dim=-1).values
        return tokens.gather(1, idx[..., None].expand(-1, -1, tokens.shape[-1])), idx


class Branch(nn.Module):
    """Tokens of one size: embedding, CLS, blocks, selection midway. (B, C, T) -> CLS (B, dim), map (B, dim, T')."""

    def __init__(
        self, in_chans: int, dim: int, size: int, depth: int, heads: int, select_at: int, keep: float
    ):
        super().__init__()
        self.embed = MultiScaleEmbedding(in_chans, dim, size)
        self.pos = depthwise(dim, 7)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.select_at, self.select = select_at, TokenSelect(keep)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.embed(x)
        tokens = tokens + self.pos(tokens)
        b, t, d = tokens.shape
        pos = torch.arange(t, device=x.device).expand(b, t)
        z = torch.cat([self.cls.expand(b, -1, -1), tokens], dim=1)
        for i, block in enumerate(self.blocks):
            z, cls_attn = block(z, keep_cls_attn=i + 1 == self.select_at)
            if cls_attn is not None:
                kept, idx = self.select(z[:, 1:], cls_attn)
                z, pos = torch.cat([z[:, :1], kept], dim=1), pos.gather(1, idx)
        z = self.norm(z)
        grid = z.new_zeros(b, t, d).scatter(1, pos[..., None].expand(-1, -1, d), z[:, 1:])
        return z[:, 0], grid.transpose(1, 2)


class BranchFusion(nn.Module):
    """CLS tokens at position 0, then both branches' token maps on the fine grid: (B, 2 dim, 1 + T)."""

    def forward(self, fine, coarse) -> torch.Tensor:
        (cls_f, map_f), (cls_c, map_c) = fine, coarse
        t = map_f.shape[-1]
        map_c = map_c.repeat_interleave(-(-t // max(1, map_c.shape[-1])), dim=-1)[..., :t]
        map_c = F.pad(map_c, (0, t - map_c.shape[-1]))
        cls = torch.cat([cls_f, cls_c], dim=1)[..., None]
        return torch.cat([cls, torch.cat([map_f, map_c], dim=1)], dim=-1)


class DualBranchTransformer(ClassifierMixin, nn.Module):
    """CNN blocks -> two token sizes, each a Transformer branch with CLS and token selection -> CLS head."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        widths: tuple[int, int] = (64, 128),
        sizes: tuple[int, int] = (2, 4),
        dim: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        select_at: int = 2,
        keep: float = 0.7,
        rr_weight: float = 0.1,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.rr_weight = rr_weight
        self.cnn = nn.Sequential(ResidualConv(in_chans, widths[0], 7), ResidualConv(widths[0], widths[1], 5))
        self.branches = nn.ModuleList(
            Branch(widths[1], dim, s, depth, num_heads, select_at, keep) for s in sizes
        )
        reduction = 4 * sizes[0]
        self.min_samples = 4 * sizes[1]
        self.fuse = BranchFusion()
        self.num_features = 2 * dim
        self.feature_info = [
            {"module": "cnn", "num_chs": widths[1], "reduction": 4},
            {"module": "fuse", "num_chs": self.num_features, "reduction": reduction},
        ]
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate, pool="first")  # the CLS tokens
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        local = self.cnn(x)
        return self.fuse(*(branch(local) for branch in self.branches))

    def forward(self, x: torch.Tensor):
        feats = self.forward_features(x)
        logits = self.forward_head(feats)
        if not self.training:
            return logits
        d = self.num_features // 2
        return {"logits": logits, "aux_loss": self.rr_weight * rr_loss(feats[:, :d, 0], feats[:, d:, 0])}


@register_model
def dual_branch_transformer(num_classes, in_chans=12, **kwargs):
    """Zhang et al. 2024: CNN blocks, two token sizes in two Transformer branches, token selection, RR loss."""
    return DualBranchTransformer(num_classes, in_chans, **kwargs)
