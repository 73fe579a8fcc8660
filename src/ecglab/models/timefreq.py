"""Time-frequency models: an STFT front end into a 2-D ResNet-34, and a two-stream time + frequency model."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin
from ecglab.models.resnet1d import ResNet1d


class Spectrogram(nn.Module):
    """Per-lead log-magnitude STFT: (B, leads, samples) -> (B, leads, n_fft // 2 + 1, frames).

    Hamming window of `n_fft` samples, centred frames every `hop` samples; log1p tames the
    dynamic range so the 2-D network sees inputs of order one.
    """

    def __init__(self, n_fft: int = 100, hop: int = 25):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hamming_window(n_fft), persistent=False)

    def forward(self, x):
        b, leads, samples = x.shape
        spec = torch.stft(
            x.reshape(b * leads, samples), self.n_fft, self.hop, window=self.window, return_complex=True
        )
        return torch.log1p(spec.abs()).reshape(b, leads, *spec.shape[-2:])


class BasicBlock2d(nn.Module):
    """Two 3x3 convolutions and a shortcut (a strided 1x1 convolution where the shape changes)."""

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, out_chans, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chans)
        self.conv2 = nn.Conv2d(out_chans, out_chans, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chans)
        self.shortcut = nn.Identity()
        if stride != 1 or in_chans != out_chans:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chans, out_chans, 1, stride, bias=False), nn.BatchNorm2d(out_chans)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(y)) + self.shortcut(x))


class FreqPool(nn.Module):
    """Average a (B, C, freq, frames) map over frequency: the 1-D feature map of the contract."""

    def forward(self, x):
        return x.mean(dim=2)


class STFTResNet(ClassifierMixin, nn.Module):
    """Spectrogram, then a 2-D ResNet (7x7 stride-2 stem, max-pool, 3x3 basic blocks, widths 64-512)."""

    def __init__(
        self,
        layers,
        num_classes: int,
        in_chans: int = 12,
        widths=(64, 128, 256, 512),
        n_fft: int = 100,
        hop: int = 25,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.min_samples = n_fft // 2 + 1  # reflect padding of the centred STFT needs more than n_fft / 2
        self.spectrogram = Spectrogram(n_fft, hop)
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        reduction = hop * 4  # in input samples per output frame
        self.feature_info = [{"module": "stem", "num_chs": widths[0], "reduction": reduction}]
        stages, chans = [], widths[0]
        for i, (depth, width) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock2d(chans, width, stride)] + [
                BasicBlock2d(width, width) for _ in range(depth - 1)
            ]
            stages.append(nn.Sequential(*blocks))
            chans, reduction = width, reduction * stride
            self.feature_info.append({"module": f"stages.{i}", "num_chs": width, "reduction": reduction})
        self.stages = nn.Sequential(*stages)
        self.freq_pool = FreqPool()
        self.feature_info.append({"module": "freq_pool", "num_chs": chans, "reduction": reduction})
        self.num_features = chans
        self.head = ClassifierHead(chans, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.freq_pool(self.stages(self.stem(self.spectrogram(x))))


class Concat(nn.Module):
    """Join two (B, C, T) maps on channels, resampling the second's time axis to the first's."""

    def forward(self, a, b):
        if b.shape[-1] != a.shape[-1]:
            b = F.interpolate(b, size=a.shape[-1], mode="linear", align_corners=False)
        return torch.cat([a, b], dim=1)


class TwoStreamResNet(ClassifierMixin, nn.Module):
    """A 1-D ResNet on the samples beside an STFT 2-D ResNet; their feature maps are concatenated.

    The frequency stream has fewer frames (one per 800 samples against one per 32), so its map is
    linearly resampled to the time stream's length before the concatenation.
    """

    def __init__(
        self, layers, num_classes: int, in_chans: int = 12, drop_rate: float = 0.0, n_fft=100, hop=25
    ):
        super().__init__()
        self.time = ResNet1d(layers, 0, in_chans)
        self.freq = STFTResNet(layers, 0, in_chans, n_fft=n_fft, hop=hop)
        self.min_samples = max(self.time.min_samples, self.freq.min_samples)
        self.fuse = Concat()
        self.num_features = self.time.num_features + self.freq.num_features
        self.feature_info = [{**f, "module": f"time.{f['module']}"} for f in self.time.feature_info]
        self.feature_info += [{**f, "module": f"freq.{f['module']}"} for f in self.freq.feature_info]
        reduction = self.time.feature_info[-1]["reduction"]
        self.feature_info.append({"module": "fuse", "num_chs": self.num_features, "reduction": reduction})
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.time.forward_features(x), self.freq.forward_features(x))


@register_model
def stft_resnet34(num_classes, in_chans=12, **kwargs):
    """Spectrograms (Hamming window 100, hop 25) of each lead as channels of a 2-D ResNet-34."""
    return STFTResNet((3, 4, 6, 3), num_classes, in_chans, **kwargs)


@register_model
def twostream_resnet(num_classes, in_chans=12, **kwargs):
    """Two-stream model of the notes: resnet1d34 on the samples plus stft_resnet34, features concatenated."""
    return TwoStreamResNet((3, 4, 6, 3), num_classes, in_chans, **kwargs)
