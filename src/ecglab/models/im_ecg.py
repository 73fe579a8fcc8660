"""IM-ECG: the multi-lead ECG as a one-channel image (leads x time) through dual-kernel residual blocks.

Paper: "IM-ECG: An interpretable framework for arrhythmia detection using multi-lead ECG", Expert
Systems with Applications (2023). From the paper: the ECG is a 2-D grey image whose rows are the
leads; each residual block scans it two ways at once, with k x n regional kernels that pull
neighbouring leads together (inter-lead features) and 1 x n horizontal kernels that run along one
lead (intra-lead features); Grad-CAM on the 2-D feature maps marks the pathological regions lead by
lead.

Our choices, where the paper's sizes were not available to us: k = 3 leads, n = 7 samples (70 ms at
100 Hz); each dual-kernel convolution gives half its channels to each kernel; the lead axis is
zero-padded so every row of every feature map stays one lead (the per-lead Grad-CAM then needs no
interpolation across leads); a 1 x 15 stride-2 stem and a 1 x 3 max-pool, then four stages of one
block, widths 16-128, the last three halving time. That keeps MACs near resnet1d18's (a 2-D map
costs `leads` times a 1-D one of the same width); see docs/models.md. `forward_features` averages
the lead rows of the last stage, so the contract's (B, C, T) map follows; the stages themselves
declare `lead_axis: 2` in `feature_info`, so `grad_cam_leads(model, x, c, layer="stages.3")`
gives one map per lead.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin


class ToImage(nn.Module):
    """(B, leads, samples) -> (B, 1, leads, samples): the ECG as a one-channel grey image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1)


class LeadPool(nn.Module):
    """Average the lead rows of a (B, C, leads, T) map: the (B, C, T) map of the model contract."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=2)


class DualKernelConv(nn.Module):
    """Half the output channels from a k x n regional kernel (spans k neighbouring leads), half from
    a 1 x n horizontal kernel (one lead at a time); both stride only in time."""

    def __init__(self, in_chans: int, out_chans: int, k: int = 3, n: int = 7, stride: int = 1):
        super().__init__()
        half = out_chans // 2
        self.regional = nn.Conv2d(in_chans, half, (k, n), (1, stride), (k // 2, n // 2), bias=False)
        self.horizontal = nn.Conv2d(in_chans, out_chans - half, (1, n), (1, stride), (0, n // 2), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.regional(x), self.horizontal(x)], dim=1)


class DualKernelBlock(nn.Module):
    """Two dual-kernel convolutions with BN and ReLU, and a shortcut (1 x 1, strided, where the shape changes)."""

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1, k: int = 3, n: int = 7):
        super().__init__()
        self.conv1 = DualKernelConv(in_chans, out_chans, k, n, stride)
        self.bn1 = nn.BatchNorm2d(out_chans)
        self.conv2 = DualKernelConv(out_chans, out_chans, k, n)
        self.bn2 = nn.BatchNorm2d(out_chans)
        self.shortcut = nn.Identity()
        if stride != 1 or in_chans != out_chans:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chans, out_chans, 1, (1, stride), bias=False), nn.BatchNorm2d(out_chans)
            )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(y)) + self.shortcut(x))


class IMECG(ClassifierMixin, nn.Module):
    """Stem (1 x 15 stride 2, max-pool), stages of dual-kernel blocks, the lead rows averaged at the end."""

    min_samples = 1  # every convolution and pool is padded

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        widths=(16, 32, 64, 128),
        depths=(1, 1, 1, 1),
        k: int = 3,
        n: int = 7,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.stem = nn.Sequential(
            ToImage(),
            nn.Conv2d(1, widths[0], (1, 15), (1, 2), (0, 7), bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
            nn.MaxPool2d((1, 3), (1, 2), (0, 1)),
        )
        reduction = 4
        self.feature_info = [{"module": "stem", "num_chs": widths[0], "reduction": reduction, "lead_axis": 2}]
        stages, chans = [], widths[0]
        for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [DualKernelBlock(chans, width, stride, k, n)]
            blocks += [DualKernelBlock(width, width, 1, k, n) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            chans, reduction = width, reduction * stride
            self.feature_info.append(
                {"module": f"stages.{i}", "num_chs": width, "reduction": reduction, "lead_axis": 2}
            )
        self.stages = nn.Sequential(*stages)
        self.lead_pool = LeadPool()
        self.feature_info.append({"module": "lead_pool", "num_chs": chans, "reduction": reduction})
        self.num_features = chans
        self.head = ClassifierHead(chans, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.lead_pool(self.stages(self.stem(x)))


@register_model
def im_ecg(num_classes, in_chans=12, **kwargs):
    """IM-ECG: dual-kernel (3 x 7 regional + 1 x 7 horizontal) residual blocks over the leads x time image."""
    return IMECG(num_classes, in_chans, **kwargs)
