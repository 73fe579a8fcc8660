"""MVMS-ECG: leads grouped into views, one multi-scale CNN per view, views fused by a learned harmoniser.

Paper: "A Multi-View Multi-Scale Neural Network for Multi-Label ECG Classification", IEEE
Transactions on Emerging Topics in Computational Intelligence (2023). From the paper and the
notes: the leads are grouped by the angle from which they view the heart; each view has its own
CNN of Res2Net-style multi-scale blocks with 1-D coordinate attention and ends in a 128-wide
feature; a 128 -> 1 linear layer (the harmoniser) re-weights the views' features before the fused
classifier. The multi-view network is the teacher of a single-view student by distillation; the
student belongs to the transfer issue, and each view's branch is exposed for it (`view_branch`).

Views (ecglab's lead order, I, II, III, aVR, aVL, aVF, V1-V6, which every reader produces): the
frontal plane's bipolar limb leads (I, II, III) and augmented limb leads (aVR, aVL, aVF), and the
horizontal plane's chest leads (V1-V6). The grouping by lead connection within the frontal plane
is our reading; `views=` takes any partition. With `in_chans` other than 12 the lead names are
unknown, so the model falls back to one view holding every lead.

Our choices, where the paper's sizes were not available to us: per view a 15-tap stride-2 stem to
64 channels and a 2x max-pool, then three Res2Net blocks (scale 4, 3-tap, widths 128-256-128,
ending in the paper's 128-wide view feature) with a 2x max-pool between them; the harmoniser is one linear layer shared by the views, softmax over
the views, so the fused map is a convex combination of the views' maps (time axis kept).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ecglab.models._registry import register_model
from ecglab.models.layers import ClassifierHead, ClassifierMixin, ConvNormAct, MaxPool1d
from ecglab.models.layers.inception_next import ChannelsFirst, CoordAttention1d

STANDARD_VIEWS = ((0, 1, 2), (3, 4, 5), (6, 7, 8, 9, 10, 11))  # I II III | aVR aVL aVF | V1-V6


class Res2Block1d(nn.Module):
    """Res2Net block in 1-D with coordinate attention: a 1-tap convolution splits the channels into
    `scale` groups; the first passes as it is, each later group is convolved together with the
    previous group's output (receptive fields of 1, 3, 5, 7 taps in one block); 1-tap convolution,
    coordinate attention, shortcut."""

    def __init__(self, in_chans: int, out_chans: int, scale: int = 4, kernel_size: int = 3):
        super().__init__()
        self.scale, width = scale, out_chans // scale
        self.reduce = ConvNormAct(in_chans, width * scale, 1)
        self.convs = nn.ModuleList(ConvNormAct(width, width, kernel_size) for _ in range(scale - 1))
        self.expand = ConvNormAct(width * scale, out_chans, 1, act=None)
        self.attention = ChannelsFirst(CoordAttention1d(out_chans))
        self.shortcut = (
            nn.Identity() if in_chans == out_chans else ConvNormAct(in_chans, out_chans, 1, act=None)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, *groups = self.reduce(x).chunk(self.scale, dim=1)
        outs, y = [first], None
        for conv, group in zip(self.convs, groups, strict=True):
            y = conv(group if y is None else group + y)
            outs.append(y)
        y = self.attention(self.expand(torch.cat(outs, dim=1)))
        return self.act(y + self.shortcut(x))


class ViewBranch(nn.Sequential):
    """One view's CNN: (B, leads of the view, L) -> (B, widths[-1], L / 16)."""

    def __init__(self, leads: int, stem_width: int = 64, widths=(128, 256, 128), scale: int = 4):
        layers = [ConvNormAct(leads, stem_width, 15, 2), MaxPool1d(3, 2, 1)]
        chans = stem_width
        for i, width in enumerate(widths):
            if i:
                layers.append(MaxPool1d(2, 2, ceil_mode=True))
            layers.append(Res2Block1d(chans, width, scale))
            chans = width
        super().__init__(*layers)
        self.num_features = chans
        self.reduction = 4 * 2 ** (len(widths) - 1)


class Harmoniser(nn.Module):
    """Score each view from its time-averaged features (one shared `dim` -> 1 linear layer), softmax
    the scores over the views and sum the views' (B, C, T) maps with those weights."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def view_weights(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """(B, views) weights, each row summing to one."""
        return torch.cat([self.score(m.mean(dim=-1)) for m in maps], dim=1).softmax(dim=1)

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        weights = self.view_weights(maps)
        return (torch.stack(maps, dim=1) * weights[:, :, None, None]).sum(dim=1)


class MVMSECG(ClassifierMixin, nn.Module):
    """A CNN per view of the leads, their feature maps fused by the harmoniser, one classifier."""

    min_samples = 1

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        views: tuple[tuple[int, ...], ...] | None = None,
        widths=(128, 256, 128),
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
        self.harmoniser = Harmoniser(widths[-1])
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
    """MVMS-ECG: views I-II-III / aVR-aVL-aVF / V1-V6, Res2Net + coordinate attention CNN each, harmonised."""
    return MVMSECG(num_classes, in_chans, **kwargs)
