"""Convolution building blocks shared by the 1-D model families.

The 1-D layers here compute on channels-last memory: a (B, C, L) tensor whose channels are the
fastest axis, which is a (1, L) image in PyTorch's channels-last format. oneDNN's channels-last
2-D kernels are 1.2-2.1x faster on CPU than its 1-D ones at the shapes of these networks, and
whole CNNs train 1.15-1.8x faster (`benchmarks/conv_layout.py`, figures in docs/models.md). BatchNorm,
activations, sums and pooling keep the layout, so a network of these layers converts its input
once and makes no further copies. Parameters and state dicts are those of the torch.nn 1-D layers.

An activation after one of these norms must not work in place: the norm returns a view, and an
in-place op on a view makes autograd copy the gradient into the other layout in backward.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def channels_last_2d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, L) -> (B, C, 1, L) in channels-last memory: a view when x is channels-last already."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


class Conv1d(nn.Conv1d):
    """nn.Conv1d computed as a (1, k) Conv2d on channels-last memory; output (B, C, L), channels-last."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super()._conv_forward(x, weight, bias)
        y = F.conv2d(
            channels_last_2d(x),
            weight.unsqueeze(2),
            bias,
            (1, self.stride[0]),
            (0, self.padding[0]),
            (1, self.dilation[0]),
            self.groups,
        )
        return y.squeeze(2)


class BatchNorm1d(nn.BatchNorm1d):
    """nn.BatchNorm1d that normalises a channels-last (B, C, L) tensor in place of its layout, without a copy."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        pass  # forward checks the caller's input; the parent then sees its 4-D view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 3):
            raise ValueError(f"expected a 2-D or 3-D input, got {x.dim()}-D")
        if x.dim() == 3:
            return super().forward(channels_last_2d(x)).squeeze(2)
        return super().forward(x)


class MaxPool1d(nn.MaxPool1d):
    """nn.MaxPool1d on channels-last memory: 2x faster than the 1-D kernel with its indices."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(
            channels_last_2d(x),
            (1, self.kernel_size),
            (1, self.stride),
            (0, self.padding),
            (1, self.dilation),
            self.ceil_mode,
        ).squeeze(2)


class AvgPool1d(nn.AvgPool1d):
    """nn.AvgPool1d on channels-last memory."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(
            channels_last_2d(x),
            (1, self.kernel_size[0]),
            (1, self.stride[0]),
            (0, self.padding[0]),
            self.ceil_mode,
            self.count_include_pad,
        ).squeeze(2)


def conv1d(in_chans: int, out_chans: int, kernel_size: int, stride: int = 1, groups: int = 1, bias=False):
    """Conv1d padded by (k - 1) // 2, so odd kernels keep the length at stride 1."""
    return Conv1d(in_chans, out_chans, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=bias)


class ConvNormAct(nn.Sequential):
    """Conv1d, BatchNorm1d and an optional activation; the norm's gamma may start at zero.

    A zero gamma on the last norm of a residual branch makes the block start as the identity.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = nn.ReLU,
        zero_init: bool = False,
    ):
        super().__init__()
        self.conv = conv1d(in_chans, out_chans, kernel_size, stride, groups)
        self.bn = BatchNorm1d(out_chans)
        if zero_init:
            nn.init.zeros_(self.bn.weight)
        if act is not None:
            self.act = act()  # not in place (see the module docstring)
