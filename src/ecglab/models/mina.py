"""MINA: multilevel knowledge-guided attention over frequency bands, segments and time.

Hong S., Xiao C., Ma T., Li H., Sun J. "MINA: Multilevel Knowledge-Guided Attention for Modeling
Electrocardiography Signals", IJCAI 2019 (arXiv:1905.11333). A frequency transformation layer splits
the signal into bands; each band is cut into sliding-window segments and passes its own
attention CNN (beat level) and attention Bi-LSTM (rhythm level); the band outputs are re-weighted by
a frequency attention and concatenated. Each attention is guided by a knowledge feature: the first
difference for beats (sharp changes), each segment's standard deviation for rhythm, and each band's
power spectral density for frequency.

Bands: drift below 0.5 Hz, the ECG proper from 0.5 to 50 Hz, noise above 50 Hz, as the notes give
them. The drift and ECG filters are Hamming-window FIR filters designed by scipy.signal.firwin
(4 s long: about 0.8 Hz of transition) and applied as fixed convolution weights, so the model trains
on a GPU and exports; the noise band is the input minus the other two, so the three bands sum to
the input exactly. Band edges at or above Nyquist are clipped to it: at the default fs = 100 Hz,
Nyquist is 50 Hz, so the ECG band is the complement of the drift band (a 0.5 Hz high-pass) and
the noise band is empty (zero up to rounding). The paper handles one lead; with several, the leads are the input channels of every
CNN, and the knowledge features are taken per lead.

Sizes (ours where the paper's were for 300 Hz single-lead records): segments of 0.5 s every
0.25 s, 64 convolution filters of 0.1 s with stride 2, Bi-LSTM of 32 units per direction,
attention width 16. The model stays small, as the paper's is.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import signal

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin
from ecglab.models.layers.windows import sliding_windows

DRIFT_HZ = 0.5
NOISE_HZ = 50.0


def band_kernels(fs: float, seconds: float = 4.0) -> np.ndarray:
    """FIR kernels (2, taps) of the drift (< 0.5 Hz) and ECG (0.5-50 Hz) bands at `fs`.

    When 50 Hz reaches Nyquist the ECG band is everything the drift band leaves (its complement).
    """
    taps = 2 * round(seconds * fs / 2) + 1
    nyquist = fs / 2
    drift = signal.firwin(taps, DRIFT_HZ, fs=fs)
    if NOISE_HZ < nyquist:
        ecg = signal.firwin(taps, (DRIFT_HZ, NOISE_HZ), pass_zero=False, fs=fs)
    else:  # everything above the drift: the complement, so the noise band is exactly empty
        ecg = -drift
        ecg[taps // 2] += 1.0
    return np.stack([drift, ecg]).astype(np.float32)


class FrequencyBands(nn.Module):
    """(B, leads, n) -> (B, 3, leads, n): drift, ECG and noise bands that sum to the input."""

    def __init__(self, fs: float):
        super().__init__()
        self.register_buffer("kernels", torch.from_numpy(band_kernels(fs))[:, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, leads, n = x.shape
        taps = self.kernels.shape[-1]
        flat = x.reshape(b * leads, 1, n)
        low_mid = F.conv1d(F.pad(flat, (taps // 2, taps // 2)), self.kernels).view(b, leads, 2, n)
        drift, ecg = low_mid.unbind(2)
        return torch.stack([drift, ecg, x - drift - ecg], dim=1)


class KnowledgeAttention(nn.Module):
    """alpha = softmax(v^T tanh(W h + U k)) over the steps of (B, S, C) features h with knowledge k (B, S, K)."""

    def __init__(self, dim: int, knowledge_dim: int, att_dim: int):
        super().__init__()
        self.w = nn.Linear(dim, att_dim)
        self.u = nn.Linear(knowledge_dim, att_dim, bias=False)
        self.v = nn.Linear(att_dim, 1, bias=False)

    def forward(self, h: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return self.v(torch.tanh(self.w(h) + self.u(k))).squeeze(-1).softmax(dim=-1)


class BandBranch(nn.Module):
    """One band: beat attention CNN inside segments, rhythm attention Bi-LSTM across them.

    (B, leads, S, L) segments -> (B, S, 2 * hidden) rhythm-weighted segment states, scaled by S so
    that their mean over segments is the attention-weighted sum the paper feeds on.
    """

    def __init__(self, in_chans: int, kernel: int, filters: int, hidden: int, att_dim: int):
        super().__init__()
        self.conv = nn.Conv1d(in_chans, filters, kernel, stride=2)
        self.beat_knowledge = nn.Conv1d(in_chans, 1, kernel, stride=2)
        self.beat_att = KnowledgeAttention(filters, 1, att_dim)
        self.rnn = nn.LSTM(filters, hidden, batch_first=True, bidirectional=True)
        self.rhythm_att = KnowledgeAttention(2 * hidden, in_chans, att_dim)

    def forward(self, seg: torch.Tensor) -> torch.Tensor:
        b, leads, s, length = seg.shape
        flat = seg.permute(0, 2, 1, 3).reshape(b * s, leads, length)
        local = F.relu(self.conv(flat)).transpose(1, 2)  # (B*S, T, filters)
        diff = torch.diff(flat, dim=-1, prepend=flat[..., :1])
        alpha = self.beat_att(local, self.beat_knowledge(diff).transpose(1, 2))
        beats = (alpha[..., None] * local).sum(dim=1).view(b, s, -1)
        states = self.rnn(beats)[0]
        beta = self.rhythm_att(states, seg.std(dim=-1).transpose(1, 2))  # knowledge: per-lead std
        return states * (beta * s)[..., None]


class BandFusion(nn.Module):
    """Band states re-weighted by the frequency attention and concatenated: (B, 3, S, C) -> (B, 3C, S)."""

    def forward(self, states: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        weighted = states * gamma[:, :, None, None]
        return weighted.permute(0, 1, 3, 2).flatten(1, 2)


class MINA(ClassifierMixin, nn.Module):
    """Frequency bands -> per-band attention CNN and Bi-LSTM -> frequency attention -> bands concatenated."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        fs: float = 100.0,
        segment_s: float = 0.5,
        filters: int = 64,
        hidden: int = 32,
        att_dim: int = 16,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.seg_len = round(segment_s * fs)
        self.step = self.seg_len // 2
        kernel = max(3, round(0.1 * fs))
        self.min_samples = self.seg_len
        self.bands = FrequencyBands(fs)
        self.branches = nn.ModuleList(
            BandBranch(in_chans, kernel, filters, hidden, att_dim) for _ in range(3)
        )
        self.freq_att = KnowledgeAttention(2 * hidden, in_chans, att_dim)
        self.fuse = BandFusion()
        self.num_features = 3 * 2 * hidden
        self.feature_info = [{"module": "fuse", "num_chs": self.num_features, "reduction": self.step}]
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        bands = self.bands(x)  # (B, 3, leads, n)
        outs = [
            branch(sliding_windows(bands[:, i], self.seg_len, self.step))
            for i, branch in enumerate(self.branches)
        ]
        states = torch.stack(outs, dim=1)  # (B, 3, S, C)
        psd = torch.log1p(torch.fft.rfft(bands, dim=-1).abs().square().mean(dim=-1))  # (B, 3, leads)
        gamma = self.freq_att(states.mean(dim=2), psd)  # (B, 3)
        return self.fuse(states, gamma)


@register_model
def mina(num_classes, in_chans=12, **kwargs):
    """MINA (Hong et al. 2019): three frequency bands, beat, rhythm and frequency attention guided by knowledge."""
    return MINA(num_classes, in_chans, **kwargs)
