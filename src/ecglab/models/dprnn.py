"""Dual-path RNN: the ECG cut into half-overlapping segments, Bi-LSTMs within and across segments, overlap-add.

Paper: "Single-lead ECG recordings modeling for end-to-end recognition of atrial fibrillation with
dual-path RNN", Biomedical Signal Processing and Control (2022), after Luo et al.'s DPRNN (ICASSP
2020). From the paper: the whole ECG goes in; segmentation turns [B, N, L] into [B, N, S, K]
(S segments of K steps, 50% overlap); blocks alternate an intra-segment Bi-LSTM (along K, local
waveform) and an inter-segment Bi-LSTM (along S, rhythm), each with a linear projection, a norm
and a residual connection; overlap-add, the inverse of segmentation, restores [B, N, L].

Our choices, where the paper's sizes were not available to us: a learned encoder (8-tap
convolution, stride 4, 64 channels, ReLU: TasNet's front end) so the LSTMs run on 25 frames per
second rather than every sample; K = 50 frames (2 s at 100 Hz, a hop of 1 s); 4 dual-path blocks
with 64 hidden units per direction; group norm with one group (DPRNN's global layer norm); the
overlap-added map is the feature map. Works on one lead and on 12 (`in_chans`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin


def segment(x: torch.Tensor, size: int) -> torch.Tensor:
    """[B, N, L] -> [B, N, S, size]: half-overlapping segments (hop size / 2) of the zero-padded sequence.

    Half a segment of zeros in front and enough at the end make every step appear in exactly two segments.
    """
    hop = size // 2
    length = x.shape[-1]
    pad_end = hop + (-length) % hop
    halves = F.pad(x, (hop, pad_end)).unflatten(-1, (-1, hop))  # [B, N, S + 1, hop]
    return torch.cat([halves[:, :, :-1], halves[:, :, 1:]], dim=-1)


def overlap_add(segments: torch.Tensor, length: int) -> torch.Tensor:
    """[B, N, S, size] -> [B, N, length]: the inverse of `segment`; the two copies of each step are averaged."""
    hop = segments.shape[-1] // 2
    first, second = segments[..., :hop].flatten(-2), segments[..., hop:].flatten(-2)
    total = F.pad(first, (0, hop)) + F.pad(second, (hop, 0))
    return total[..., hop : hop + length] / 2


class PathRNN(nn.Module):
    """Bi-LSTM along one axis of [B, N, S, K] (the last one, K), projected back to N, normed, residual."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.rnn = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, dim)
        self.norm = nn.GroupNorm(1, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, s, k = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(b * s, k, n)
        y = self.proj(self.rnn(seq)[0]).reshape(b, s, k, n).permute(0, 3, 1, 2)
        return x + self.norm(y)


class DualPathBlock(nn.Module):
    """An intra-segment Bi-LSTM (along each segment's K steps), then an inter-segment one (along S)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.intra = PathRNN(dim, hidden)
        self.inter = PathRNN(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.intra(x)
        return self.inter(x.transpose(2, 3)).transpose(2, 3)


class DualPath(nn.Module):
    """Segment, dual-path blocks, overlap-add: [B, N, L] -> [B, N, L]."""

    def __init__(self, dim: int, hidden: int, depth: int, segment_size: int):
        super().__init__()
        self.segment_size = segment_size
        self.blocks = nn.Sequential(*(DualPathBlock(dim, hidden) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return overlap_add(self.blocks(segment(x, self.segment_size)), x.shape[-1])


class DPRNN(ClassifierMixin, nn.Module):
    """Encoder convolution, dual-path RNN, average-pool classifier."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        dim: int = 64,
        hidden: int = 64,
        depth: int = 4,
        segment_size: int = 50,
        kernel_size: int = 8,
        stride: int = 4,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.min_samples = kernel_size
        self.encoder = nn.Sequential(nn.Conv1d(in_chans, dim, kernel_size, stride, bias=False), nn.ReLU())
        self.dual_path = DualPath(dim, hidden, depth, segment_size)
        self.num_features = dim
        self.feature_info = [
            {"module": "encoder", "num_chs": dim, "reduction": stride},
            {"module": "dual_path", "num_chs": dim, "reduction": stride},
        ]
        self.head = ClassifierHead(dim, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.dual_path(self.encoder(x))


@register_model
def dprnn(num_classes, in_chans=12, **kwargs):
    """Dual-path RNN (BSPC 2022): 4 blocks of intra- and inter-segment Bi-LSTMs over 50-frame segments."""
    return DPRNN(num_classes, in_chans, **kwargs)
