"""1-D ResNets with basic blocks: resnet1d18/34 and the PTB-XL benchmark's resnet1d_wang."""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin, ConcatPoolHead, ConvNormAct, MaxPool1d


class BasicBlock1d(nn.Module):
    """Two convolutions and a shortcut (a strided 1x1 convolution where the shape changes)."""

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1, kernel_sizes=(3, 3)):
        super().__init__()
        self.conv1 = ConvNormAct(in_chans, out_chans, kernel_sizes[0], stride)
        self.conv2 = ConvNormAct(out_chans, out_chans, kernel_sizes[1], act=None)
        self.shortcut = nn.Identity()
        if stride != 1 or in_chans != out_chans:
            self.shortcut = ConvNormAct(in_chans, out_chans, 1, stride, act=None)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet1d(ClassifierMixin, nn.Module):
    """A stem (convolution, optional max-pool), then stages of basic blocks; stages after the first halve time."""

    min_samples = 1  # every convolution and pool is padded

    def __init__(
        self,
        layers,
        num_classes: int,
        in_chans: int = 12,
        widths=(64, 128, 256, 512),
        kernel_sizes=(3, 3),
        stem_kernel: int = 7,
        stem_stride: int = 2,
        stem_pool: bool = True,
        drop_rate: float = 0.0,
        head: str = "avg",
    ):
        super().__init__()
        self.stem = nn.Sequential(ConvNormAct(in_chans, widths[0], stem_kernel, stem_stride))
        if stem_pool:
            self.stem.append(MaxPool1d(3, 2, 1))
        reduction = stem_stride * (2 if stem_pool else 1)
        self.feature_info = [{"module": "stem", "num_chs": widths[0], "reduction": reduction}]
        stages, chans = [], widths[0]
        for i, (depth, width) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock1d(chans, width, stride, kernel_sizes)]
            blocks += [BasicBlock1d(width, width, 1, kernel_sizes) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            chans, reduction = width, reduction * stride
            self.feature_info.append({"module": f"stages.{i}", "num_chs": width, "reduction": reduction})
        self.stages = nn.Sequential(*stages)
        self.num_features = chans
        if head == "concat":
            self.head = ConcatPoolHead(chans, num_classes, drop_rate=drop_rate)
        else:
            self.head = ClassifierHead(chans, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


@register_model
def resnet1d18(num_classes, in_chans=12, **kwargs):
    """ResNet-18 in 1-D: 7-tap stride-2 stem, max-pool, 3-tap basic blocks, widths 64-512."""
    return ResNet1d((2, 2, 2, 2), num_classes, in_chans, **kwargs)


@register_model
def resnet1d34(num_classes, in_chans=12, **kwargs):
    """ResNet-34 in 1-D, laid out like resnet1d18."""
    return ResNet1d((3, 4, 6, 3), num_classes, in_chans, **kwargs)


@register_model
def resnet1d_wang(num_classes, in_chans=12, **kwargs):
    """Wang et al.'s ResNet as configured in the PTB-XL benchmark (Strodthoff et al. 2021).

    Stem: 7-tap convolution to 128 channels, stride 1, no pool; three stages of one basic block
    (5-tap then 3-tap), all 128 wide, the last two with stride 2; concat-pooling head with a
    128-unit hidden layer and dropout 0.5.
    """
    kwargs = {
        "widths": (128, 128, 128),
        "kernel_sizes": (5, 3),
        "stem_stride": 1,
        "stem_pool": False,
        **kwargs,
    }
    kwargs.setdefault("head", "concat")
    kwargs.setdefault("drop_rate", 0.5)
    return ResNet1d((1, 1, 1), num_classes, in_chans, **kwargs)
