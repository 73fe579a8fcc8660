"""Multimodal multi-instance learning (MAMIL): beats as instances, seen as a signal and as a GAF image.

Han H., Lian C., Zeng Z., Xu B., Zang J., Xue C. "Multimodal multi-instance learning for long-term
ECG classification", Knowledge-Based Systems 270:110555 (2023). A record is a bag; its instances are
heartbeats in two modalities, the 1-D signal and a Gramian Angular Field (GAF) image; a CNN per
modality gives instance features. Fusion: in each modality, max pooling picks the top-activated
instance; its correlation with every instance, scored on both modalities' features, weights the
instances into a vector that carries both modalities; that vector and the top instance make the
modality's bag feature; the two bag features are concatenated through a linear layer.

Instances: beats at R peaks found by scipy's peak finder (`layers.beats`; a record without peaks
falls back to fixed windows). The paper cuts the GAF image of the whole record into patches; here
each beat's image is the GAF of its window (the diagonal block of the record's GAF when the
rescaling is per beat), so the two modalities' instances are the same beats. Which instance is
"top-activated" is decided by max pooling: the instance holding the largest activation of any
channel; the choice itself passes no gradient, the top instance's feature does.

The feature map is the instance features over beats (its time axis); its last channel marks real
beats (1) against padding (0), so the MIL head, which pools the beats, ignores padding. Sizes
(ours, to sit with resnet1d18): beat windows 0.25 s before and 0.45 s after the R peak, 1-D CNN of
32, 64, 128 channels, 2-D CNN of 32, 64, 128 channels, instance width 128, bag width 128.
Detection runs in numpy inside `forward`, so the model does not export.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierMixin, ConvNormAct
from ecglab.models.layers.beats import MIN_RR_S, beat_centres, gather_beats


def gramian_angular_field(x: torch.Tensor) -> torch.Tensor:
    """Gramian angular summation field of each window of (..., W): (..., W, W), values in [-1, 1].

    Each window is min-max rescaled to [-1, 1]; with phi = arccos(x), GASF_ij = cos(phi_i + phi_j)
    = x_i x_j - sqrt(1 - x_i^2) sqrt(1 - x_j^2).
    """
    lo, hi = x.amin(dim=-1, keepdim=True), x.amax(dim=-1, keepdim=True)
    x = (2 * (x - lo) / (hi - lo).clamp(min=1e-6) - 1).clamp(-1, 1)
    s = (1 - x.square()).clamp(min=0).sqrt()
    return x[..., :, None] * x[..., None, :] - s[..., :, None] * s[..., None, :]


class SignalEncoder(nn.Module):
    """1-D CNN over one beat (N, leads, W) -> (N, dim)."""

    def __init__(self, in_chans: int, widths: tuple[int, ...]):
        super().__init__()
        chans = (in_chans, *widths)
        self.convs = nn.Sequential(*(ConvNormAct(a, b, 5, stride=2) for a, b in pairwise(chans)))

    def forward(self, beats: torch.Tensor) -> torch.Tensor:
        return self.convs(beats).mean(dim=-1)


class ImageEncoder(nn.Module):
    """2-D CNN over one beat's GAF images, leads as channels: (N, leads, W, W) -> (N, dim)."""

    def __init__(self, in_chans: int, widths: tuple[int, ...]):
        super().__init__()
        layers, c = [], in_chans
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.convs = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.convs(images).mean(dim=(-2, -1))


class InstanceFeatures(nn.Module):
    """Both modalities' features of each beat and the padding mask: (B, 2 dim + 1, N)."""

    def forward(self, signal: torch.Tensor, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return torch.cat([signal, image, valid[..., None].to(signal.dtype)], dim=-1).transpose(1, 2)


class TopInstanceFusion(nn.Module):
    """One modality's bag feature from (B, N, dim) instances of it and (B, N, 2 dim) of both modalities.

    The top instance (the real beat holding the largest activation) queries every real instance's
    two-modality feature; softmax-normalised correlations weight those features; the weighted
    vector and the top instance feature are fused by a linear layer.
    """

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.query = nn.Linear(dim, out_dim)
        self.key = nn.Linear(2 * dim, out_dim)
        self.value = nn.Linear(2 * dim, out_dim)
        self.fuse = nn.Linear(dim + out_dim, out_dim)

    def top_instance(self, inst: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Index (B,) of each bag's top-activated real instance: max pooling over channels, then instances."""
        return inst.amax(dim=-1).masked_fill(~valid, float("-inf")).argmax(dim=-1)

    def forward(self, inst: torch.Tensor, both: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        top = self.top_instance(inst, valid)
        top_feat = inst[torch.arange(inst.shape[0], device=inst.device), top]  # (B, dim)
        q, k = self.query(top_feat), self.key(both)
        corr = (k @ q[..., None]).squeeze(-1) * q.shape[-1] ** -0.5
        weights = corr.masked_fill(~valid, float("-inf")).softmax(dim=-1)
        context = (weights[..., None] * self.value(both)).sum(dim=1)
        return self.fuse(torch.cat([top_feat, context], dim=-1))


class MILHead(nn.Module):
    """Pool the instance map into a bag: per modality the top instance and its correlations; concatenated."""

    def __init__(self, dim: int, bag_dim: int, num_classes: int, drop_rate: float = 0.0):
        super().__init__()
        self.dim, self.hidden_size = dim, bag_dim
        self.fusions = nn.ModuleList(TopInstanceFusion(dim, bag_dim) for _ in range(2))
        self.bag = nn.Linear(2 * bag_dim, bag_dim)
        self.drop = nn.Dropout(drop_rate)
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.hidden_size, num_classes) if num_classes else nn.Identity()

    def forward(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        inst = feats.transpose(1, 2)  # (B, N, 2 dim + 1)
        both, valid = inst[..., :-1], inst[..., -1] > 0.5
        bags = [
            fusion(both[..., i * self.dim : (i + 1) * self.dim], both, valid)
            for i, fusion in enumerate(self.fusions)
        ]
        x = self.drop(F.relu(self.bag(torch.cat(bags, dim=-1))))
        return x if pre_logits else self.fc(x)


class MultimodalMIL(ClassifierMixin, nn.Module):
    """Beats -> 1-D CNN on the signal and 2-D CNN on its GAF image -> MIL head on the top instances."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        fs: float = 100.0,
        widths: tuple[int, ...] = (32, 64, 128),
        bag_dim: int = 128,
        before_s: float = 0.25,
        after_s: float = 0.45,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.fs = fs
        self.before, self.after = round(before_s * fs), round(after_s * fs)
        self.min_samples = self.before + self.after
        self.signal_encoder = SignalEncoder(in_chans, tuple(widths))
        self.image_encoder = ImageEncoder(in_chans, tuple(widths))
        self.instances = InstanceFeatures()
        dim = widths[-1]
        self.num_features = 2 * dim + 1
        reduction = max(1, round(MIN_RR_S * fs))
        self.feature_info = [{"module": "instances", "num_chs": self.num_features, "reduction": reduction}]
        self.head = MILHead(dim, bag_dim, num_classes, drop_rate)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        centres, valid = beat_centres(x, self.fs, self.before + self.after)
        beats = gather_beats(x, centres, self.before, self.after)  # (B, N, leads, W)
        b, n = beats.shape[:2]
        flat = beats.flatten(0, 1)
        signal = self.signal_encoder(flat).view(b, n, -1)
        image = self.image_encoder(gramian_angular_field(flat)).view(b, n, -1)
        return self.instances(signal, image, valid)


@register_model
def mmil_ecg(num_classes, in_chans=12, **kwargs):
    """MAMIL (Han et al. 2023): beats as instances in signal and GAF-image form, top-instance correlation pooling."""
    return MultimodalMIL(num_classes, in_chans, **kwargs)
