"""Lightweight Transformer on heartbeats: SE-weighted CNN embedding, LightConv attention, beats pooled.

Meng L., Tan W., Ma J., Wang R., Yin X., Zhang Y. "Enhancing dynamic ECG heartbeat classification with
lightweight transformer model", Artificial Intelligence in Medicine 124:102236 (2022). The paper
classifies single heartbeats: a CNN with squeeze-and-excitation embeds the local heartbeat shape
pattern (local, channel attention), and a Transformer encoder whose self-attention is replaced by
LightConv attention (linear, GLU, a depthwise convolution whose softmax-normalised kernels are shared
by the channels of a head, linear) models the whole beat (global attention).

Record decision (ours; the paper stops at beats): beats are cut at R peaks found by scipy's peak
finder (`layers.beats`; a record without peaks falls back to fixed windows), each beat is
classified by the paper's network, and the beat features form the time axis of the feature map,
so the head's mean over time averages the beats. Sizes (ours, the paper's are for single-lead
MIT-BIH beats): 0.25 s before and 0.45 s after each R peak, CNN widths 64 and 128 (4x downsampling),
4 encoder layers of width 128, 4 heads, kernel 7, FFN ratio 2. Detection runs in numpy inside
`forward`, so the model does not export (tests/test_models_contract.py: NOT_EXPORTABLE).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin, ConvNormAct
from ecglab.models.layers.beats import MIN_RR_S, beat_centres, fill_padding, gather_beats
from ecglab.models.layers.inception_next import Mlp, SqueezeExcite1d


class LightConv(nn.Module):
    """Depthwise convolution over time of (B, T, C) whose kernels, softmax-normalised over their taps,
    are shared by the C / heads channels of each head (Wu et al. 2019)."""

    def __init__(self, dim: int, num_heads: int, kernel_size: int):
        super().__init__()
        self.num_heads, self.kernel_size = num_heads, kernel_size
        self.weight = nn.Parameter(torch.randn(num_heads, 1, kernel_size) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        kernel = self.weight.softmax(dim=-1).repeat_interleave(c // self.num_heads, dim=0)
        y = F.conv1d(x.transpose(1, 2), kernel, padding=self.kernel_size // 2, groups=c)
        return y.transpose(1, 2)


class LightConvAttention(nn.Module):
    """LCA, the paper's replacement of self-attention: linear to 2C, GLU, LightConv, linear."""

    def __init__(self, dim: int, num_heads: int = 4, kernel_size: int = 7):
        super().__init__()
        self.expand = nn.Linear(dim, 2 * dim)
        self.conv = LightConv(dim, num_heads, kernel_size)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.conv(F.glu(self.expand(x), dim=-1)))


class LCAEncoderLayer(nn.Module):
    """Pre-norm Transformer encoder layer with LightConv attention in place of self-attention."""

    def __init__(self, dim: int, num_heads: int, kernel_size: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = LightConvAttention(dim, num_heads, kernel_size)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class BeatEmbedding(nn.Module):
    """CNN over one beat (B, leads, W) -> local shape features (B, W / 4, dim), re-weighted by SE."""

    def __init__(self, in_chans: int, dim: int):
        super().__init__()
        self.convs = nn.Sequential(
            ConvNormAct(in_chans, dim // 2, 7, stride=2), ConvNormAct(dim // 2, dim, 5, stride=2)
        )
        self.se = SqueezeExcite1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.convs(x).transpose(1, 2))


class BeatPool(nn.Module):
    """Pads of records with fewer beats take the mean of their real beats (`fill_padding`)."""

    def forward(self, feats: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return fill_padding(feats, valid)


class BeatTransformer(ClassifierMixin, nn.Module):
    """Beats at R peaks -> SE-CNN embedding -> LCA encoder -> one vector per beat; beats are the time axis."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        fs: float = 100.0,
        dim: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        kernel_size: int = 7,
        mlp_ratio: float = 2.0,
        before_s: float = 0.25,
        after_s: float = 0.45,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.fs = fs
        self.before, self.after = round(before_s * fs), round(after_s * fs)
        self.min_samples = self.before + self.after
        self.embed = BeatEmbedding(in_chans, dim)
        self.encoder = nn.Sequential(
            *(LCAEncoderLayer(dim, num_heads, kernel_size, mlp_ratio) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(dim)
        self.beat_pool = BeatPool()
        self.num_features = dim
        reduction = max(1, round(MIN_RR_S * fs))  # at most one beat per refractory period
        self.feature_info = [{"module": "beat_pool", "num_chs": dim, "reduction": reduction}]
        self.head = ClassifierHead(dim, num_classes, drop_rate)
        self.num_classes = num_classes

    def encode_beats(self, beats: torch.Tensor) -> torch.Tensor:
        """(B, N, leads, W) beats -> (B, dim, N): each beat classified as the paper does, mean over its tokens."""
        b, n = beats.shape[:2]
        tokens = self.norm(self.encoder(self.embed(beats.flatten(0, 1))))
        return tokens.mean(dim=1).view(b, n, -1).transpose(1, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        centres, valid = beat_centres(x, self.fs, self.before + self.after)
        feats = self.encode_beats(gather_beats(x, centres, self.before, self.after))
        return self.beat_pool(feats, valid)


@register_model
def beat_transformer(num_classes, in_chans=12, **kwargs):
    """Lightweight (Fussing) Transformer of Meng et al. 2022 on R-peak beats, averaged per record."""
    return BeatTransformer(num_classes, in_chans, **kwargs)
