"""The student beside its frozen teacher: one module whose training forward adds the distillation loss.

In training mode `Distiller(x)` returns `{"logits": the student's, "aux_loss": the weighted
distillation terms}`, so `train`'s loop adds the task loss as it does for any model with an
auxiliary loss; in eval mode it returns the student's logits. `x` holds the dataset's leads: the
student sees its own (one lead), the teacher the leads it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ecglab.distill.losses import multilabel_kd, paired_info_nce, softmax_kd
from ecglab.train.config import DistillConfig

# The papers' values: MVMS-ECG's code (alpha 0.5, T 2), MVKT-ECG's code (alpha 1, beta 0.8, T 1, tau 0.07)
TEMPERATURES = {"mvms": 2.0, "mvkt": 1.0}
KD_WEIGHT = 1.0  # mvms: (1 - alpha) BCE + alpha KD with alpha 0.5 is half of BCE + 1 x KD
CONTRAST_WEIGHT = 0.8


class Distiller(nn.Module):
    """Student, and for MVKT the two projection heads; the teacher stays outside the module tree.

    Held outside, the teacher is in no optimiser, no resume state and no `train()` call: it stays
    in eval mode with its weights fixed, and its forward runs without gradients.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        student_leads: Sequence[int],
        teacher_leads: Sequence[int],
        settings: DistillConfig,
    ):
        super().__init__()
        self.student = student
        self.__dict__["teacher"] = teacher.eval().requires_grad_(False)  # unregistered on purpose
        self.register_buffer("student_leads", torch.tensor(list(student_leads)), persistent=False)
        self.register_buffer("teacher_leads", torch.tensor(list(teacher_leads)), persistent=False)
        self.method = settings.method
        self.temperature = settings.temperature or TEMPERATURES[settings.method]
        self.kd_weight = KD_WEIGHT if settings.kd_weight is None else settings.kd_weight
        if self.method == "mvkt":
            self.contrast_weight = (
                CONTRAST_WEIGHT if settings.contrast_weight is None else settings.contrast_weight
            )
            self.contrast_temperature = settings.contrast_temperature
            self.project_student = nn.Linear(student.num_features, settings.embed_dim)
            self.project_teacher = nn.Linear(teacher.num_features, settings.embed_dim)

    def forward(self, x: torch.Tensor):
        x_student = x[:, self.student_leads]
        if not self.training:
            return self.student(x_student)
        features = self.student.forward_features(x_student)
        logits = self.student.forward_head(features)
        with torch.no_grad():
            teacher_features = self.teacher.forward_features(x[:, self.teacher_leads])
            teacher_logits = self.teacher.forward_head(teacher_features)
        loss = self.distillation_loss(logits, teacher_logits, features, teacher_features)
        return {"logits": logits, "aux_loss": loss}

    def distillation_loss(self, logits, teacher_logits, features, teacher_features) -> torch.Tensor:
        """The weighted KD term, plus MVKT's contrast of the time-averaged, projected features."""
        kd = softmax_kd if self.method == "mvms" else multilabel_kd
        loss = self.kd_weight * kd(logits.float(), teacher_logits.float(), self.temperature)
        if self.method == "mvkt":
            a = self.project_student(features.mean(dim=-1))
            b = self.project_teacher(teacher_features.mean(dim=-1))
            loss = loss + self.contrast_weight * paired_info_nce(
                a.float(), b.float(), self.contrast_temperature
            )
        return loss

    def extra_parameters(self) -> list[nn.Parameter]:
        """The parameters that are not the student's (MVKT's projection heads): the optimiser's too."""
        own = {id(p) for p in self.student.parameters()}
        return [p for p in self.parameters() if id(p) not in own]
