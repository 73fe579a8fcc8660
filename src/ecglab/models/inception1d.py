"""InceptionTime-style 1-D network, as configured in the PTB-XL benchmark (Strodthoff et al. 2021)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import BatchNorm1d, ClassifierMixin, ConcatPoolHead, ConvNormAct, MaxPool1d, conv1d


class InceptionBlock1d(nn.Module):
    """A 1x1 bottleneck feeding three long convolutions, beside a max-pool and 1x1 branch; BN-ReLU over the concat."""

    def __init__(self, in_chans: int, filters: int = 32, kernel_sizes=(39, 19, 9), bottleneck: int = 32):
        super().__init__()
        self.bottleneck = conv1d(in_chans, bottleneck, 1)
        self.convs = nn.ModuleList(conv1d(bottleneck, filters, k) for k in kernel_sizes)
        self.pool_branch = nn.Sequential(MaxPool1d(3, 1, 1), conv1d(in_chans, filters, 1))
        self.bn_act = nn.Sequential(BatchNorm1d(filters * (len(kernel_sizes) + 1)), nn.ReLU())  # not in place

    def forward(self, x):
        b = self.bottleneck(x)
        return self.bn_act(torch.cat([conv(b) for conv in self.convs] + [self.pool_branch(x)], dim=1))


class InceptionStage1d(nn.Module):
    """Three inception blocks with a 1x1 convolution shortcut around them, then ReLU."""

    def __init__(self, in_chans: int, filters: int, kernel_sizes, bottleneck: int, depth: int = 3):
        super().__init__()
        chans = filters * (len(kernel_sizes) + 1)
        self.blocks = nn.Sequential(
            *[
                InceptionBlock1d(in_chans if d == 0 else chans, filters, kernel_sizes, bottleneck)
                for d in range(depth)
            ]
        )
        self.shortcut = ConvNormAct(in_chans, chans, 1, act=None)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.blocks(x) + self.shortcut(x))


class Inception1d(ClassifierMixin, nn.Module):
    """Stages of three inception blocks with residual shortcuts, all at full time resolution."""

    min_samples = 1

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        depth: int = 6,
        kernel_size: int = 40,
        filters: int = 32,
        bottleneck: int = 32,
        drop_rate: float = 0.5,
    ):
        super().__init__()
        if depth % 3:
            raise ValueError(
                f"inception1d: depth must be a multiple of 3 (a shortcut spans 3 blocks), got {depth}"
            )
        kernel_sizes = [k - 1 if k % 2 == 0 else k for k in (kernel_size, kernel_size // 2, kernel_size // 4)]
        self.num_features = chans = filters * (len(kernel_sizes) + 1)
        self.stages = nn.Sequential(
            *[
                InceptionStage1d(in_chans if i == 0 else chans, filters, kernel_sizes, bottleneck)
                for i in range(depth // 3)
            ]
        )
        self.feature_info = [
            {"module": f"stages.{i}", "num_chs": chans, "reduction": 1} for i in range(depth // 3)
        ]
        self.head = ConcatPoolHead(chans, num_classes, drop_rate=drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


@register_model
def inception1d(num_classes, in_chans=12, **kwargs):
    """The benchmark's inception1d: depth 6, kernels 39/19/9, 32 filters per branch, 128 features,
    concat-pooling head with a 128-unit hidden layer."""
    return Inception1d(num_classes, in_chans, **kwargs)
