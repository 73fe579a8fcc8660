"""The channels-last 1-D layers compute what their torch.nn parents compute, with the same state dict."""

import pytest
import torch
import torch.nn as nn

from ecglab.models.layers import AvgPool1d, BatchNorm1d, MaxPool1d
from ecglab.models.layers.conv import Conv1d


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2).contiguous().transpose(1, 2)


def _layer_pairs():
    torch.manual_seed(0)
    yield "conv", nn.Conv1d(6, 8, 5, stride=2, padding=2), Conv1d(6, 8, 5, stride=2, padding=2)
    yield (
        "depthwise",
        nn.Conv1d(6, 6, 3, padding=2, dilation=2, groups=6),
        Conv1d(6, 6, 3, padding=2, dilation=2, groups=6),
    )
    yield "norm", nn.BatchNorm1d(6), BatchNorm1d(6)
    yield "max", nn.MaxPool1d(3, 2, 1), MaxPool1d(3, 2, 1)
    yield "avg", nn.AvgPool1d(2, ceil_mode=True), AvgPool1d(2, ceil_mode=True)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("kind", ["conv", "depthwise", "norm", "max", "avg"])
def test_layer_matches_torch_forward_and_backward(kind, layout):
    reference, layer = next((r, m) for k, r, m in _layer_pairs() if k == kind)
    layer.load_state_dict(reference.state_dict())  # same keys and shapes as the torch.nn layer
    x = torch.randn(4, 6, 31)
    x = _channels_last(x) if layout == "channels_last" else x
    x_ref, x_new = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, y_new = reference(x_ref), layer(x_new)
    assert y_new.shape == y_ref.shape
    assert y_new.stride(1) == 1  # channels are the fastest axis of the output
    torch.testing.assert_close(y_new, y_ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(y_ref)
    y_ref.backward(grad), y_new.backward(grad)
    torch.testing.assert_close(x_new.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    for p_ref, p_new in zip(reference.parameters(), layer.parameters(), strict=True):
        torch.testing.assert_close(p_new.grad, p_ref.grad, rtol=1e-4, atol=1e-4)
    for b_ref, b_new in zip(reference.buffers(), layer.buffers(), strict=True):  # running statistics
        torch.testing.assert_close(b_new, b_ref)


def test_batch_norm_still_takes_pooled_features():
    norm = BatchNorm1d(5).eval()
    x = torch.randn(3, 5)
    torch.testing.assert_close(norm(x), nn.BatchNorm1d(5).eval()(x))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        norm(torch.randn(5))
