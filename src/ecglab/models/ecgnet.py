"""ECGNet (2018): one inception block on the raw ECG, then N plain convolution blocks.

Paper: Murugesan et al., "ECGNet: Deep Network for Arrhythmia Classification", IEEE MeMeA 2018;
the notes sum it up as "Inception Block + Conv Block x N". Unlike `inception1d` (the PTB-XL
benchmark's InceptionTime: six bottlenecked inception blocks with residual shortcuts), ECGNet has a
single inception block at the input and a plain convolutional trunk after it.

Our choices, where the paper's sizes were not available to us: the inception block has five
branches of 32 filters, 1-, 3-, 7- and 15-tap convolutions and a 3-wide max-pool followed by a
1-tap convolution (GoogLeNet's layout, kernels scaled to 100 Hz ECG: 10 to 150 ms), then a 2x
max-pool; N = 4 convolution blocks of two 5-tap
convolutions (BN, ReLU) and a 2x max-pool, widths 64-128-128-256, about resnet1d18's MACs at a
quarter of its parameters (docs/models.md).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import BatchNorm1d, ClassifierHead, ClassifierMixin, ConvNormAct, MaxPool1d, conv1d


class InceptionBlock(nn.Module):
    """Parallel 1-, 3-, 7- and 15-tap convolutions and a max-pool + 1-tap branch, concatenated, BN, ReLU."""

    def __init__(self, in_chans: int, filters: int = 32, kernel_sizes=(3, 7, 15)):
        super().__init__()
        self.convs = nn.ModuleList(conv1d(in_chans, filters, k) for k in (1, *kernel_sizes))
        self.pool = nn.Sequential(MaxPool1d(3, 1, 1), conv1d(in_chans, filters, 1))
        self.out_chans = filters * (len(kernel_sizes) + 2)
        self.bn = BatchNorm1d(self.out_chans)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [conv(x) for conv in self.convs] + [self.pool(x)]
        return self.act(self.bn(torch.cat(branches, dim=1)))


class ConvBlock(nn.Sequential):
    """Two convolutions (BN, ReLU) and a 2x max-pool."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 5):
        super().__init__(
            ConvNormAct(in_chans, out_chans, kernel_size),
            ConvNormAct(out_chans, out_chans, kernel_size),
            MaxPool1d(2, 2, ceil_mode=True),
        )


class ECGNet(ClassifierMixin, nn.Module):
    """Inception block and a 2x pool, then convolution blocks that each halve time."""

    min_samples = 1

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        widths=(64, 128, 128, 256),
        filters: int = 32,
        kernel_size: int = 5,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.inception = InceptionBlock(in_chans, filters)
        self.pool = MaxPool1d(2, 2, ceil_mode=True)
        self.feature_info = [{"module": "pool", "num_chs": self.inception.out_chans, "reduction": 2}]
        blocks, chans, reduction = [], self.inception.out_chans, 2
        for i, width in enumerate(widths):
            blocks.append(ConvBlock(chans, width, kernel_size))
            chans, reduction = width, reduction * 2
            self.feature_info.append({"module": f"blocks.{i}", "num_chs": width, "reduction": reduction})
        self.blocks = nn.Sequential(*blocks)
        self.num_features = chans
        self.head = ClassifierHead(chans, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.pool(self.inception(x)))


@register_model
def ecgnet(num_classes, in_chans=12, **kwargs):
    """ECGNet (Murugesan et al. 2018): inception block (1/3/7/15 taps + pool) and 4 convolution blocks."""
    return ECGNet(num_classes, in_chans, **kwargs)
