"""Cascade token deletion and attention-head pruning over a stage of attention blocks (after SpAtten).

The notes list both as untested ideas for removing redundancy. Here they are training-time options
of the last stage: after each block, the tokens that have received the least attention so far
(summed over heads, queries and blocks) leave the stage and keep their features as they were; before
each block after the first, the heads with the smallest outputs so far are silenced in it and in
every later block (cascade). Both decisions are per sample. The stage still returns every token,
so the model's time axis is kept. Removed tokens save compute, but ranking them needs the attention
weights, so the stage's attention runs as explicit softmax instead of the fused kernel; silenced
heads are zeroed, not cut out. Both measure accuracy, not speed.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ecglab.models.layers.attention import KeyReduceAttention, expand_pooled


def keep_count(n: int, fraction: float) -> int:
    """How many of `n` survive a pruning step that keeps `fraction` of them (at least one)."""
    return max(1, math.ceil(fraction * n))


class CascadePruning(nn.Module):
    """Run `blocks` (transformer blocks whose `mixer` is KeyReduceAttention) with cascade pruning.

    token_keep: the fraction of the remaining tokens kept after each block but the last.
    head_keep: the fraction of the remaining heads kept before each block but the first.
    """

    def __init__(self, blocks: nn.Sequential, token_keep: float = 1.0, head_keep: float = 1.0):
        super().__init__()
        for name, value in (("token_keep", token_keep), ("head_keep", head_keep)):
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        mixers = [getattr(block, "mixer", None) for block in blocks]
        if not all(isinstance(m, KeyReduceAttention) for m in mixers):
            raise ValueError(
                "token_keep / head_keep prune a last stage of plain or key-reduced attention blocks "
                "(mhsa, sr); this schedule's last stage has other blocks"
            )
        self.blocks = blocks
        self.token_keep = token_keep
        self.head_keep = head_keep
        for mixer in mixers:
            mixer.keep_weights = token_keep < 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        active = torch.arange(t, device=x.device).expand(b, t)  # positions of the tokens still in
        received = x.new_zeros(b, t)  # the attention each active token has received so far
        head_score = x.new_zeros(b, self.blocks[0].mixer.num_heads)
        alive = torch.ones_like(head_score, dtype=torch.bool)
        for i, block in enumerate(self.blocks):
            mixer = block.mixer
            if self.head_keep < 1:
                if i:
                    score = head_score.masked_fill(~alive, -math.inf)
                    alive = _top(score, keep_count(int(alive[0].sum()), self.head_keep))
                mixer.head_mask = alive
            index = active[..., None].expand(-1, -1, c)
            x = x.scatter(1, index, block(x.gather(1, index)))
            if self.head_keep < 1:
                head_score = head_score + mixer.head_output
            if self.token_keep < 1 and i < len(self.blocks) - 1:
                weights = expand_pooled(mixer.last_weights, mixer.ratio, active.shape[1])
                received = received + (weights * alive[:, :, None, None]).sum(dim=(1, 2))
                order = (
                    received.topk(keep_count(active.shape[1], self.token_keep), dim=1)
                    .indices.sort(dim=1)
                    .values
                )
                active, received = active.gather(1, order), received.gather(1, order)
        for block in self.blocks:
            block.mixer.head_mask = None
        return x


def _top(score: torch.Tensor, k: int) -> torch.Tensor:
    """(B, n) scores -> a (B, n) mask of each row's k highest."""
    mask = torch.zeros_like(score, dtype=torch.bool)
    return mask.scatter(1, score.topk(k, dim=1).indices, True)
