"""SE-ECGNet: 2-D convolution over the ECG as a grey image at several scales, then 1-D SE residual blocks.

Paper: Zhang, Zhao and Liu, "SE-ECGNet: A Multi-scale Deep Residual Network with Squeeze-and-
Excitation Module for ECG Signal Classification", IEEE BIBM 2020 (arXiv:2012.05510); sizes from the
authors' code that the paper links (github.com/Amadeuszhao/SE-ECGNet). The multi-lead ECG is a
one-channel image (leads x time). A 1 x 50 convolution (stride 2, 32 channels) and three strided
1 x 15 residual blocks open it: large kernels early. Three scales follow, with 1 x 3, 1 x 5 and
1 x 7 kernels: each runs four 2-D residual blocks of three convolutions, folds the leads into the
channels, and runs four 1-D residual blocks (k taps, each halving time, 256 channels); the scales
are concatenated (768 features). Every block is pre-activation (BN, ReLU, convolution) with a
squeeze-and-excitation gate (reduction 16) and dropout 0.2.

Our choices: the code folds its 8 leads x 32 channels into exactly 256 channels; for any lead count
we fold into 32 x leads and project to 256 with a 1-tap convolution, so the 1-D width stays the
paper's. Convolutions are padded to keep the length (the code's 1 x 50 stem is not), and the SE gate
is the toolkit's (`SqueezeExcite1d`: GELU inside where the code has ReLU).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import BatchNorm1d, ClassifierHead, ClassifierMixin
from ecglab.models.layers.conv import Conv1d
from ecglab.models.layers.inception_next import SqueezeExcite1d


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation for (B, C, T) or (B, C, leads, T): one gate per channel from its mean over the rest."""

    def __init__(self, dim: int, reduction: int = 16):
        super().__init__()
        self.gate = SqueezeExcite1d(dim, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(x.shape)


class PreActConv(nn.Sequential):
    """BN, ReLU, optional dropout, convolution: 2-D with a 1 x k kernel (a row of the image) when `image`."""

    def __init__(self, in_chans, out_chans, kernel_size, stride=1, drop=0.0, image=False):
        norm = nn.BatchNorm2d(in_chans) if image else BatchNorm1d(in_chans)
        layers = [norm, nn.ReLU()] + ([nn.Dropout(drop)] if drop else [])
        if image:
            conv = nn.Conv2d(
                in_chans, out_chans, (1, kernel_size), (1, stride), (0, kernel_size // 2), bias=False
            )
        else:
            conv = Conv1d(in_chans, out_chans, kernel_size, stride, kernel_size // 2, bias=False)
        super().__init__(*layers, conv)


class DownBlock(nn.Module):
    """A strided pre-activation convolution with SE, plus a strided 1-tap pre-activation shortcut."""

    def __init__(self, chans: int, kernel_size: int, image: bool):
        super().__init__()
        self.conv = PreActConv(chans, chans, kernel_size, 2, image=image)
        self.se = SqueezeExcite(chans)
        self.shortcut = PreActConv(chans, chans, 1, 2, image=image)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.conv(x)) + self.shortcut(x)


class TripleBlock(nn.Module):
    """Three pre-activation convolutions (dropout before the last two) with SE, plus the identity."""

    def __init__(self, chans: int, kernel_size: int, image: bool, drop: float = 0.2):
        super().__init__()
        self.convs = nn.Sequential(
            *(PreActConv(chans, chans, kernel_size, drop=drop if i else 0.0, image=image) for i in range(3))
        )
        self.se = SqueezeExcite(chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.convs(x)) + x


class Fold(nn.Module):
    """(B, C, leads, T) -> (B, out_chans, T): the leads into the channels, projected by a 1-tap convolution."""

    def __init__(self, chans: int, leads: int, out_chans: int):
        super().__init__()
        self.proj = Conv1d(chans * leads, out_chans, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.flatten(1, 2))


class Scale(nn.Sequential):
    """One scale: 2-D triple blocks over the image, the fold, then 1-D blocks that each halve time."""

    def __init__(self, leads: int, kernel_size: int, image_chans: int, width: int, depth: int = 4):
        blocks = [nn.Sequential(TripleBlock(image_chans, kernel_size, True), nn.ReLU()) for _ in range(depth)]
        blocks.append(Fold(image_chans, leads, width))
        for _ in range(depth):
            down = DownBlock(width, kernel_size, False)
            blocks.append(nn.Sequential(down, TripleBlock(width, kernel_size, False), nn.ReLU()))
        super().__init__(*blocks)


class Concat(nn.Module):
    """Concatenate (B, C_i, T) maps of one length along channels."""

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(maps, dim=1)


class SEECGNet(ClassifierMixin, nn.Module):
    """Image stem (1 x 50, then strided 1 x 15 blocks), parallel scales, concatenated along channels."""

    min_samples = 1

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        kernel_sizes=(3, 5, 7),
        image_chans: int = 32,
        width: int = 256,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Unflatten(1, (1, in_chans)),
            nn.Conv2d(1, image_chans, (1, 50), (1, 2), (0, 25), bias=False),
            nn.BatchNorm2d(image_chans),
            nn.ReLU(),
            *(nn.Sequential(DownBlock(image_chans, 15, True), nn.ReLU()) for _ in range(3)),
        )
        self.scales = nn.ModuleList(Scale(in_chans, k, image_chans, width) for k in kernel_sizes)
        self.fuse = Concat()
        self.num_features = width * len(kernel_sizes)
        self.feature_info = [{"module": "stem", "num_chs": image_chans, "reduction": 16, "lead_axis": 2}]
        self.feature_info += [
            {"module": f"scales.{i}", "num_chs": width, "reduction": 256} for i in range(len(kernel_sizes))
        ]
        self.feature_info.append({"module": "fuse", "num_chs": self.num_features, "reduction": 256})
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.fuse([scale(x) for scale in self.scales])


@register_model
def se_ecgnet(num_classes, in_chans=12, **kwargs):
    """SE-ECGNet (Zhang et al. 2020): 1 x 50 image stem, scales 1 x 3/5/7 in 2-D then 1-D, SE everywhere."""
    return SEECGNet(num_classes, in_chans, **kwargs)
