"""The distillation losses against cases computed by hand."""

import math

import pytest
import torch

from ecglab.distill.losses import multilabel_kd, paired_info_nce, softmax_kd


def test_softmax_kd_is_t_squared_times_the_kl_of_the_softened_outputs():
    """T = 2: teacher logits (2 ln 3, 0) soften to (3/4, 1/4), the student's (0, 0) to (1/2, 1/2)."""
    teacher = torch.tensor([[2 * math.log(3), 0.0]])
    student = torch.zeros(1, 2)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert softmax_kd(student, teacher, 2.0).item() == pytest.approx(4 * kl, rel=1e-6)
    assert softmax_kd(teacher, teacher, 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_multilabel_kd_sums_binary_kls_over_classes_and_averages_over_records():
    """T = 2: class 0 has teacher sigmoid(0) = 1/2 against the student's sigmoid(ln 3) = 3/4; class 1
    and the second record agree exactly."""
    teacher = torch.tensor([[0.0, 1.0], [0.5, -2.0]])
    student = torch.tensor([[2 * math.log(3), 1.0], [0.5, -2.0]])
    binary_kl = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    expected = 4 * (binary_kl + 0.0) / 2  # T^2, the classes summed, the two records averaged
    assert multilabel_kd(student, teacher, 2.0).item() == pytest.approx(expected, rel=1e-6)


def test_multilabel_kd_differs_from_softmax_kd_on_multilabel_outputs():
    """Two classes both likely: sigmoids see it, a softmax over the classes cannot."""
    teacher, student = torch.tensor([[4.0, 4.0]]), torch.tensor([[-4.0, -4.0]])
    assert softmax_kd(student, teacher, 1.0).item() == pytest.approx(0.0, abs=1e-7)
    assert multilabel_kd(student, teacher, 1.0).item() > 1.0


def test_paired_info_nce_with_known_similarities():
    """a = (e1, e2), b = (e1, (0.6, 0.8)): cosines a.b = [[1, 0.6], [0, 0.8]], temperature 1; the
    positive is the same record. a -> b picks the row's diagonal, b -> a the column's."""
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    a_to_b = (math.log(1 + math.exp(0.6 - 1)) + math.log(1 + math.exp(0 - 0.8))) / 2
    b_to_a = (math.log(1 + math.exp(0 - 1)) + math.log(1 + math.exp(0.6 - 0.8))) / 2
    expected = (a_to_b + b_to_a) / 2
    assert paired_info_nce(a, b, 1.0).item() == pytest.approx(expected, rel=1e-6)
    # cosines: the lengths of the features do not matter; the temperature divides the cosines
    assert paired_info_nce(3 * a, 0.5 * b, 1.0).item() == pytest.approx(expected, rel=1e-6)
    sharper = (math.log(1 + math.exp((0.6 - 1) / 0.5)) + math.log(1 + math.exp(-0.8 / 0.5))) / 2
    sharper_back = (math.log(1 + math.exp(-1 / 0.5)) + math.log(1 + math.exp((0.6 - 0.8) / 0.5))) / 2
    assert paired_info_nce(a, b, 0.5).item() == pytest.approx((sharper + sharper_back) / 2, rel=1e-6)


def test_the_losses_refuse_tensors_of_different_shapes():
    with pytest.raises(ValueError, match=r"two \(B, C\) tensors of one shape; got \(2, 3\) and \(2, 4\)"):
        multilabel_kd(torch.zeros(2, 3), torch.zeros(2, 4), 1.0)
