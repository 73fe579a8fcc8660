"""The pretraining objectives' losses: InfoNCE (CPC), CLOCS's patient-aware contrast, ST-MEM's masked MSE.

Each is a pure function of tensors, so each can be checked against a case computed by hand.
"""

from __future__ import annotations

from itertools import combinations

import torch
import torch.nn.functional as F

CLOCS_TEMPERATURE = 0.1  # Kiyasseh et al. 2021


def info_nce(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """InfoNCE with the batch as negatives (Oord et al. 2018), averaged over steps and records.

    predictions, targets: (steps, B, C). At every step, record b's prediction scores every
    record's target by a dot product; the loss is the cross-entropy of picking its own target.
    """
    if predictions.shape != targets.shape or predictions.ndim != 3:
        raise ValueError(
            f"predictions and targets must both be (steps, B, C); got {tuple(predictions.shape)} "
            f"and {tuple(targets.shape)}"
        )
    scores = torch.einsum("sbc,sdc->sbd", predictions, targets)  # (steps, B, B)
    steps, batch, _ = scores.shape
    labels = torch.arange(batch, device=scores.device).expand(steps, batch)
    return F.cross_entropy(scores.flatten(0, 1), labels.flatten())


def own_patients(patient_ids: torch.Tensor) -> torch.Tensor:
    """Patient ids where a negative id (no patient known) becomes a patient of its own."""
    ids = patient_ids.clone().long()
    unknown = ids < 0
    if unknown.any():
        first_free = int(ids.max().clamp(min=0)) + 1
        ids[unknown] = first_free + torch.arange(int(unknown.sum()), device=ids.device)
    return ids


def clocs_loss(
    embeddings: torch.Tensor, patient_ids: torch.Tensor, temperature: float = CLOCS_TEMPERATURE
) -> torch.Tensor:
    """CLOCS's contrastive loss over every pair of views (Kiyasseh et al. 2021).

    embeddings: (B, views, D); patient_ids: (B,), negative where unknown. For a pair of views
    (a, b), similarities are cosines divided by `temperature`; every entry (i, j) whose records
    share a patient is a positive, the other records of the batch are negatives. The loss of a
    positive is the cross-entropy of picking it from its row (a -> b) plus from its column
    (b -> a), halved; positives are averaged per pair, pairs averaged.
    """
    if embeddings.ndim != 3 or embeddings.shape[1] < 2:
        raise ValueError(f"embeddings must be (B, views >= 2, D); got {tuple(embeddings.shape)}")
    ids = own_patients(patient_ids)
    positive = ids[:, None] == ids[None, :]
    z = F.normalize(embeddings, dim=-1)
    pair_losses = []
    for a, b in combinations(range(z.shape[1]), 2):
        sim = z[:, a] @ z[:, b].T / temperature
        a_to_b = sim.log_softmax(dim=1)[positive]
        b_to_a = sim.log_softmax(dim=0)[positive]
        pair_losses.append(-(a_to_b.mean() + b_to_a.mean()) / 2)
    return torch.stack(pair_losses).mean()


def masked_patch_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked patches only (ST-MEM, Na et al. 2024).

    pred, target: (..., patches, patch_size); mask: (..., patches), 1 where a patch was hidden
    from the encoder. Each patch's error is averaged over its samples, then over masked patches.
    """
    if pred.shape != target.shape or mask.shape != pred.shape[:-1]:
        raise ValueError(
            f"pred {tuple(pred.shape)}, target {tuple(target.shape)} and mask {tuple(mask.shape)} "
            "must be (..., patches, patch_size) and (..., patches)"
        )
    per_patch = (pred - target).square().mean(dim=-1)
    mask = mask.to(per_patch.dtype)
    if not mask.any():
        raise ValueError("no masked patch: the mask ratio leaves nothing to reconstruct")
    return (per_patch * mask).sum() / mask.sum()
