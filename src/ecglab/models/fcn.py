"""Wang et al.'s fully convolutional network (FCN), as configured in the PTB-XL benchmark."""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierMixin, ConcatPoolHead, ConvNormAct


class FCN1d(ClassifierMixin, nn.Module):
    """Three convolution-BN-ReLU layers at full resolution (128, 256, 128 channels; 8, 5, 3 taps)."""

    min_samples = 2  # the 8-tap convolution, padded by 3, shortens the input by one sample

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        widths=(128, 256, 128),
        kernel_sizes=(8, 5, 3),
        drop_rate=0.5,
    ):
        super().__init__()
        chans = (in_chans, *widths)
        self.layers = nn.Sequential(
            *[ConvNormAct(chans[i], chans[i + 1], k) for i, k in enumerate(kernel_sizes)]
        )
        self.feature_info = [
            {"module": f"layers.{i}", "num_chs": w, "reduction": 1} for i, w in enumerate(widths)
        ]
        self.num_features = widths[-1]
        self.head = ConcatPoolHead(widths[-1], num_classes, drop_rate=drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@register_model
def fcn_wang(num_classes, in_chans=12, **kwargs):
    """FCN of Wang et al. (2017) with the benchmark's concat-pooling head (hidden 128, dropout 0.5).

    Padding is (k - 1) // 2 as in the benchmark code, so T = samples - 1.
    """
    return FCN1d(num_classes, in_chans, **kwargs)
