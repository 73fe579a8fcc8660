"""Self-attention variants over (B, T, C) tensors, each able to keep its last attention map.

Attention runs through `F.scaled_dot_product_attention`. With `capture` on, a module computes the
weights explicitly instead and keeps them in `attn_map` as a dense (B, heads, T, T) map over token
positions, whatever its keys are (pooled keys spread their weight over the tokens they pool,
window and routed keys are scattered back to where they came from), so the maps of all variants
can be drawn the same way. Maps are detached: they are for looking at, not for training.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models.layers.inception_next import TimeConv, depthwise

POS_KINDS = ("none", "learned", "rpb", "dwconv", "dwconv_v")


def attend(q, k, v, bias=None, capture=False):
    """softmax(q k^T / sqrt(d) + bias) v over the last two axes; also the weights when `capture`."""
    if not capture:
        if q.ndim > 4:  # the fused kernels take (N, heads, L, E)
            lead = q.shape[:-3]
            if bias is not None:
                bias = bias.expand(*lead, *bias.shape[-3:]).flatten(0, len(lead) - 1)
            out = F.scaled_dot_product_attention(q.flatten(0, -4), k.flatten(0, -4), v.flatten(0, -4), bias)
            return out.unflatten(0, lead), None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias), None
    logits = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    weights = (logits if bias is None else logits + bias).softmax(dim=-1)
    return weights @ v, weights


def pad_time(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad a (B, T, C) tensor at the end of time to a whole number of `multiple`."""
    pad = -x.shape[1] % multiple
    return F.pad(x, (0, 0, 0, pad)) if pad else x


def scatter_map(weights, q_pos, k_pos, size: int) -> torch.Tensor:
    """Dense (B, heads, size, size) map from weights (B, heads, R, K) of queries at `q_pos` (R,) on keys
    at `k_pos` ((R, K) or (B, R, K)); padded positions (>= size) are dropped."""
    b, h, r, k = weights.shape
    n = int(max(q_pos.max(), k_pos.max())) + 1
    k_pos = k_pos.unsqueeze(1) if k_pos.ndim == 3 else k_pos
    rows = weights.new_zeros(b, h, r, n).scatter_add_(-1, k_pos.expand(b, h, r, k), weights)
    dense = weights.new_zeros(b, h, n, n)
    dense[:, :, q_pos] = rows
    return dense[:, :, :size, :size]


def expand_pooled(weights: torch.Tensor, ratio: int, size: int) -> torch.Tensor:
    """Spread the weight on each key pooled from `ratio` tokens evenly over the real tokens it pooled."""
    if ratio == 1:
        return weights
    pos = torch.arange(size, device=weights.device)
    pooled = (size - pos // ratio * ratio).clamp(max=ratio)  # real tokens in each position's pool
    return weights.repeat_interleave(ratio, dim=-1)[..., :size] / pooled.to(weights.dtype)


def mask_bias(allowed: torch.Tensor, dtype) -> torch.Tensor:
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, float("-inf"))


class RelPosBias(nn.Module):
    """A learned bias per head and relative distance, added to the attention logits (Swin style).

    Distances beyond `max_distance` tokens share the outermost entry, so any length works. Pooled keys
    sit at the centre of the tokens they pool.
    """

    def __init__(self, num_heads: int, max_distance: int = 128):
        super().__init__()
        self.max_distance = max_distance
        self.table = nn.Parameter(torch.zeros(num_heads, 2 * max_distance + 1))
        nn.init.trunc_normal_(self.table, std=0.02)

    def forward(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """(..., Q) and (..., K) positions -> (..., heads, Q, K) bias."""
        m = self.max_distance
        rel = (q_pos[..., :, None] - k_pos[..., None, :]).round().long().clamp(-m, m) + m
        return self.table[:, rel].movedim(0, -3)


class ValuePos(nn.Module):
    """V + DWConv(V): local positional information added to the values inside attention (BiFormer's LCE)."""

    def __init__(self, dim: int, kernel_size: int = 3):
        super().__init__()
        self.conv = depthwise(dim, kernel_size)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v + self.conv(v)


class _Attention(nn.Module):
    """Shared plumbing: heads, the optional positional parts, the output projection and capture.

    `value_conv` > 0 adds V + DWConv(V) with that kernel whatever `pos` is: the local enhancement
    that BiFormer (its LCE) and the Shunted Transformer build into their attention.
    """

    def __init__(
        self, dim: int, num_heads: int, head_dim: int | None, pos: str, out_proj: bool, value_conv: int = 0
    ):
        super().__init__()
        if pos not in POS_KINDS:
            raise ValueError(f"unknown pos {pos!r}; choose one of {', '.join(POS_KINDS)}")
        self.num_heads = num_heads
        self.head_dim = head_dim or dim // num_heads
        self.inner = self.num_heads * self.head_dim
        kernel = value_conv or (3 if pos == "dwconv_v" else 0)
        self.v_pos = ValuePos(self.inner, kernel) if kernel else None
        self.rpb = RelPosBias(num_heads) if pos == "rpb" else None
        self.proj = nn.Linear(self.inner, dim) if out_proj else nn.Identity()
        self.capture = False
        self.attn_map: torch.Tensor | None = None
        self.head_mask: torch.Tensor | None = None  # (B, heads) of 0/1, set by layers.pruning
        self.head_output: torch.Tensor | None = None  # (B, heads) mean |output| while a mask is set
        self.keep_weights = False  # keep the last weights over the keys, for layers.pruning
        self.last_weights: torch.Tensor | None = None

    def _values(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.v_pos is None else self.v_pos(v)

    def _keep(self, dense: torch.Tensor) -> None:
        self.attn_map = dense.detach()


class KeyReduceAttention(_Attention):
    """Multi-head attention on keys and values shrunk `ratio`-fold in time; ratio 1 is plain MHSA.

    reduce: "conv", a strided full convolution + LayerNorm (PVT's spatial reduction); "dwconv", a strided
    depthwise one + LayerNorm (nearly free in weights); "avg", a mean over the pooled tokens (HiLo's Lo-Fi).
    A length not divisible by `ratio` is padded; the last key then pools fewer real tokens.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int | None = None,
        ratio: int = 1,
        reduce: str = "conv",
        pos: str = "none",
        out_proj: bool = True,
        value_conv: int = 0,
    ):
        super().__init__(dim, num_heads, head_dim, pos, out_proj, value_conv)
        self.ratio = ratio
        self.reduce_kind = reduce
        if ratio == 1:
            self.qkv = nn.Linear(dim, 3 * self.inner)
            return
        if reduce not in ("conv", "dwconv", "avg"):
            raise ValueError(f"unknown key reduction {reduce!r}; choose conv, dwconv or avg")
        self.q = nn.Linear(dim, self.inner)
        if reduce != "avg":
            self.reduce = TimeConv(
                dim, dim, ratio, stride=ratio, padding=0, groups=dim if reduce == "dwconv" else 1
            )
            self.norm = nn.LayerNorm(dim)
        self.kv = nn.Linear(dim, 2 * self.inner)

    def _shrink(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        x = pad_time(x, self.ratio)
        if self.reduce_kind != "avg":
            return self.norm(self.reduce(x))
        counts = (t - torch.arange(0, x.shape[1], self.ratio, device=x.device)).clamp(max=self.ratio)
        return x.view(b, -1, self.ratio, c).sum(dim=2) / counts[:, None].to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        if self.ratio == 1:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        else:
            q = self.q(x)
            k, v = self.kv(self._shrink(x)).chunk(2, dim=-1)
        v = self._values(v)
        bias = None
        if self.rpb is not None:
            r = self.ratio
            k_pos = torch.arange(k.shape[1], device=x.device) * r + (r - 1) / 2
            bias = self.rpb(torch.arange(t, device=x.device, dtype=k_pos.dtype), k_pos).to(x.dtype)

        def heads(z):
            return z.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

        out, weights = attend(heads(q), heads(k), heads(v), bias, self.capture or self.keep_weights)
        if self.head_mask is not None:
            self.head_output = out.detach().abs().mean(dim=(2, 3))  # each head's size, (B, heads)
            out = out * self.head_mask[:, :, None, None].to(out.dtype)
        if self.keep_weights:
            self.last_weights = weights.detach()
        if self.capture:
            self._keep(expand_pooled(weights, self.ratio, t))
        return self.proj(out.transpose(1, 2).flatten(2))


class WindowAttention(_Attention):
    """Attention inside non-overlapping windows of `window` tokens; `shift` moves them by half a window (Swin).

    The sequence is padded to whole windows and padded keys are masked. A shift rolls the sequence, and
    tokens the roll brings together from its two ends are masked from each other, so nothing leaks
    across the wrap. A sequence of one window is never shifted.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int | None = None,
        window: int = 25,
        shift: bool = False,
        pos: str = "none",
        out_proj: bool = True,
    ):
        super().__init__(dim, num_heads, head_dim, pos, out_proj)
        self.window = window
        self.shift = shift
        self.qkv = nn.Linear(dim, 3 * self.inner)

    def positions(self, t: int, device=None) -> tuple[torch.Tensor, int]:
        """Original position of every slot of the (padded, rolled) windows, (n_windows, window), and the shift."""
        n = math.ceil(t / self.window)
        shift = self.window // 2 if self.shift and n > 1 else 0
        padded = n * self.window
        pos = (torch.arange(padded, device=device) + shift) % padded
        return pos.view(n, self.window), shift

    def _bias(self, pos: torch.Tensor, t: int, shift: int, dtype) -> torch.Tensor | None:
        bias = None
        if shift or pos.numel() > t:
            rel = pos[:, :, None] - pos[:, None, :]
            bias = mask_bias((rel.abs() < self.window) & (pos[:, None, :] < t), dtype)[:, None]
        if self.rpb is not None:
            rpb = self.rpb(pos.to(dtype), pos.to(dtype)).to(dtype)
            bias = rpb if bias is None else bias + rpb
        return bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        pos, shift = self.positions(t, x.device)
        n, w = pos.shape
        qkv = self.qkv(x)
        if self.v_pos is not None:
            q, k, v = qkv.chunk(3, dim=-1)
            qkv = torch.cat([q, k, self._values(v)], dim=-1)
        qkv = pad_time(qkv, w)
        if shift:
            qkv = qkv.roll(-shift, dims=1)
        q, k, v = qkv.view(b, n, w, 3, self.num_heads, self.head_dim).permute(3, 0, 1, 4, 2, 5)
        out, weights = attend(q, k, v, self._bias(pos, t, shift, x.dtype), self.capture)
        out = out.transpose(2, 3).reshape(b, n * w, self.inner)
        if shift:
            out = out.roll(shift, dims=1)
        if weights is not None:
            rows = weights.transpose(1, 2).reshape(b, self.num_heads, n * w, w)
            self._keep(scatter_map(rows, pos.flatten(), pos[:, None, :].expand(n, w, w).reshape(n * w, w), t))
        return self.proj(out[:, :t])


class BiLevelRoutingAttention(_Attention):
    """Bi-level routing attention (BiFormer): each region attends to the tokens of its `topk` nearest regions.

    The sequence is cut into `regions` equal regions (padded); region queries and keys are the means of
    their tokens, and their affinities pick, per region, the top-k regions whose tokens become its keys.
    Padded keys are masked and empty regions are never preferred. With capture on, `routing` keeps the
    last choice, (B, regions, topk).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        regions: int = 25,
        topk: int = 10,
        pos: str = "none",
        out_proj: bool = True,
        value_conv: int = 0,
    ):
        super().__init__(dim, num_heads, None, pos, out_proj, value_conv)
        self.regions = regions
        self.topk = topk
        self.qkv = nn.Linear(dim, 3 * self.inner)
        self.routing: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        r, s = self.regions, math.ceil(t / self.regions)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (pad_time(z, r * s).view(b, r, s, self.inner) for z in (q, k, self._values(v)))
        pos = torch.arange(r * s, device=x.device).view(r, s)
        counts = (pos < t).sum(dim=1).clamp(min=1).to(x.dtype)[:, None]
        affinity = (q.sum(dim=2) / counts) @ (k.sum(dim=2) / counts).transpose(1, 2)
        affinity = affinity.masked_fill((pos[:, 0] >= t)[None, None], float("-inf"))
        idx = affinity.topk(min(self.topk, r), dim=-1).indices  # (B, R, k)
        if self.capture:
            self.routing = idx.detach()
        rows = torch.arange(b, device=x.device)[:, None, None]
        k_pos = pos[idx].flatten(2)  # (B, R, k * S)

        def heads(z):
            return z.unflatten(-1, (self.num_heads, self.head_dim)).transpose(2, 3)

        kg, vg = (heads(z[rows, idx].flatten(2, 3)) for z in (k, v))  # (B, R, heads, k * S, hd)
        bias = mask_bias(k_pos < t, x.dtype)[:, :, None, None] if r * s > t else None
        if self.rpb is not None:
            rpb = self.rpb(pos.to(x.dtype)[None], k_pos.to(x.dtype)).to(x.dtype)
            bias = rpb if bias is None else bias + rpb
        out, weights = attend(heads(q), kg, vg, bias, self.capture)
        if weights is not None:
            rows_w = weights.transpose(1, 2).reshape(b, self.num_heads, r * s, -1)
            self._keep(scatter_map(rows_w, pos.flatten(), k_pos.repeat_interleave(s, dim=1), t))
        return self.proj(out.transpose(2, 3).reshape(b, r * s, self.inner)[:, :t])


class PatchAttention(_Attention):
    """MobileViT's global attention in 1-D: the sequence is cut into patches of `patch` tokens, and the
    tokens at the same offset in every patch attend to each other (a strided, sequence-wide window).

    The sequence is padded to whole patches and padded keys are masked.
    """

    def __init__(self, dim: int, num_heads: int, patch: int = 2, pos: str = "none", out_proj: bool = True):
        super().__init__(dim, num_heads, None, pos, out_proj)
        self.patch = patch
        self.qkv = nn.Linear(dim, 3 * self.inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        p, n = self.patch, math.ceil(t / self.patch)
        pos = torch.arange(n * p, device=x.device).view(n, p).T  # (offset, patch): original positions
        q, k, v = self.qkv(x).chunk(3, dim=-1)

        def heads(z):  # (B, offset, heads, patch, hd)
            return pad_time(z, p).view(b, n, p, self.num_heads, self.head_dim).permute(0, 2, 3, 1, 4)

        bias = mask_bias(pos < t, x.dtype)[None, :, None, None, :] if n * p > t else None
        if self.rpb is not None:
            rpb = self.rpb(pos.to(x.dtype), pos.to(x.dtype)).to(x.dtype)[None]
            bias = rpb if bias is None else bias + rpb
        out, weights = attend(heads(q), heads(k), heads(self._values(v)), bias, self.capture)
        if weights is not None:
            rows = weights.transpose(1, 2).reshape(b, self.num_heads, p * n, n)
            self._keep(scatter_map(rows, pos.flatten(), pos[:, None, :].expand(p, n, n).reshape(p * n, n), t))
        return self.proj(out.permute(0, 3, 1, 2, 4).reshape(b, n * p, self.inner)[:, :t])


class _MultiBranch(nn.Module):
    """Head groups that attend differently, concatenated and projected; the map stacks theirs along heads."""

    def __init__(self, dim: int, branches: list[nn.Module]):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.proj = nn.Linear(dim, dim)
        self.capture = False
        self.attn_map: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.proj(torch.cat([branch(x) for branch in self.branches], dim=-1))
        if self.capture:
            self.attn_map = torch.cat([branch.attn_map for branch in self.branches], dim=1)
        return out


class ShuntedAttention(_MultiBranch):
    """Shunted self-attention: half the heads on every token, a quarter on keys pooled 2x, a quarter 4x.

    The head split is the notes'. `paper=True` (default) follows the Shunted Transformer where the notes
    are silent: keys and values of a head group come from a strided full convolution (kernel = stride =
    its rate) + LayerNorm, and each group's values get the local enhancement V + DWConv3(V); +6 d^2
    weights per block. `paper=False` is ecglab's first form: a strided depthwise convolution, no
    enhancement, the weights of MHSA.
    """

    def __init__(self, dim: int, num_heads: int = 8, pos: str = "none", paper: bool = True):
        hd = dim // num_heads
        groups = ((num_heads // 2, 1), (num_heads // 4, 2), (num_heads - num_heads // 2 - num_heads // 4, 4))
        reduce, enhance = ("conv", 3) if paper else ("dwconv", 0)
        super().__init__(
            dim,
            [
                KeyReduceAttention(dim, h, hd, r, reduce, pos, out_proj=False, value_conv=enhance)
                for h, r in groups
            ],
        )


class HiLoAttention(_MultiBranch):
    """HiLo attention: half the heads inside windows (fine, local), half on mean-pooled keys (coarse, global).

    The window and the pooling share one size, 5 tokens by default (the notes ask to tune it).
    """

    def __init__(self, dim: int, num_heads: int = 8, window: int = 5, pos: str = "none"):
        hd = dim // num_heads
        hi = num_heads // 2
        super().__init__(
            dim,
            [
                WindowAttention(dim, hi, hd, window, pos=pos, out_proj=False),
                KeyReduceAttention(dim, num_heads - hi, hd, window, "avg", pos, out_proj=False),
            ],
        )
