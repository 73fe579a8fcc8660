"""XResNet in 1-D (He et al. 2019 "bag of tricks" ResNet-D), as in the PTB-XL benchmark."""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import AvgPool1d, ClassifierMixin, ConcatPoolHead, ConvNormAct, MaxPool1d


class XBottleneck1d(nn.Module):
    """1x1 reduce, k-tap (strided) convolution, 1x1 expand with a zero-initialised last norm.

    The shortcut average-pools before its 1x1 convolution (ResNet-D), so no input is skipped.
    """

    def __init__(self, in_chans: int, width: int, stride: int = 1, kernel_size: int = 5, expansion: int = 4):
        super().__init__()
        out_chans = width * expansion
        self.convs = nn.Sequential(
            ConvNormAct(in_chans, width, 1),
            ConvNormAct(width, width, kernel_size, stride),
            ConvNormAct(width, out_chans, 1, act=None, zero_init=True),
        )
        shortcut = []
        if stride != 1:
            shortcut.append(AvgPool1d(stride, ceil_mode=True))
        if in_chans != out_chans:
            shortcut.append(ConvNormAct(in_chans, out_chans, 1, act=None))
        self.shortcut = nn.Sequential(*shortcut)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.convs(x) + self.shortcut(x))


class XResNet1d(ClassifierMixin, nn.Module):
    """Three-convolution stem and max-pool (reduction 4), then four bottleneck stages, the last three strided."""

    min_samples = 1

    def __init__(
        self,
        layers,
        num_classes: int,
        in_chans: int = 12,
        widths=(64, 128, 256, 512),
        stem_widths=(32, 32, 64),
        kernel_size: int = 5,
        expansion: int = 4,
        drop_rate: float = 0.5,
    ):
        super().__init__()
        chans = (in_chans, *stem_widths)
        self.stem = nn.Sequential(
            *[ConvNormAct(chans[i], chans[i + 1], kernel_size, 2 if i == 0 else 1) for i in range(3)]
        )
        self.stem.append(MaxPool1d(3, 2, 1))
        self.feature_info = [{"module": "stem", "num_chs": stem_widths[-1], "reduction": 4}]
        stages, chans, reduction = [], stem_widths[-1], 4
        for i, (depth, width) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [XBottleneck1d(chans, width, stride, kernel_size, expansion)]
            blocks += [
                XBottleneck1d(width * expansion, width, 1, kernel_size, expansion) for _ in range(depth - 1)
            ]
            stages.append(nn.Sequential(*blocks))
            chans, reduction = width * expansion, reduction * stride
            self.feature_info.append({"module": f"stages.{i}", "num_chs": chans, "reduction": reduction})
        self.stages = nn.Sequential(*stages)
        self.num_features = chans
        self.head = ConcatPoolHead(chans, num_classes, drop_rate=drop_rate)
        self.num_classes = num_classes
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


@register_model
def xresnet1d101(num_classes, in_chans=12, **kwargs):
    """XResNet-101 in 1-D with 5-tap kernels and the benchmark's concat-pooling head (Strodthoff et al. 2021).

    Stages of (3, 4, 23, 3) bottlenecks, widths 64-512 expanded 4x to 2048 features.
    """
    return XResNet1d((3, 4, 23, 3), num_classes, in_chans, **kwargs)
