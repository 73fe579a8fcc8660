"""InceptionFormer: InceptionNeXt blocks early, self-attention late, cross-stacked in between.

A four-stage pyramid (64/128/256/512 channels over 1000/500/250/125 tokens for 10 s at 100 Hz),
after the researcher's notes (docs/inceptionformer.md). Every ablation of the notes is a block
schedule: one list of block kinds per stage, see `cross_stack` and `layers.mixers.make_block`.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models._registry import register_model
from ecglab.models.layers.attention import POS_KINDS
from ecglab.models.layers.heads import ClassifierHead, ClassifierMixin, ClassTokenHead
from ecglab.models.layers.inception_next import TimeConv
from ecglab.models.layers.mixers import BLOCK_KINDS, LOCAL_KINDS, SemanticTokens, make_block
from ecglab.models.layers.norm import layernorm_to_batchnorm
from ecglab.models.layers.pruning import CascadePruning

NORM_KINDS = ("batch", "layer")


STACKINGS = ("cross", "serial")
HEADS = ("avg", "cls")


def cross_stack(
    depths: tuple[int, ...],
    local: str = "conv",
    attn: str = "mhsa",
    first: str | None = None,
    stacking: str = "cross",
) -> list[list[str]]:
    """The block schedule: `first` (default `local`) => first x local => local x attn => attn, the notes'
    "convolution => convolution x modulation => modulation x self-attention => self-attention".

    A stage of two kinds alternates them block by block ("cross", InceptionFormer) or runs all of the
    first before all of the second ("serial", InceptionMHSALinear: every local block before every
    global one). attn="swin" alternates plain and shifted windows, as Swin does.
    """
    if stacking not in STACKINGS:
        raise ValueError(
            f"InceptionFormer: unknown stacking {stacking!r}; choose one of {', '.join(STACKINGS)}"
        )
    first = first or local
    pairs = [(first, first), (first, local), (local, attn), (attn, attn)]
    schedule = [_two_kinds(*pairs[min(i, 3)], depth, stacking) for i, depth in enumerate(depths)]
    if attn == "swin":  # every other attention block of a stage is shifted
        for kinds in schedule:
            slots = [j for j, k in enumerate(kinds) if k == "swin"]
            for n, j in enumerate(slots):
                kinds[j] = "swin" if n % 2 else "window"
    return schedule


def _two_kinds(a: str, b: str, depth: int, stacking: str) -> list[str]:
    if stacking == "serial":
        return [a] * (depth - depth // 2) + [b] * (depth // 2)
    return [a if j % 2 == 0 else b for j in range(depth)]


class Stem(nn.Module):
    """Multi-scale stem: Conv1d of kernels 3, 7, 11 and 15 side by side (a quarter of the channels each),
    then a kernel-7 Conv1d that fuses the scales; length kept. (B, leads, T) -> (B, T, C)."""

    def __init__(self, in_chans: int, dim: int, kernel_sizes: tuple[int, ...] = (3, 7, 11, 15)):
        super().__init__()
        widths = [dim // len(kernel_sizes)] * len(kernel_sizes)
        widths[-1] += dim - sum(widths)
        self.branches = nn.ModuleList(
            TimeConv(in_chans, w, k) for w, k in zip(widths, kernel_sizes, strict=True)
        )
        self.norm1 = nn.LayerNorm(dim)
        self.fuse = TimeConv(dim, dim, 7)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2).contiguous()
        x = F.gelu(self.norm1(torch.cat([branch(x) for branch in self.branches], dim=-1)))
        return F.gelu(self.norm2(self.fuse(x)))


class PatchMerge(nn.Module):
    """Overlapping patch merging: Conv1d(kernel 3, stride 2, padding 1) + LayerNorm; T -> ceil(T / 2)."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.conv = TimeConv(in_dim, dim, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class LearnedPosEmbed(nn.Module):
    """A learned position embedding added once (ViT style), linearly resampled for other lengths."""

    def __init__(self, dim: int, length: int):
        super().__init__()
        self.embed = nn.Parameter(torch.zeros(1, length, dim))
        nn.init.trunc_normal_(self.embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embed = self.embed
        if x.shape[1] != embed.shape[1]:
            embed = F.interpolate(embed.transpose(1, 2), size=x.shape[1], mode="linear").transpose(1, 2)
        return x + embed


class Stage(nn.Module):
    """Patch merging, an optional position embedding, the blocks and, in the last stage, the final norm.

    Takes and returns (B, C, T) as a view of time-major memory, so the blocks get (B, T, C) for free.
    """

    def __init__(self, blocks: nn.Module, downsample: nn.Module, pos_embed: nn.Module, norm: nn.Module):
        super().__init__()
        self.downsample = downsample
        self.pos_embed = pos_embed
        self.blocks = blocks
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pos_embed(self.downsample(x.transpose(1, 2)))
        return self.norm(self.blocks(x)).transpose(1, 2)


class InceptionFormer(ClassifierMixin, nn.Module):
    """InceptionFormer: multi-scale stem, four stages of Inception depthwise and attention blocks, average pooling.

    What we chose where the notes are silent, fitted to their parameter and MAC counts (see
    docs/inceptionformer.md for the table): MLP ratio 2; BatchNorm over batch and time everywhere, as
    InceptionNeXt and LeViT do (`norm="layer"`: per-token LayerNorm, which did not learn PTB-XL rhythm,
    see layers/norm.py); Inception depthwise kernels 3/11/31
    on a quarter of the channels each; 8 heads; the stem's kernels (3/7/11/15 then 7), which come out
    2% lighter than the notes' stem. The notes' per-stage figures leave out patch merging, and count
    only convolution and linear layers (thop), so `macs_layers` is the comparable count; `macs` adds
    the attention products.

    `mixers` (one list of block kinds per stage) overrides the schedule built from depths/local/attn/
    first/stacking; its length sets the number of stages. `pos`: none, learned (added once before the
    first attention stage), rpb (relative position bias), dwconv (before each attention block) or
    dwconv_v (on V). `norm`: batch (default) or layer. `head`: avg (global average pooling) or cls (a
    class token attending to the last stage). `token_keep` / `head_keep` < 1: cascade token deletion /
    head pruning in the last stage (layers/pruning.py).
    """

    min_samples = 16

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        dims: tuple[int, ...] = (64, 128, 256, 512),
        depths: tuple[int, ...] = (2, 4, 8, 4),
        attn: str = "mhsa",
        local: str = "conv",
        first: str | None = None,
        mixers: list[list[str]] | None = None,
        stacking: str = "cross",
        mlp: str = "mlp",
        mlp_ratio: float = 2.0,
        num_heads: int = 8,
        pos: str = "none",
        sparse_tokens: bool = False,
        drop_rate: float = 0.0,
        norm: str = "batch",
        head: str = "avg",
        token_keep: float = 1.0,
        head_keep: float = 1.0,
    ):
        super().__init__()
        mixers = [list(kinds) for kinds in (mixers or cross_stack(depths, local, attn, first, stacking))]
        self._check(mixers, dims, pos, norm, head)
        self.mixers = mixers
        self.stem = Stem(in_chans, dims[0])
        has_attn = [any(k not in LOCAL_KINDS for k in kinds) for kinds in mixers]
        first_attn = has_attn.index(True) if any(has_attn) else -1
        last = len(mixers) - 1
        stages = []
        for i, kinds in enumerate(mixers):
            dim = dims[i]
            blocks = nn.Sequential(*(make_block(k, dim, num_heads, mlp, mlp_ratio, pos) for k in kinds))
            if i == last:
                blocks = _last_blocks(blocks, dim, num_heads, mlp, sparse_tokens, token_keep, head_keep)
            pos_embed = (
                LearnedPosEmbed(dim, 1000 >> i) if pos == "learned" and i == first_attn else nn.Identity()
            )
            downsample = PatchMerge(dims[i - 1], dim) if i else nn.Identity()
            stages.append(
                Stage(blocks, downsample, pos_embed, nn.LayerNorm(dim) if i == last else nn.Identity())
            )
        self.stages = nn.Sequential(*stages)
        self.num_features = dims[last]
        self.feature_info = [
            {"module": f"stages.{i}", "num_chs": dims[i], "reduction": 2**i} for i in range(len(mixers))
        ]
        heads = {"avg": ClassifierHead, "cls": partial(ClassTokenHead, num_heads=num_heads)}
        self.head = heads[head](self.num_features, num_classes, drop_rate=drop_rate)
        self.num_classes = num_classes
        if norm == "batch":
            layernorm_to_batchnorm(self)
        self.apply(_init_weights)

    @staticmethod
    def _check(mixers: list[list[str]], dims: tuple[int, ...], pos: str, norm: str, head: str) -> None:
        if not 1 <= len(mixers) <= len(dims):
            raise ValueError(
                f"InceptionFormer: {len(mixers)} stages of mixers but {len(dims)} widths in dims"
            )
        unknown = sorted({k for kinds in mixers for k in kinds} - set(BLOCK_KINDS))
        if unknown:
            raise ValueError(
                f"InceptionFormer: unknown block kinds {unknown}; choose from {', '.join(BLOCK_KINDS)}"
            )
        if pos not in POS_KINDS:
            raise ValueError(f"InceptionFormer: unknown pos {pos!r}; choose one of {', '.join(POS_KINDS)}")
        if norm not in NORM_KINDS:
            raise ValueError(f"InceptionFormer: unknown norm {norm!r}; choose one of {', '.join(NORM_KINDS)}")
        if head not in HEADS:
            raise ValueError(f"InceptionFormer: unknown head {head!r}; choose one of {', '.join(HEADS)}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, leads, samples) -> (B, num_features, ceil(samples / 8)); time-major memory, a transposed view."""
        if x.shape[-1] < self.min_samples:
            raise ValueError(f"InceptionFormer needs at least {self.min_samples} samples, got {x.shape[-1]}")
        return self.stages(self.stem(x).transpose(1, 2))

    def set_attention_capture(self, enabled: bool = True) -> None:
        """Make every attention module keep its last map (B, heads, T, T) in `attn_map`; slower, off by default."""
        for module in self.modules():
            if hasattr(module, "attn_map"):
                module.capture = enabled
                module.attn_map = None

    def attention_maps(self) -> dict[str, torch.Tensor]:
        """The maps of the last forward pass with capture on, by attention module name (outermost only)."""
        maps = {}
        for name, module in self.named_modules():
            inside = any(name.startswith(outer + ".") for outer in maps)
            if not inside and getattr(module, "attn_map", None) is not None:
                maps[name] = module.attn_map
        return maps


def _last_blocks(blocks, dim, num_heads, mlp, sparse_tokens, token_keep, head_keep) -> nn.Module:
    """The last stage's blocks, pruned in cascade and/or run on sparse semantic tokens."""
    if token_keep < 1 or head_keep < 1:
        blocks = CascadePruning(blocks, token_keep, head_keep)
    return SemanticTokens(dim, blocks, num_heads, mlp) if sparse_tokens else blocks


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.out_channels // module.groups * math.prod(module.kernel_size)
        nn.init.normal_(module.weight, std=math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _create(num_classes: int, in_chans: int, defaults: dict, overrides: dict) -> InceptionFormer:
    return InceptionFormer(num_classes, in_chans, **{**defaults, **overrides})


@register_model
def inceptionformer(num_classes, in_chans=12, **kwargs):
    """InceptionNeXt + MHSA, depths 2/4/8/4: notes 2.14 G MACs, 12.45 M parameters."""
    return _create(num_classes, in_chans, {}, kwargs)


@register_model
def inceptionformer_serial(num_classes, in_chans=12, **kwargs):
    """InceptionMHSALinear: the same blocks, every local block before every global one (stage 3: 4 + 4)."""
    return _create(num_classes, in_chans, {"stacking": "serial"}, kwargs)


@register_model
def inceptionformer_sr(num_classes, in_chans=12, **kwargs):
    """Spatial-reduction attention: a stride-2 Conv1d halves keys and values."""
    return _create(num_classes, in_chans, {"attn": "sr"}, kwargs)


@register_model
def inceptionformer_biformer(num_classes, in_chans=12, **kwargs):
    """Bi-level routing attention: 25 regions, each attending to its top-10."""
    return _create(num_classes, in_chans, {"attn": "biformer"}, kwargs)


@register_model
def inceptionformer_window(num_classes, in_chans=12, **kwargs):
    """Window attention, 25-token windows (one beat at stage 3)."""
    return _create(num_classes, in_chans, {"attn": "window"}, kwargs)


@register_model
def inceptionformer_swin(num_classes, in_chans=12, **kwargs):
    """Window attention alternating with half-window shifted windows."""
    return _create(num_classes, in_chans, {"attn": "swin"}, kwargs)


@register_model
def inceptionformer_shunted(num_classes, in_chans=12, **kwargs):
    """InceptionNeXt + shunted self-attention, cross-stacked: the notes' best model. Keys and values
    per the Shunted Transformer (strided full convs, V + DWConv(V)); attn="shunted_dw" is the lighter form."""
    return _create(num_classes, in_chans, {"attn": "shunted"}, kwargs)


@register_model
def inceptionformer_mobilevit(num_classes, in_chans=12, **kwargs):
    """MobileViT blocks in the attention slots: local conv, then attention across 2-token patches."""
    return _create(num_classes, in_chans, {"attn": "mobilevit"}, kwargs)


@register_model
def inceptionformer_hilo(num_classes, in_chans=12, **kwargs):
    """HiLo attention: half the heads in 5-token windows, half on keys pooled 5x."""
    return _create(num_classes, in_chans, {"attn": "hilo"}, kwargs)


@register_model
def inceptionformer_convmod(num_classes, in_chans=12, **kwargs):
    """The notes' schedule: conv -> conv x modulation -> modulation x attention -> attention."""
    return _create(num_classes, in_chans, {"first": "conv", "local": "convmod"}, kwargs)


@register_model
def inceptionformer_convmod_cls(num_classes, in_chans=12, **kwargs):
    """ConvMod with a class token instead of global average pooling, as the notes tried it."""
    return _create(num_classes, in_chans, {"first": "conv", "local": "convmod", "head": "cls"}, kwargs)


@register_model
def inceptionformer_se(num_classes, in_chans=12, **kwargs):
    """Inception depthwise blocks with squeeze-and-excitation."""
    return _create(num_classes, in_chans, {"local": "conv_se"}, kwargs)


@register_model
def inceptionformer_ca(num_classes, in_chans=12, **kwargs):
    """Inception depthwise blocks with coordinate attention."""
    return _create(num_classes, in_chans, {"local": "conv_ca"}, kwargs)


@register_model
def inceptionformer_d2482(num_classes, in_chans=12, **kwargs):
    """Depths 2/4/8/2: notes 1.61 G MACs, 8.25 M parameters."""
    return _create(num_classes, in_chans, {"depths": (2, 4, 8, 2)}, kwargs)


@register_model
def inceptionformer_s3(num_classes, in_chans=12, **kwargs):
    """The first three stages only (256 features at 1/4 length): notes 1.04 G MACs, 3.64 M parameters."""
    return _create(num_classes, in_chans, {"depths": (2, 4, 8)}, kwargs)


@register_model
def inceptionformer_tiny(num_classes, in_chans=12, **kwargs):
    """Widths 32/64/128/256: notes 536 M MACs, 3.13 M parameters."""
    return _create(num_classes, in_chans, {"dims": (32, 64, 128, 256)}, kwargs)


@register_model
def inceptionformer_sparse(num_classes, in_chans=12, **kwargs):
    """Stage 4 on sparse semantic tokens (5x depthwise pooling): notes 1.53 G MACs, 17.19 M parameters."""
    return _create(num_classes, in_chans, {"sparse_tokens": True}, kwargs)


@register_model
def inceptionformer_parallel(num_classes, in_chans=12, **kwargs):
    """Stage 3 of parallel blocks (Inception depthwise conv and MHSA side by side, concatenated)."""
    mixers = [["conv"] * 2, ["conv"] * 4, ["parallel"] * 8, ["mhsa"] * 4]
    return _create(num_classes, in_chans, {"mixers": mixers}, kwargs)


@register_model
def inceptionformer_ape(num_classes, in_chans=12, **kwargs):
    """A learned absolute position embedding, added once before stage 3."""
    return _create(num_classes, in_chans, {"pos": "learned"}, kwargs)


@register_model
def inceptionformer_rpb(num_classes, in_chans=12, **kwargs):
    """A learned relative position bias in every attention."""
    return _create(num_classes, in_chans, {"pos": "rpb"}, kwargs)


@register_model
def inceptionformer_cpe(num_classes, in_chans=12, **kwargs):
    """A depthwise convolution before every attention block (conditional position encoding)."""
    return _create(num_classes, in_chans, {"pos": "dwconv"}, kwargs)


@register_model
def inceptionformer_lepe(num_classes, in_chans=12, **kwargs):
    """A depthwise convolution on V inside every attention: softmax(QK^T) (V + DWConv(V))."""
    return _create(num_classes, in_chans, {"pos": "dwconv_v"}, kwargs)


@register_model
def sandwichnet(num_classes, in_chans=12, **kwargs):
    """InceptionFormer with inverted-residual local blocks: 1x1 expand, Inception depthwise conv, 1x1 project."""
    return _create(num_classes, in_chans, {"local": "sandwich"}, kwargs)


@register_model
def sandwichpro(num_classes, in_chans=12, **kwargs):
    """GLU channel mixers (mlp="dwffn" for the depthwise FFN), fine-local + coarse-global token mixers."""
    return _create(num_classes, in_chans, {"attn": "localglobal", "mlp": "glu"}, kwargs)
