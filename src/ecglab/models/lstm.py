"""Recurrent baseline of the PTB-XL benchmark: a two-layer bidirectional LSTM."""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierMixin, ConcatPoolHead


class BiLSTM(nn.Module):
    """nn.LSTM over (B, C, T) returning its per-step outputs as (B, hidden * directions, T)."""

    def __init__(self, in_chans: int, hidden: int, num_layers: int, bidirectional: bool):
        super().__init__()
        self.lstm = nn.LSTM(in_chans, hidden, num_layers, batch_first=True, bidirectional=bidirectional)

    def forward(self, x):
        return self.lstm(x.transpose(1, 2))[0].transpose(1, 2)


class LSTM1d(ClassifierMixin, nn.Module):
    """LSTM over the samples; its per-step outputs (both directions) are the feature map."""

    min_samples = 1

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        hidden: int = 256,
        num_layers: int = 2,
        bidirectional: bool = True,
        drop_rate: float = 0.5,
    ):
        super().__init__()
        self.rnn = BiLSTM(in_chans, hidden, num_layers, bidirectional)
        self.num_features = hidden * (2 if bidirectional else 1)
        self.feature_info = [{"module": "rnn", "num_chs": self.num_features, "reduction": 1}]
        self.head = ConcatPoolHead(
            self.num_features, num_classes, drop_rate=drop_rate, last_step=bidirectional
        )
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)


@register_model
def lstm_bidir(num_classes, in_chans=12, **kwargs):
    """Two bidirectional LSTM layers of 256 units; head pools mean, max and the final states.

    The benchmark's pooling meant to add the last forward and first backward step; its code
    takes the last step of both directions. We take the intended ends.
    """
    return LSTM1d(num_classes, in_chans, **kwargs)
