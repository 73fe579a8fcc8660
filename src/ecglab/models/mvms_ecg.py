"""MVMS-ECG: leads grouped into views, one multi-scale CNN per view, views fused by a learned harmoniser.

Paper: Yang et al., "A Multi-View Multi-Scale Neural Network for Multi-Label ECG Classification",
IEEE Transactions on Emerging Topics in Computational Intelligence (2023); sizes from the authors'
code (github.com/ysxGitHub/MVMS-net, which the notes quote for the harmoniser). The leads are grouped
by the region of the heart they view: aVR; I and aVL (high lateral); V1-V2 (septal); V3-V4
(anterior); V5-V6 (lateral); II, III and aVF (inferior). Each view has its own CNN: a 25-tap
convolution to 64 channels (unpadded), then two Res2Net blocks (scale 4, 15-tap, group width 52,
widths 128 and 128, each halving time) with 1-D coordinate attention and Mish; its 128-wide features
are weighted by that view's harmoniser, a 128 -> 1 linear layer and a sigmoid, and the weighted
views are summed before one 128 -> classes classifier. The multi-view network is the teacher of a
single-view student by distillation; the student belongs to the transfer issue, and each view's
branch is exposed for it (`view_branch`).

Our choices: the views are the authors' for ecglab's lead order (I, II, III, aVR, aVL, aVF, V1-V6,
which every reader produces); `views=` takes any partition, and with `in_chans` other than 12 the
lead names are unknown, so the model falls back to one view holding every lead. The authors' code
strides every group's convolution of a Res2Net block, which (as in Res2Net's own strided blocks)
drops the hierarchical sums between groups; we halve time with a 3-wide average pool at the block's
input instead, so every block keeps the hierarchy, the multi-scale mechanism the paper names. The
weights are computed from each view's time-averaged features, as in the code, and applied to its
whole (B, 128, T) map, so the contract's map keeps its time axis; averaged, it is the code's fused
vector. The toolkit's coordinate attention (`CoordAttention1d`, reduction 16) stands in for the
code's (BN and h-swish there, LayerNorm and GELU here).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import AvgPool1d, BatchNorm1d, ClassifierHead, ClassifierMixin, ConvNormAct
from ecglab.models.layers.inception_next import ChannelsFirst, CoordAttention1d

# aVR | I, aVL | V1, V2 | V3, V4 | V5, V6 | II, III, aVF
STANDARD_VIEWS = ((3,), (0, 4), (6, 7), (8, 9), (10, 11), (1, 2, 5))


class Res2Block1d(nn.Module):
    """Res2Net block in 1-D with coordinate attention: a 1-tap convolution splits the channels into
    `scale` groups; each of the first `scale - 1` is convolved together with the previous group's
    output (growing receptive fields in one block), the last passes as it is; 1-tap convolution,
    coordinate attention, shortcut. `stride` 2 average-pools the input first."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 15, stride: int = 2, scale: int = 4,
                 width: int = 52):  # fmt: skip
        super().__init__()
        self.scale = scale
        self.pool = AvgPool1d(3, stride, 1) if stride > 1 else nn.Identity()
        self.reduce = ConvNormAct(in_chans, width * scale, 1, act=nn.Mish)
        self.convs = nn.ModuleList(
            ConvNormAct(width, width, kernel_size, act=nn.Mish) for _ in range(scale - 1)
        )
        self.expand = ConvNormAct(width * scale, out_chans, 1, act=None)
        self.attention = ChannelsFirst(CoordAttention1d(out_chans, reduction=16))
        self.shortcut = (
            nn.Identity() if in_chans == out_chans else ConvNormAct(in_chans, out_chans, 1, act=None)
        )
        self.act = nn.Mish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        *groups, last = self.reduce(x).chunk(self.scale, dim=1)
        outs, y = [], None
        for conv, group in zip(self.convs, groups, strict=True):
            y = conv(group if y is None else group + y)
            outs.append(y)
        y = self.attention(self.expand(torch.cat([*outs, last], dim=1)))
        return self.act(y + self.shortcut(x))


class ViewBranch(nn.Sequential):
    """One view's CNN: (B, leads of the view, L) -> (B, widths[-1], about (L - 24) / 4)."""

    def __init__(self, leads: int, stem_width: int = 64, widths=(128, 128), stem_kernel: int = 25):
        layers = [nn.Conv1d(leads, stem_width, stem_kernel, bias=False), BatchNorm1d(stem_width), nn.Mish()]
        chans = stem_width
        for width in widths:
            layers.append(Res2Block1d(chans, width))
            chans = width
        super().__init__(*layers)
        self.num_features = chans
        self.reduction = 2 ** len(widths)


class Harmoniser(nn.Module):
    """Weigh each view by sigmoid(linear(its time-averaged features)), one `dim` -> 1 layer per view,
    and sum the views' weighted (B, C, T) maps."""

    def __init__(self, dim: int, views: int):
        super().__init__()
        self.scores = nn.ModuleList(nn.Linear(dim, 1) for _ in range(views))

    def view_weights(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """(B, views) weights, each in (0, 1)."""
        return torch.cat(
            [fc(m.mean(dim=-1)) for fc, m in zip(self.scores, maps, strict=True)], dim=1
        ).sigmoid()

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        weights = self.view_weights(maps)
        return (torch.stack(maps, dim=1) * weights[:, :, None, None]).sum(dim=1)


class MVMSECG(ClassifierMixin, nn.Module):
    """A CNN per view of the leads, their feature maps fused by the harmoniser, one classifier."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        views: tuple[tuple[int, ...], ...] | None = None,
        widths=(128, 128),
        drop_rate: float = 0.0,
    ):
        super().__init__()
        if views is None:
            views = STANDARD_VIEWS if in_chans == 12 else (tuple(range(in_chans)),)
        if sorted(i for view in views for i in view) != list(range(in_chans)):
            raise ValueError(
                f"views {views} must partition the {in_chans} leads (each lead in exactly one view)"
            )
        self.view_leads = tuple(tuple(view) for view in views)
        for i, view in enumerate(self.view_leads):
            self.register_buffer(f"leads_{i}", torch.tensor(view), persistent=False)
        self.views = nn.ModuleList(ViewBranch(len(view), widths=widths) for view in self.view_leads)
        self.min_samples = self.views[0][0].kernel_size[0]  # the unpadded stem
        self.harmoniser = Harmoniser(widths[-1], len(self.view_leads))
        self.num_features = widths[-1]
        reduction = self.views[0].reduction
        self.feature_info = [
            {"module": f"views.{i}", "num_chs": widths[-1], "reduction": reduction} for i in range(len(views))
        ]
        self.feature_info.append({"module": "harmoniser", "num_chs": widths[-1], "reduction": reduction})
        self.head = ClassifierHead(widths[-1], num_classes, drop_rate)
        self.num_classes = num_classes

    def view_branch(self, i: int) -> ViewBranch:
        """View `i`'s CNN, which takes that view's leads (`view_leads[i]`): the single-view student's body."""
        return self.views[i]

    def view_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each view's (B, C, T) feature map."""
        return [branch(x[:, getattr(self, f"leads_{i}")]) for i, branch in enumerate(self.views)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.harmoniser(self.view_maps(x))


@register_model
def mvms_ecg(num_classes, in_chans=12, **kwargs):
    """MVMS-ECG: six anatomical views, a Res2Net + coordinate attention CNN each, sigmoid harmonisers."""
    return MVMSECG(num_classes, in_chans, **kwargs)
