"""InceptionFormer's blocks, each (B, T, C) -> (B, T, C), and `make_block` to build one by its name.

A block is a token mixer (convolutions or attention over time) followed by a channel mixer, each with
a residual connection.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models.layers.attention import (
    BiLevelRoutingAttention,
    HiLoAttention,
    KeyReduceAttention,
    PatchAttention,
    ShuntedAttention,
    WindowAttention,
    attend,
)
from ecglab.models.layers.inception_next import (
    ConvModulation,
    CoordAttention1d,
    InceptionDWConv1d,
    SqueezeExcite1d,
    TimeConv,
    channel_mixer,
    depthwise,
)


class ConvBlock(nn.Module):
    """InceptionNeXt (MetaNeXt) block: Inception depthwise mixer, norm, MLP, layer scale, residual.

    `recalibrate` adds squeeze-and-excitation ("se") or coordinate attention ("ca") after the mixer.
    """

    def __init__(self, dim: int, mlp: str = "mlp", mlp_ratio: float = 2.0, recalibrate: str | None = None):
        super().__init__()
        self.mixer = InceptionDWConv1d(dim)
        gates = {None: nn.Identity, "se": SqueezeExcite1d, "ca": CoordAttention1d}
        self.recalibrate = gates[recalibrate](dim) if recalibrate else nn.Identity()
        self.norm = nn.LayerNorm(dim)
        self.mlp = channel_mixer(mlp, dim, mlp_ratio)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * self.mlp(self.norm(self.recalibrate(self.mixer(x))))


class SandwichBlock(nn.Module):
    """Inverted residual (SandwichNet): 1x1 expand, Inception depthwise mixer, 1x1 project.

    The expansion plays the MLP's part, so the block has no separate channel mixer; with ratio 2 it
    weighs the same as a ConvBlock.
    """

    def __init__(self, dim: int, mlp_ratio: float = 2.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm = nn.LayerNorm(dim)
        self.expand = nn.Linear(dim, hidden)
        self.mixer = InceptionDWConv1d(hidden)
        self.project = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mixer(F.gelu(self.expand(self.norm(x))))
        return x + self.gamma * self.project(F.gelu(y))


class ResidualBlock(nn.Module):
    """Pre-norm transformer-style block: x + mix(norm(x)), then x + mlp(norm(x)).

    `pos_conv` adds a depthwise convolution before the block (conditional positional encoding).
    """

    def __init__(self, dim: int, mixer: nn.Module, mlp: str, mlp_ratio: float, pos_conv: bool = False):
        super().__init__()
        self.pos_conv = depthwise(dim, 3) if pos_conv else None
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = channel_mixer(mlp, dim, mlp_ratio)
        self.mixer = mixer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pos_conv is not None:
            x = x + self.pos_conv(x)
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ParallelMixer(nn.Module):
    """Local and global mixers side by side: Inception depthwise conv and MHSA, concatenated and fused by a linear."""

    def __init__(self, dim: int, attn: nn.Module):
        super().__init__()
        self.local = InceptionDWConv1d(dim)
        self.attn = attn
        self.fuse = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.local(x), self.attn(x)], dim=-1))


class LocalGlobalMixer(nn.Module):
    """SandwichPro's token mixer: half the channels through Inception depthwise conv (fine, local), half
    through attention on keys mean-pooled 4x (coarse, global); concatenated and projected."""

    def __init__(self, dim: int, num_heads: int, pos: str = "none", ratio: int = 4):
        super().__init__()
        self.half = dim // 2
        self.local = InceptionDWConv1d(self.half)
        heads = max(1, num_heads // 2)
        self.attn = KeyReduceAttention(dim - self.half, heads, ratio=ratio, reduce="avg", pos=pos)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local, glob = x.split((self.half, x.shape[-1] - self.half), dim=-1)
        return self.proj(torch.cat([self.local(local), self.attn(glob)], dim=-1))


class MobileViTBlock(nn.Module):
    """MobileViT block in 1-D: local convolution, global attention across patches, fusion with the input.

    Local: depthwise conv (kernel 3) and a pointwise linear, norm, GELU (MobileViT v1 uses a full 3x3
    conv; depthwise is our choice, to weigh less). Global: one pre-norm transformer layer whose
    attention joins the tokens at the same offset of every 2-token patch (`PatchAttention`). Fusion:
    project, concatenate with the block input and fuse by a linear (v1 concatenates with the input;
    v1 fuses by a 3x3 conv, v3 by 1x1), plus a residual (v3). 12 d^2 weights: 1.5x an MHSA block.
    """

    def __init__(
        self, dim: int, num_heads: int, mlp: str, mlp_ratio: float, pos: str = "none", patch: int = 2
    ):
        super().__init__()
        self.local = nn.Sequential(depthwise(dim, 3), nn.Linear(dim, dim), nn.LayerNorm(dim), nn.GELU())
        self.norm1 = nn.LayerNorm(dim)
        self.mixer = PatchAttention(dim, num_heads, patch, pos)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = channel_mixer(mlp, dim, mlp_ratio)
        self.proj = nn.Linear(dim, dim)
        self.fuse = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.local(x)
        y = y + self.mixer(self.norm1(y))
        y = y + self.mlp(self.norm2(y))
        return x + self.fuse(torch.cat([x, self.proj(y)], dim=-1))


class CrossAttention(nn.Module):
    """Multi-head attention of queries from one sequence on keys and values from another."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        def heads(z):
            return z.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

        k, v = self.kv(context).chunk(2, dim=-1)
        out, _ = attend(heads(self.q(x)), heads(k), heads(v))
        return self.proj(out.transpose(1, 2).flatten(2))


class CrossBlock(nn.Module):
    """Transformer block whose tokens attend to a second sequence, then pass an MLP (none at ratio 0)."""

    def __init__(self, dim: int, num_heads: int, mlp: str, mlp_ratio: float):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, num_heads)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), channel_mixer(mlp, dim, mlp_ratio)) if mlp_ratio else None

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm_q(x), self.norm_kv(context))
        return x if self.mlp is None else x + self.mlp(x)


class SemanticTokens(nn.Module):
    """Sparse semantic tokens: run `blocks` on a few pooled tokens, then give every token their result.

    A strided depthwise convolution pools `pool` tokens into one (DW spatial pooling); the pooled tokens
    gather from all tokens by cross-attention and an MLP of ratio `gather_ratio`, pass `blocks`, and
    every token gathers them back by cross-attention alone. Ratio 5 and no MLP on the way back are
    fitted to the notes' extra block (4.74 M weights, 237 M MACs at 512 x 125); the notes do not give
    its layers.
    """

    def __init__(
        self, dim: int, blocks: nn.Module, num_heads: int, mlp: str, gather_ratio: float = 5.0, pool: int = 5
    ):
        super().__init__()
        self.pool_size = pool
        self.pool = TimeConv(dim, dim, pool, stride=pool, padding=0, groups=dim)
        self.gather = CrossBlock(dim, num_heads, mlp, gather_ratio)
        self.blocks = blocks
        self.scatter = CrossBlock(dim, num_heads, mlp, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = -x.shape[1] % self.pool_size
        tokens = self.pool(F.pad(x, (0, 0, 0, pad)) if pad else x)
        tokens = self.blocks(self.gather(tokens, x))
        return self.scatter(x, tokens)


ATTENTION_KINDS = ("mhsa", "sr", "shunted", "shunted_dw", "hilo", "window", "swin", "biformer")
LOCAL_KINDS = ("conv", "conv_se", "conv_ca", "sandwich", "convmod")
BLOCK_KINDS = LOCAL_KINDS + ATTENTION_KINDS + ("parallel", "localglobal", "mobilevit")


def inner_pos(pos: str) -> str:
    """The part of a position encoding that lives inside attention (rpb, dwconv_v); the rest is outside."""
    return pos if pos in ("rpb", "dwconv_v") else "none"


def make_attention(kind: str, dim: int, num_heads: int, pos: str) -> nn.Module:
    """One attention module by name; window sizes and ratios are the notes' or our documented choices.
    BiFormer keeps its paper's local context enhancement (V + DWConv5(V)), which the notes point out."""
    attn_pos = inner_pos(pos)
    if kind == "mhsa":
        return KeyReduceAttention(dim, num_heads, pos=attn_pos)
    if kind == "sr":
        return KeyReduceAttention(dim, num_heads, ratio=2, reduce="conv", pos=attn_pos)
    if kind in ("shunted", "shunted_dw"):
        return ShuntedAttention(dim, num_heads, pos=attn_pos, paper=kind == "shunted")
    if kind == "hilo":
        return HiLoAttention(dim, num_heads, window=5, pos=attn_pos)
    if kind in ("window", "swin"):
        return WindowAttention(dim, num_heads, window=25, shift=kind == "swin", pos=attn_pos)
    if kind == "biformer":
        return BiLevelRoutingAttention(dim, num_heads, regions=25, topk=10, pos=attn_pos, value_conv=5)
    raise ValueError(f"unknown attention {kind!r}; choose one of {', '.join(ATTENTION_KINDS)}")


def make_block(
    kind: str, dim: int, num_heads: int = 8, mlp: str = "mlp", mlp_ratio: float = 2.0, pos: str = "none"
) -> nn.Module:
    """One block by name: a local kind (LOCAL_KINDS), an attention kind (ATTENTION_KINDS) wrapped in a
    transformer block, "parallel" (conv and MHSA side by side), "localglobal" (SandwichPro's mixer) or
    "mobilevit" (local conv, then attention across patches)."""
    pos_conv = pos == "dwconv"
    if kind in ("conv", "conv_se", "conv_ca"):
        return ConvBlock(dim, mlp, mlp_ratio, recalibrate=kind[5:] or None)
    if kind == "sandwich":
        return SandwichBlock(dim, mlp_ratio)
    if kind == "convmod":
        return ResidualBlock(dim, ConvModulation(dim), mlp, mlp_ratio)
    if kind in ATTENTION_KINDS:
        return ResidualBlock(dim, make_attention(kind, dim, num_heads, pos), mlp, mlp_ratio, pos_conv)
    if kind == "parallel":
        mixer = ParallelMixer(dim, make_attention("mhsa", dim, num_heads, pos))
        return ResidualBlock(dim, mixer, mlp, mlp_ratio, pos_conv)
    if kind == "mobilevit":
        return MobileViTBlock(dim, num_heads, mlp, mlp_ratio, inner_pos(pos))
    if kind == "localglobal":
        return ResidualBlock(dim, LocalGlobalMixer(dim, num_heads, inner_pos(pos)), mlp, mlp_ratio, pos_conv)
    raise ValueError(f"unknown block {kind!r}; choose one of {', '.join(BLOCK_KINDS)}")
