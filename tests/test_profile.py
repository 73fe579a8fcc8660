"""`count_macs` against MACs worked out by hand."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ecglab.models.profile import (
    count_macs,
    count_macs_by_module,
    is_product_op,
    memory_bandwidth_gbs,
    training_roofline,
    training_time_split,
)


def test_conv1d_macs_are_outputs_times_kernel_fan_in():
    conv = nn.Conv1d(12, 64, kernel_size=7, stride=2, padding=3)
    out = count_macs(conv, (1, 12, 1000))
    expected = 500 * 64 * 12 * 7  # output elements x (in_chans / groups) x kernel; bias not counted
    assert out == {"macs": expected, "macs_layers": expected, "params": 64 * 12 * 7 + 64}


def test_grouped_conv_and_batch():
    conv = nn.Conv1d(64, 32, kernel_size=3, padding=1, groups=8, bias=False)
    assert count_macs(conv, (2, 64, 100))["macs"] == 2 * 100 * 32 * (64 // 8) * 3


class _SeqLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 16)

    def forward(self, x):
        return self.fc(x.transpose(1, 2))


def test_linear_on_a_sequence_counts_every_token():
    assert count_macs(_SeqLinear(), (2, 32, 50))["macs"] == 2 * 50 * 32 * 16


class _Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = torch.bmm(q, k.transpose(1, 2))
        return (
            scores.softmax(-1) @ v + F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        )


def test_attention_products_count_in_macs_not_in_macs_layers():
    out = count_macs(_Attention(), (1, 20, 16))
    layers = 20 * 16 * 48
    attention = 2 * 20 * 20 * 16  # explicit bmm pair
    sdpa = 2 * 20 * 20 * 16
    assert out["macs_layers"] == layers
    assert out["macs"] == layers + attention + sdpa


def test_multihead_attention_is_counted_in_eval_mode():
    mha = nn.MultiheadAttention(64, 4, batch_first=True).eval()

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    out = count_macs(Wrap(), (1, 50, 64))
    assert out["macs_layers"] == 4 * 50 * 64 * 64
    assert out["macs"] == 4 * 50 * 64 * 64 + 2 * 50 * 50 * 64


class _Conv2dView(nn.Module):
    """A Conv1d weight run as a channels-last Conv2d: the copy still counts as the layer's."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 5)

    def forward(self, x):
        w = self.conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, w)


def test_weight_used_through_a_copy_still_counts_as_a_layer():
    out = count_macs(_Conv2dView(), (1, 3, 100))
    assert out["macs_layers"] == out["macs"] == 96 * 4 * 3 * 5


def test_by_module_sums_to_total():
    model = nn.Sequential(nn.Conv1d(12, 8, 3), nn.ReLU(), nn.Conv1d(8, 4, 3, groups=4))
    table = count_macs_by_module(model, (1, 12, 100))
    assert table["0"]["macs"] == 98 * 8 * 12 * 3
    assert table["2"]["macs_layers"] == 96 * 4 * 2 * 3
    assert table["1"] == {"macs": 0, "macs_layers": 0, "params": 0}
    total = count_macs(model, (1, 12, 100))
    assert sum(row["macs"] for row in table.values()) == total["macs"]
    assert sum(row["params"] for row in table.values()) == total["params"]


def test_training_mode_is_restored():
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2)).train()
    count_macs(model, (1, 1, 50))
    assert model.training


class _LSTM(nn.Module):
    def __init__(self, bidirectional):
        super().__init__()
        self.lstm = nn.LSTM(12, 16, num_layers=2, batch_first=True, bidirectional=bidirectional)

    def forward(self, x):
        return self.lstm(x)[0]


def test_lstm_counts_both_gate_matrices_per_step():
    for bidirectional in (False, True):
        d = 2 if bidirectional else 1
        per_step = d * (4 * 16 * 12 + 4 * 16 * 16) + d * (4 * 16 * 16 * d + 4 * 16 * 16)
        out = count_macs(_LSTM(bidirectional), (3, 50, 12))
        assert out["macs"] == out["macs_layers"] == 3 * 50 * per_step


def _conv_net(groups: int) -> nn.Module:
    """A per-channel scale first, so the convolution under test needs its input gradient too."""
    return nn.Sequential(
        nn.Conv1d(64, 64, 1, groups=64, bias=False),
        nn.Conv1d(64, 64, 3, padding=1, groups=groups, bias=False),
        nn.Flatten(),
        nn.LazyLinear(2),
    )


def test_training_roofline_counts_a_step_and_bounds_the_share():
    """Dense convolutions are compute-bound; depthwise ones (few FLOPs per byte) cannot reach the peak."""
    batch = 8
    dense, depthwise = _conv_net(1), _conv_net(64)
    dense(torch.randn(1, 64, 200)), depthwise(torch.randn(1, 64, 200))  # materialise the lazy layers
    peak, bandwidth = 100.0, 10.0  # GFLOP/s, GB/s
    rows = {}
    for name, model in {"dense": dense, "depthwise": depthwise}.items():
        rows[name] = training_roofline(model, batch, (64, 200), peak, bandwidth)
        nominal = 6 * count_macs(model, (1, 64, 200))["macs"] * batch
        # the step's counted FLOPs: the nominal 6 x MACs, with groups honoured in the backward
        assert 0.9 * nominal <= rows[name]["flops"] <= 1.2 * nominal, name
        assert 0 < rows[name]["attainable_share"] <= 1 and rows[name]["bytes"] > 0
    assert "convolution_backward" in rows["dense"]["by_op"]
    assert rows["depthwise"]["attainable_share"] < 0.2 < rows["dense"]["attainable_share"]


def test_memory_bandwidth_is_measured():
    assert memory_bandwidth_gbs(megabytes=8, repeats=2) > 0


def test_training_roofline_counts_the_lstm_backward():
    class Lstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Conv1d(4, 4, 1, groups=4, bias=False)  # so the LSTM needs its input gradient
            self.lstm = nn.LSTM(4, 8, batch_first=True)

        def forward(self, x):
            return self.lstm(self.scale(x).transpose(1, 2))[0][:, -1]

    model, batch = Lstm(), 4
    row = training_roofline(model, batch, (4, 50), 100.0, 10.0)
    nominal = 6 * count_macs(model, (1, 4, 50))["macs"] * batch
    assert 0.9 * nominal <= row["flops"] <= 1.2 * nominal


def test_product_ops_are_the_matrix_products():
    for name in ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::addmm", "mm", "aten::bmm"):
        assert is_product_op(name), name
    assert is_product_op("aten::_scaled_dot_product_flash_attention_for_cpu")
    for name in (
        "aten::native_batch_norm",
        "aten::copy_",
        "aten::threshold_backward",
        "aten::add_",
        "aten::sum",
    ):
        assert not is_product_op(name), name


@pytest.mark.usefixtures("no_denormals")
def test_training_time_split_divides_a_step():
    """A dense convolution net spends most of its step in convolutions; the split is a share of the step."""
    model = _conv_net(1)
    model(torch.randn(1, 64, 200))  # materialise the lazy layer
    split = training_time_split(model, 8, (64, 200), peak_gflops=100.0, steps=2)
    # a share of the step, not a timing bound: how much of it the convolutions take depends on the
    # machine's threads and load (0.19 on one thread here, 0.48 on two), so tests don't assert it
    assert 0 < split["product_time_share"] <= 1
    assert split["product_kernel_share"] > 0 and split["step_seconds"] > 0
    assert all(not is_product_op(name) and 0 <= share < 1 for name, share in split["top_other_ops"])
    # the roofline's count of the same kernels' FLOPs can stand in for the split's own
    roofline = training_roofline(model, 8, (64, 200), 100.0, 10.0)
    assert 0.5 * roofline["flops"] < roofline["product_flops"] <= roofline["flops"]
    reused = training_time_split(model, 8, (64, 200), 100.0, steps=2, product_flops=roofline["product_flops"])
    assert reused["product_kernel_share"] > 0
    assert (
        training_time_split(model, 8, (64, 200), 100.0, steps=1, product_flops=0)["product_kernel_share"] == 0
    )
