"""CPC: negatives come from the batch, every part learns, and a short batch is refused clearly."""

import math

import pytest
import torch
import torch.nn as nn

from ecglab.pretrain.cpc import CPC

pytestmark = pytest.mark.usefixtures("one_thread")


class Frames(nn.Module):
    """A stand-in encoder: the input itself, one feature step per sample."""

    num_features = 3

    def forward_features(self, x):
        return x


def test_uninformative_predictions_score_the_log_of_the_batch_size():
    model = CPC(Frames(), context_dim=4, steps=2)
    for predictor in model.predictors:
        nn.init.zeros_(predictor.weight)
        nn.init.zeros_(predictor.bias)
    # Every score is 0, so each of the B records in the batch is an equally likely candidate.
    loss = model(torch.randn(5, 3, 20))
    assert loss.item() == pytest.approx(math.log(5), rel=1e-6)


def test_zoo_encoder_learns_and_every_weight_gets_a_gradient():
    torch.manual_seed(0)
    model = CPC("resnet1d_wang", in_chans=2, context_dim=16, steps=3, widths=(16, 16, 16))
    t = torch.linspace(0, 8 * math.pi, 128)
    x = torch.stack([torch.stack([torch.sin(f * t), torch.cos(f * t)]) for f in (1.0, 1.5, 2.0, 3.0)])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(10):
        loss = model(x)
        optimizer.zero_grad()
        loss.backward()
        if first is None:
            first = loss.item()
            # The encoder's head is not part of CPC: it is replaced when the encoder is transferred.
            no_grad = [n for n, p in model.named_parameters() if p.grad is None and ".head." not in n]
            assert not no_grad, f"parameters without a gradient: {no_grad}"
        optimizer.step()
    assert loss.item() < first - 0.2


def test_too_few_feature_steps_are_refused_naming_the_fix():
    model = CPC(Frames(), context_dim=4, steps=12)
    with pytest.raises(ValueError, match="gives 10 feature steps for 10 samples.*fewer steps"):
        model(torch.randn(2, 3, 10))
