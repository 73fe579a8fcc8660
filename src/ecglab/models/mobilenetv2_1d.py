"""MobileNetV2 in 1-D: inverted residual blocks with depthwise 3-tap convolutions."""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin, ConvNormAct

# expansion t, channels c, repeats n, first stride s (Sandler et al. 2018, Table 2)
_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round a width to a multiple of 8 without losing more than 10% (the reference rule)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class InvertedResidual1d(nn.Module):
    """Pointwise expansion, depthwise convolution, linear pointwise projection; residual when shapes match."""

    def __init__(self, in_chans: int, out_chans: int, stride: int, expand: int, kernel_size: int = 3):
        super().__init__()
        hidden = in_chans * expand
        layers = [ConvNormAct(in_chans, hidden, 1, act=nn.ReLU6)] if expand != 1 else []
        layers += [
            ConvNormAct(hidden, hidden, kernel_size, stride, groups=hidden, act=nn.ReLU6),
            ConvNormAct(hidden, out_chans, 1, act=None),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_chans == out_chans

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2_1d(ClassifierMixin, nn.Module):
    """Stem, seven inverted-residual stages, a 1x1 convolution to 1280 channels; reduction 32."""

    min_samples = 1

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        width_mult: float = 1.0,
        kernel_size: int = 3,
        drop_rate=0.2,
    ):
        super().__init__()
        chans = _make_divisible(32 * width_mult)
        self.stem = ConvNormAct(in_chans, chans, kernel_size, 2, act=nn.ReLU6)
        self.feature_info = [{"module": "stem", "num_chs": chans, "reduction": 2}]
        stages, reduction = [], 2
        for i, (t, c, n, s) in enumerate(_SETTINGS):
            out = _make_divisible(c * width_mult)
            blocks = [
                InvertedResidual1d(chans if j == 0 else out, out, s if j == 0 else 1, t, kernel_size)
                for j in range(n)
            ]
            stages.append(nn.Sequential(*blocks))
            chans, reduction = out, reduction * s
            self.feature_info.append({"module": f"stages.{i}", "num_chs": out, "reduction": reduction})
        self.num_features = _make_divisible(1280 * max(1.0, width_mult))
        stages.append(ConvNormAct(chans, self.num_features, 1, act=nn.ReLU6))
        self.feature_info.append({"module": "stages.7", "num_chs": self.num_features, "reduction": reduction})
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


@register_model
def mobilenetv2_1d(num_classes, in_chans=12, **kwargs):
    """MobileNetV2 (width 1.0) with 3-tap depthwise convolutions; dropout 0.2 before the classifier."""
    return MobileNetV2_1d(num_classes, in_chans, **kwargs)
