"""MRTNet: multi-scale SE-ResNet with a Transformer encoder over overlapping segments.

"Multi-scale SE-residual network with transformer encoder for myocardial infarction classification",
Applied Soft Computing (2023). The record is cut into overlapping windows (the paper localises
heartbeat units); a multi-scale sampling module presents each window at several scales; per scale,
a residual network with squeeze-and-excitation blocks and the Customized Pooling Component (CPC:
global average and global max pooling side by side) turns each window into a vector; a Transformer
encoder relates the windows; the scales' features are fused for the classifier, whose head pools
the windows by average and max (CPC again).

Sizes (ours, chosen to sit with resnet1d18 and mobilenetv2_1d): windows of 2.5 s every 1.25 s
(50% overlap), scales 1, 2 and 4 (average pooling), per scale a stem and three SE-ResNet stages of
32, 64 and 128 channels, a 2-layer encoder of width 128 with 4 heads per scale, scales concatenated.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierMixin, ConcatPoolHead, ConvNormAct, concat_pool
from ecglab.models.layers.inception_next import SqueezeExcite1d
from ecglab.models.layers.windows import sliding_windows


class SEBasicBlock(nn.Module):
    """ResNet basic block (two kernel-7 convolutions) with squeeze-and-excitation on the residual branch."""

    def __init__(self, in_chans: int, out_chans: int, stride: int):
        super().__init__()
        self.conv1 = ConvNormAct(in_chans, out_chans, 7, stride)
        self.conv2 = ConvNormAct(out_chans, out_chans, 7, act=None, zero_init=True)
        self.se = SqueezeExcite1d(out_chans)
        self.shortcut = nn.Identity()
        if stride != 1 or in_chans != out_chans:
            self.shortcut = ConvNormAct(in_chans, out_chans, 1, stride, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.se(self.conv2(self.conv1(x)).transpose(1, 2)).transpose(1, 2)
        return F.relu(y + self.shortcut(x))


class ScaleBranch(nn.Module):
    """One scale: average-pool the windows, SE-ResNet, CPC, project; Transformer over the windows.

    (B, S, leads, W) -> (B, S, dim).
    """

    def __init__(self, in_chans: int, scale: int, widths: tuple[int, ...], dim: int, depth: int, heads: int):
        super().__init__()
        self.scale = scale
        layers = [ConvNormAct(in_chans, widths[0], 7, stride=2)]
        for c_in, c_out in zip(widths, widths[1:] + widths[-1:], strict=True):
            layers.append(SEBasicBlock(c_in, c_out, stride=2 if c_out != c_in else 1))
        self.resnet = nn.Sequential(*layers)
        self.proj = nn.Linear(2 * widths[-1], dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        b, s = windows.shape[:2]
        flat = windows.flatten(0, 1)
        if self.scale > 1:
            flat = F.avg_pool1d(flat, self.scale, ceil_mode=True)
        vectors = self.proj(concat_pool(self.resnet(flat)))  # CPC: average and max side by side
        return self.encoder(vectors.view(b, s, -1))


class ScaleFusion(nn.Module):
    """Per-scale window features (B, S, dim) concatenated on channels: (B, scales * dim, S)."""

    def forward(self, per_scale: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(per_scale, dim=-1).transpose(1, 2)


class MultiScaleSEResNetTransformer(ClassifierMixin, nn.Module):
    """Overlapping windows -> per-scale SE-ResNet + Transformer -> scales concatenated; windows are the time axis."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        fs: float = 100.0,
        window_s: float = 2.5,
        scales: tuple[int, ...] = (1, 2, 4),
        widths: tuple[int, ...] = (32, 64, 128),
        dim: int = 128,
        depth: int = 2,
        num_heads: int = 4,
        drop_rate: float = 0.5,
    ):
        super().__init__()
        self.window = round(window_s * fs)
        self.step = self.window // 2
        self.min_samples = self.window
        self.scales = nn.ModuleList(
            ScaleBranch(in_chans, s, tuple(widths), dim, depth, num_heads) for s in scales
        )
        self.fuse = ScaleFusion()
        self.num_features = dim * len(scales)
        self.feature_info = [{"module": "fuse", "num_chs": self.num_features, "reduction": self.step}]
        self.head = ConcatPoolHead(self.num_features, num_classes, hidden=128, drop_rate=drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        windows = sliding_windows(x, self.window, self.step).transpose(1, 2)  # (B, S, leads, W)
        return self.fuse([branch(windows) for branch in self.scales])


@register_model
def msse_resnet_transformer(num_classes, in_chans=12, **kwargs):
    """MRTNet: windows at scales 1, 2, 4 through SE-ResNets and Transformer encoders, GAP+GMP pooling."""
    return MultiScaleSEResNetTransformer(num_classes, in_chans, **kwargs)
