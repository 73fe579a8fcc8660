"""SE-ECGNet: multi-scale 2-D convolution over the ECG as a grey image, then 1-D SE residual blocks.

Paper: Zhang, Zhao and Liu, "SE-ECGNet: A Multi-scale Deep Residual Network with Squeeze-and-
Excitation Module for ECG Signal Classification", IEEE BIBM 2020 (arXiv:2012.05510). From the paper:
the multi-lead signal is a 2-D matrix (a one-channel grey image, leads x time); parallel scales
each run 2-D convolutions over it and then 1-D convolution blocks with squeeze-and-excitation and
residual shortcuts; the scales are concatenated before the classifier. The notes add that the
early kernels are large (a wide receptive field first, condensed later).

Our choices, where the paper's sizes were not available to us: three scales whose 3 x k image
kernels span 3 leads and k = 7, 15 and 31 samples (70-310 ms at 100 Hz), stride 2 in time, 16
channels; a (leads x 1) convolution then folds the leads into 32 channels; each scale continues
with three 1-D SE residual blocks (7, 5 and 3 taps: large early, small late; widths 64-128-128,
each halving time), and the three scales are concatenated (384 features). The SE gate is the
toolkit's (`SqueezeExcite1d`, reduction 8, GELU inside where the SE paper has ReLU).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin, ConvNormAct
from ecglab.models.layers.inception_next import ChannelsFirst, SqueezeExcite1d


class ImageScale(nn.Module):
    """One scale of the 2-D front end: a 3 x k convolution over the grey image (stride 2 in time), then a
    (leads x 1) convolution that folds the leads into channels: (B, leads, L) -> (B, out_chans, L / 2)."""

    def __init__(self, leads: int, kernel_size: int, image_chans: int = 16, out_chans: int = 32):
        super().__init__()
        self.image = nn.Sequential(
            nn.Conv2d(1, image_chans, (3, kernel_size), (1, 2), (1, kernel_size // 2), bias=False),
            nn.BatchNorm2d(image_chans),
            nn.ReLU(),
        )
        self.fold = nn.Sequential(
            nn.Conv2d(image_chans, out_chans, (leads, 1), bias=False), nn.BatchNorm2d(out_chans), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fold(self.image(x.unsqueeze(1))).squeeze(2)


class SEResBlock1d(nn.Module):
    """Two convolutions, a squeeze-and-excitation gate on the branch, and a (strided 1-tap) shortcut."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int, stride: int = 2, reduction: int = 8):
        super().__init__()
        self.conv1 = ConvNormAct(in_chans, out_chans, kernel_size, stride)
        self.conv2 = ConvNormAct(out_chans, out_chans, kernel_size, act=None)
        self.se = ChannelsFirst(SqueezeExcite1d(out_chans, reduction))
        self.shortcut = nn.Identity()
        if stride != 1 or in_chans != out_chans:
            self.shortcut = ConvNormAct(in_chans, out_chans, 1, stride, act=None)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.se(self.conv2(self.conv1(x))) + self.shortcut(x))


class Scale(nn.Sequential):
    """One scale: its image front end, then 1-D SE residual blocks with shrinking kernels."""

    def __init__(self, leads: int, image_kernel: int, widths, kernel_sizes):
        chans, blocks = 32, []
        for width, k in zip(widths, kernel_sizes, strict=True):
            blocks.append(SEResBlock1d(chans, width, k))
            chans = width
        super().__init__(ImageScale(leads, image_kernel, out_chans=32), *blocks)


class Concat(nn.Module):
    """Concatenate (B, C_i, T) maps of one length along channels."""

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(maps, dim=1)


class SEECGNet(ClassifierMixin, nn.Module):
    """Parallel scales (image front end + 1-D SE residual blocks), concatenated along channels."""

    min_samples = 1

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        image_kernels=(7, 15, 31),
        widths=(64, 128, 128),
        kernel_sizes=(7, 5, 3),
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.scales = nn.ModuleList(Scale(in_chans, k, widths, kernel_sizes) for k in image_kernels)
        self.fuse = Concat()
        reduction = 2 ** (len(widths) + 1)
        self.num_features = widths[-1] * len(image_kernels)
        self.feature_info = [
            {"module": f"scales.{i}", "num_chs": widths[-1], "reduction": reduction}
            for i in range(len(image_kernels))
        ]
        self.feature_info.append({"module": "fuse", "num_chs": self.num_features, "reduction": reduction})
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse([scale(x) for scale in self.scales])


@register_model
def se_ecgnet(num_classes, in_chans=12, **kwargs):
    """SE-ECGNet (Zhang et al. 2020): 3 image scales (3 x 7/15/31 kernels), then 1-D SE residual blocks."""
    return SEECGNet(num_classes, in_chans, **kwargs)
