"""Multi-module recurrent CNN with a Transformer encoder fusing its modules, and an autoencoder's loss.

Le M.D., Rathour V.S., Truong Q.S., Mai Q., Brijesh P., Le N. "Multi-module Recurrent Convolutional
Neural Network with Transformer Encoder for ECG Arrhythmia Classification", IEEE BHI 2021. Modules:
(i) a 1-D recurrent CNN on the time series (CNN, then LSTM), (ii) a 2-D recurrent CNN on the
spectrogram, (iii) age and sex, (iv) a Transformer encoder that fuses the modules' outputs. The
notes add an autoencoder: here the time module's CNN is the encoder of a convolutional autoencoder
whose decoder reconstructs the input, and the reconstruction error is the auxiliary training loss.

Not carried over: the metadata module, since an ecglab model sees the signal only. The fused
feature map is the time module's tokens beside the spectrogram module's, resampled to the same
steps. Sizes (ours, to sit with resnet1d18): CNN of 32, 64, 128 channels (8x downsampling),
Bi-LSTMs of 64 units per direction, spectrogram window 64 and hop 8 (one frame per token at 8x),
2-D CNN of 32 and 64 channels, a 2-layer encoder of width 128 with 4 heads, reconstruction (mean
squared error) weight 0.1.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin, ConvNormAct
from ecglab.models.lstm import BiLSTM
from ecglab.models.timefreq import Concat, Spectrogram


class ConvDecoder(nn.Module):
    """Transposed convolutions undoing the encoder's three stride-2 steps: (B, C, T) -> (B, leads, 8 T)."""

    def __init__(self, widths: tuple[int, ...], out_chans: int):
        super().__init__()
        chans = list(widths[::-1]) + [out_chans]
        layers = []
        for i, (c_in, c_out) in enumerate(pairwise(chans)):
            layers.append(nn.ConvTranspose1d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(chans) - 2:
                layers += [nn.BatchNorm1d(c_out), nn.ReLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)


class SpectrogramRCNN(nn.Module):
    """Per-lead spectrograms as channels of a 2-D CNN, averaged over frequency, then a Bi-LSTM: (B, 2h, frames)."""

    def __init__(self, in_chans: int, n_fft: int, hop: int, widths: tuple[int, int], hidden: int):
        super().__init__()
        self.spectrogram = Spectrogram(n_fft, hop)
        self.cnn = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
            nn.Conv2d(widths[0], widths[1], 3, stride=(2, 1), padding=1, bias=False),
            nn.BatchNorm2d(widths[1]),
            nn.ReLU(),
        )
        self.rnn = BiLSTM(widths[1], hidden, 1, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(self.cnn(self.spectrogram(x)).mean(dim=2))


class ModuleFusion(nn.Module):
    """Transformer encoder over both modules' tokens (each with a learned module embedding), then the
    spectrogram tokens resampled beside the time tokens: (B, C, T), (B, C, F) -> (B, 2C, T)."""

    def __init__(self, dim: int, depth: int, heads: int):
        super().__init__()
        self.module_embed = nn.Parameter(torch.zeros(2, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.concat = Concat()

    def forward(self, time: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        t = time.shape[-1]
        tokens = torch.cat(
            [time.transpose(1, 2) + self.module_embed[0], spec.transpose(1, 2) + self.module_embed[1]], 1
        )
        fused = self.encoder(tokens).transpose(1, 2)
        return self.concat(fused[..., :t], fused[..., t:])


class MultiModuleCRNN(ClassifierMixin, nn.Module):
    """Time-series RCNN (its CNN also an autoencoder's encoder) + spectrogram RCNN, fused by a Transformer."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        widths: tuple[int, ...] = (32, 64, 128),
        spec_widths: tuple[int, int] = (32, 64),
        hidden: int = 64,
        n_fft: int = 64,
        hop: int = 8,
        depth: int = 2,
        num_heads: int = 4,
        recon_weight: float = 0.1,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.recon_weight = recon_weight
        chans = (in_chans, *widths)
        self.encoder = nn.Sequential(
            *(ConvNormAct(a, b, 7 if i == 0 else 5, stride=2) for i, (a, b) in enumerate(pairwise(chans)))
        )
        self.decoder = ConvDecoder(tuple(widths), in_chans)
        self.time_rnn = BiLSTM(widths[-1], hidden, 1, True)
        self.spec = SpectrogramRCNN(in_chans, n_fft, hop, spec_widths, hidden)
        self.fuse = ModuleFusion(2 * hidden, depth, num_heads)
        self.min_samples = max(self.spec.spectrogram.n_fft // 2 + 1, 2 ** len(widths))
        self.num_features = 4 * hidden
        reduction = 2 ** len(widths)
        self.feature_info = [
            {"module": "encoder", "num_chs": widths[-1], "reduction": reduction},
            {"module": "fuse", "num_chs": self.num_features, "reduction": reduction},
        ]
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self.num_classes = num_classes

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(autoencoder code, fused feature map)."""
        code = self.encoder(x)
        return code, self.fuse(self.time_rnn(code), self.spec(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x)[1]

    def reconstruction_loss(self, code: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the decoder's reconstruction of x (cut or zero-padded to x's length)."""
        recon = self.decoder(code)[..., : x.shape[-1]]
        recon = F.pad(recon, (0, x.shape[-1] - recon.shape[-1]))
        return F.mse_loss(recon, x)

    def forward(self, x: torch.Tensor):
        code, feats = self._encode(x)
        logits = self.forward_head(feats)
        if not self.training:
            return logits
        return {"logits": logits, "aux_loss": self.recon_weight * self.reconstruction_loss(code, x)}


@register_model
def crnn_multimodule(num_classes, in_chans=12, **kwargs):
    """Le et al. 2021's multi-module RCNN fused by a Transformer encoder, with an autoencoder's reconstruction loss."""
    return MultiModuleCRNN(num_classes, in_chans, **kwargs)
