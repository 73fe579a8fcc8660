"""Distillation losses: softened-output KD (softmax or per-class sigmoid) and the paired InfoNCE.

Each is a pure function of tensors, checked in the tests against cases computed by hand.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ecglab.pretrain.losses import info_nce


def softmax_kd(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Hinton et al.'s KD: T^2 x KL(softmax(teacher / T) || softmax(student / T)), averaged over records.

    MVMS-ECG distils this way, softmax over the classes even for multi-label tasks. The T^2 keeps
    the gradients' scale independent of T.
    """
    _check_pair(student_logits, teacher_logits)
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1)
    return temperature**2 * kl.mean()


def multilabel_kd(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """MVKT-ECG's multi-label KD: each class a two-way distribution sigmoid(logit / T) vs its complement.

    T^2 x the binary KL(teacher || student) summed over classes, averaged over records.
    """
    _check_pair(student_logits, teacher_logits)
    s, t = student_logits / temperature, teacher_logits / temperature
    p_t = torch.sigmoid(t)
    kl = p_t * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p_t) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return temperature**2 * kl.sum(dim=1).mean()


def paired_info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between two views of the same records: a[i] and b[i] are a positive pair, every other
    record of the batch a negative; cosine similarity / temperature, both directions averaged.

    a, b: (B, D), projected features of the student and the teacher (MVKT-ECG's contrastive
    lead-information transfer with in-batch negatives).
    """
    _check_pair(a, b)
    a, b = F.normalize(a, dim=1)[None], F.normalize(b, dim=1)[None]
    return (info_nce(a / temperature, b) + info_nce(b / temperature, a)) / 2


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"expected two (B, C) tensors of one shape; got {tuple(a.shape)} and {tuple(b.shape)}"
        )
