"""Classifier heads: pool the time axis of a (B, C, T) feature map, then classify."""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models.layers.attention import attend


class ClassifierHead(nn.Module):
    """Global average over time (or the first position: a CLS token), dropout, linear;
    `num_classes=0` leaves the pooled features."""

    def __init__(self, num_features: int, num_classes: int, drop_rate: float = 0.0, pool: str = "avg"):
        super().__init__()
        if pool not in ("avg", "first"):
            raise ValueError(f"pool: {pool!r} is not one of avg, first")
        self.num_features = self.hidden_size = num_features
        self.pool = pool
        self.drop = nn.Dropout(drop_rate)
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, x, pre_logits: bool = False):
        x = self.drop(x.mean(dim=-1) if self.pool == "avg" else x[..., 0])
        return x if pre_logits else self.fc(x)


class ClassTokenHead(nn.Module):
    """A learned class token attends to every time step, then a linear classifies it (CaiT's class attention).

    The notes' alternative to global average pooling ("global average pooling => CLS token"). The
    token joins after the backbone, so the backbone and its time axis stay as they are. With
    `capture` on, `attn_map` keeps the token's last weights, (B, heads, 1, T).
    """

    def __init__(self, num_features: int, num_classes: int, num_heads: int = 8, drop_rate: float = 0.0):
        super().__init__()
        self.num_features = self.hidden_size = num_features
        self.num_heads = num_heads
        self.cls_token = nn.Parameter(torch.zeros(1, 1, num_features))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.q = nn.Linear(num_features, num_features)
        self.kv = nn.Linear(num_features, 2 * num_features)
        self.proj = nn.Linear(num_features, num_features)
        self.drop = nn.Dropout(drop_rate)
        self.capture = False
        self.attn_map: torch.Tensor | None = None
        self.reset(num_classes)

    reset = ClassifierHead.reset

    def forward(self, x, pre_logits: bool = False):
        def heads(z):
            return z.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

        cls = self.cls_token.expand(x.shape[0], -1, -1)
        k, v = self.kv(x.transpose(1, 2)).chunk(2, dim=-1)
        out, weights = attend(heads(self.q(cls)), heads(k), heads(v), None, self.capture)
        if weights is not None:
            self.attn_map = weights.detach()
        x = self.drop((cls + self.proj(out.transpose(1, 2).flatten(2)))[:, 0])
        return x if pre_logits else self.fc(x)


def concat_pool(x: torch.Tensor, last_step: bool = False) -> torch.Tensor:
    """Average and maximum over time side by side, optionally with the ends of a bidirectional RNN.

    `last_step` adds the last step of the forward half of the channels and the first step of the
    backward half: the states that have seen the whole sequence.
    """
    pooled = [x.mean(dim=-1), x.amax(dim=-1)]
    if last_step:
        half = x.shape[1] // 2
        pooled.append(torch.cat([x[:, :half, -1], x[:, half:, 0]], dim=1))
    return torch.cat(pooled, dim=1)


class ConcatPoolHead(nn.Module):
    """The PTB-XL benchmark head: concat pooling, then BN-dropout-linear twice (Strodthoff et al. 2021).

    Pooled (2C or 3C) -> BN, dropout p/2, linear to `hidden`, ReLU -> BN, dropout p, linear to classes.
    `pre_logits` returns the `hidden`-wide vector before the last BN-dropout-linear.
    """

    def __init__(
        self, num_features: int, num_classes: int, hidden: int = 128, drop_rate: float = 0.5, last_step=False
    ):
        super().__init__()
        self.num_features, self.hidden_size, self.last_step = num_features, hidden, last_step
        pooled = num_features * (3 if last_step else 2)
        self.pre_logits = nn.Sequential(
            nn.BatchNorm1d(pooled),
            nn.Dropout(drop_rate / 2),
            nn.Linear(pooled, hidden),
            nn.ReLU(inplace=True),
        )
        self.drop_rate = drop_rate
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        if num_classes:
            self.fc = nn.Sequential(nn.BatchNorm1d(self.hidden_size), nn.Dropout(self.drop_rate))
            self.fc.append(nn.Linear(self.hidden_size, num_classes))
        else:
            self.fc = nn.Identity()

    def forward(self, x, pre_logits: bool = False):
        x = self.pre_logits(concat_pool(x, self.last_step))
        return x if pre_logits else self.fc(x)


class LinearProbe(nn.Module):
    """Linear evaluation's classifier: the pooled features standardised by a BatchNorm without
    affine parameters, then the linear layer (the linear probe of MAE, He et al. 2022).

    Frozen features have whatever offset and scale their encoder gives them (resnet1d_wang's pooled
    features: mean 0.46, spread 0.13 between windows); under Adam at one learning rate a plain linear
    layer then mostly learns that offset. Standardised, every encoder is probed alike. At inference
    the BatchNorm is a fixed affine map, so the classifier stays linear.
    """

    def __init__(self, fc: nn.Linear):
        super().__init__()
        self.norm = nn.BatchNorm1d(fc.in_features, affine=False)
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x))


def add_linear_probe(model: nn.Module) -> nn.Module:
    """Put a LinearProbe in place of `model.head.fc` when that is a linear layer (ClassifierHead,
    ClassTokenHead); a head whose classifier already normalises (ConcatPoolHead) is left as it is."""
    head = getattr(model, "head", None)
    if isinstance(getattr(head, "fc", None), nn.Linear):
        head.fc = LinearProbe(head.fc)
    return model


class ClassifierMixin:
    """The contract's head methods for a model with `forward_features` and a `head` from this file."""

    @property
    def head_hidden_size(self) -> int:
        """Width of `forward_head(x, pre_logits=True)`: `num_features` unless the head has a hidden layer."""
        return self.head.hidden_size

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
