"""Convolution building blocks shared by the 1-D model families."""

from __future__ import annotations

import torch.nn as nn


def conv1d(in_chans: int, out_chans: int, kernel_size: int, stride: int = 1, groups: int = 1, bias=False):
    """Conv1d padded by (k - 1) // 2, so odd kernels keep the length at stride 1."""
    return nn.Conv1d(
        in_chans, out_chans, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=bias
    )


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
        self.bn = nn.BatchNorm1d(out_chans)
        if zero_init:
            nn.init.zeros_(self.bn.weight)
        if act is not None:
            self.act = act(inplace=True) if act in (nn.ReLU, nn.ReLU6) else act()
