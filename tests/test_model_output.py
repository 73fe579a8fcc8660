"""A model's auxiliary loss reaches the training loss through split_output."""

import pytest
import torch
from torch import nn

from ecglab.models._output import split_output
from ecglab.train.epoch import Stepper
from ecglab.train.loop import train_one_epoch


def test_split_output_forms():
    logits = torch.zeros(2, 3)
    assert split_output(logits) == (logits, None)
    got_logits, aux = split_output({"logits": logits, "aux_loss": torch.tensor(0.5)})
    assert got_logits is logits and aux.item() == 0.5
    assert split_output({"logits": logits})[1] is None
    with pytest.raises(TypeError, match="unknown keys"):
        split_output({"logits": logits, "recon": logits})
    with pytest.raises(ValueError, match="scalar"):
        split_output({"logits": logits, "aux_loss": torch.ones(2)})


class _WithAux(nn.Module):
    """Logits from a linear layer; the auxiliary loss pushes a separate parameter towards 3."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 2)
        self.extra = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        logits = self.head(x)
        return {"logits": logits, "aux_loss": (self.extra - 3) ** 2} if self.training else logits


def test_training_loop_adds_the_aux_loss():
    torch.manual_seed(0)
    model = _WithAux()
    loader = [(torch.randn(8, 4), torch.ones(8, 2)) for _ in range(40)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(model, loader, Stepper(optimizer, torch.device("cpu")), nn.BCEWithLogitsLoss())
    assert abs(model.extra.item() - 3) < 0.01  # only the aux loss moves it
    model.eval()
    assert isinstance(model(torch.randn(1, 4)), torch.Tensor)
