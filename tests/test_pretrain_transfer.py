"""Linear evaluation leaves the encoder's weights and statistics untouched while the head learns."""

import pytest
import torch
import torch.nn as nn

from ecglab.models import create_model
from ecglab.pretrain.transfer import freeze_encoder, trainable

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
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"head.fc.weight", "head.fc.bias"}
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
