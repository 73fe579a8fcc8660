"""Linear evaluation leaves the encoder's weights and statistics untouched while the head learns."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from ecglab.models import create_model
from ecglab.models.layers.heads import LinearProbe
from ecglab.pretrain.transfer import freeze_encoder, start_at_label_prior, trainable

pytestmark = pytest.mark.usefixtures("one_thread")


def test_linear_evaluation_leaves_the_encoder_untouched():
    torch.manual_seed(0)
    model = create_model("resnet1d18", 3, in_chans=2, widths=(8, 8, 8, 8), drop_rate=0.5)
    freeze_encoder(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}  # weights and BatchNorm statistics
    optimizer = torch.optim.SGD(trainable(model), lr=0.5, momentum=0.9, weight_decay=0.1)
    x, y = torch.randn(8, 2, 64), torch.randint(0, 3, (8,))
    model.train()
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(k.startswith("head.") for k in changed), changed
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        "head.fc.fc.weight",
        "head.fc.fc.bias",
    }
    assert isinstance(model.head.fc, LinearProbe)  # the linear layer behind a standardising BatchNorm
    assert model.head.training and model.head.drop.training and not model.stem.training


def test_train_mode_alone_would_move_the_encoder_statistics():
    """The control: without freeze_encoder, a forward pass in train mode updates BatchNorm's statistics."""
    model = create_model("resnet1d18", 3, in_chans=2, widths=(8, 8, 8, 8))
    for p in model.parameters():
        p.requires_grad_(False)
    stats = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    before = [m.running_mean.clone() for m in stats]
    model.train()(torch.randn(4, 2, 64))
    assert any(not torch.equal(b, m.running_mean) for b, m in zip(before, stats, strict=True))


def test_a_model_without_a_head_is_refused():
    with pytest.raises(TypeError, match="no `head` module"):
        freeze_encoder(nn.Linear(2, 2))


def test_the_probe_starts_at_the_label_prior():
    """Multi-label: each class's log-odds; one class per record: log-frequencies (an absent class at 1e-4)."""
    model = freeze_encoder(create_model("resnet1d18", 2, in_chans=2, widths=(8, 8, 8, 8)))
    y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]])
    assert start_at_label_prior(model, y, multilabel=True)
    assert np.allclose(model.head.fc.fc.bias.detach().numpy(), [0.0, np.log(0.25 / 0.75)])
    model = freeze_encoder(create_model("resnet1d18", 3, in_chans=2, widths=(8, 8, 8, 8)))
    onehot = np.eye(3)[[0, 1, 0, 0]]
    assert start_at_label_prior(model, onehot, multilabel=False)
    assert np.allclose(model.head.fc.fc.bias.detach().numpy(), np.log([0.75, 0.25, 1e-4]))
    assert not start_at_label_prior(create_model("resnet1d18", 2, in_chans=2), y, multilabel=True)  # no probe
