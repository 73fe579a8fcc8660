"""InceptionFormer: its block schedules, shapes, the notes' parameter and MAC counts, and attention masks."""

import math

import pytest
import torch

from ecglab.models import create_model, list_models
from ecglab.models.inceptionformer import cross_stack
from ecglab.models.layers.attention import (
    BiLevelRoutingAttention,
    KeyReduceAttention,
    ShuntedAttention,
    WindowAttention,
)
from ecglab.models.layers.mixers import ConvBlock, ResidualBlock, SemanticTokens
from ecglab.models.profile import count_macs, count_macs_by_module

FAMILY = list_models("inceptionformer*") + ["sandwichnet", "sandwichpro"]
SMALL = {"dims": (16, 32, 64, 128), "depths": (1, 1, 2, 2)}  # the same wiring, fast

# The notes' figures at 12 x 1000: (MACs of convolution and linear layers, parameters).
NOTES = {
    "inceptionformer": (2.14e9, 12.45e6),
    "inceptionformer_d2482": (1.61e9, 8.25e6),
    "inceptionformer_s3": (1.04e9, 3.64e6),
    "inceptionformer_tiny": (536.07e6, 3.13e6),
    "inceptionformer_sparse": (1.53e9, 17.19e6),
}
# Per stage of the base model; the notes count patch merging in neither stage.
NOTES_STAGES = {
    "stem": (36.74e6, 36.72e3),
    "stages.0.blocks": (35.07e6, 35.07e3),
    "stages.1.blocks": (135.68e6, 271.36e3),
    "stages.2.blocks": (793.09e6, 3.18e6),
    "stages.3.blocks": (1.05e9, 8.41e6),
}


def _kinds(model):
    return [
        [type(b.mixer if isinstance(b, ResidualBlock) else b).__name__ for b in s.blocks]
        for s in model.stages
    ]


def test_base_schedule_cross_stacks_stage_three():
    model = create_model("inceptionformer", 9)
    assert model.mixers == [["conv"] * 2, ["conv"] * 4, ["conv", "mhsa"] * 4, ["mhsa"] * 4]
    kinds = _kinds(model)
    assert kinds[0] == kinds[1][:2] == ["ConvBlock", "ConvBlock"]
    assert kinds[2] == ["ConvBlock", "KeyReduceAttention"] * 4
    assert kinds[3] == ["KeyReduceAttention"] * 4
    assert all(b.mixer.ratio == 1 for b in model.stages[3].blocks)  # plain MHSA


@pytest.mark.parametrize(
    "name, stage3, stage4",
    [
        ("inceptionformer_shunted", ["conv", "shunted"] * 4, ["shunted"] * 4),
        ("inceptionformer_swin", ["conv", "window", "conv", "swin"] * 2, ["window", "swin"] * 2),
        ("inceptionformer_convmod", ["convmod", "mhsa"] * 4, ["mhsa"] * 4),
        ("inceptionformer_parallel", ["parallel"] * 8, ["mhsa"] * 4),
        ("sandwichpro", ["conv", "localglobal"] * 4, ["localglobal"] * 4),
    ],
)
def test_variant_schedules(name, stage3, stage4):
    model = create_model(name, 9, **{k: v for k, v in SMALL.items() if k == "dims"})
    assert model.mixers[2:] == [stage3, stage4]


def test_swin_alternates_shift_and_convmod_starts_with_inception():
    model = create_model("inceptionformer_swin", 9, **SMALL)
    shifts = [b.mixer.shift for b in model.stages[3].blocks]
    assert shifts == [False, True]
    assert cross_stack((2, 4, 2, 2), local="convmod", first="conv")[:2] == [
        ["conv"] * 2,
        ["conv", "convmod"] * 2,
    ]
    model = create_model("inceptionformer_shunted", 9, **SMALL)
    assert isinstance(model.stages[3].blocks[0].mixer, ShuntedAttention)
    assert [b.ratio for b in model.stages[3].blocks[0].mixer.branches] == [1, 2, 4]
    assert [b.num_heads for b in model.stages[3].blocks[0].mixer.branches] == [4, 2, 2]


def test_mixers_argument_sets_the_stages():
    model = create_model(
        "inceptionformer", 4, dims=(16, 32, 64, 128), mixers=[["conv"], ["hilo", "biformer"]]
    )
    assert model.num_features == 32 and len(model.feature_info) == 2
    assert model(torch.randn(1, 12, 101)).shape == (1, 4)
    with pytest.raises(ValueError, match="unknown block kinds"):
        create_model("inceptionformer", 4, mixers=[["conv", "transformer"]])
    with pytest.raises(ValueError, match="unknown pos"):
        create_model("inceptionformer", 4, pos="sinusoid")


def test_stage_shapes_and_feature_info():
    model = create_model("inceptionformer", 9).eval()
    outs = []
    for info in model.feature_info:
        model.get_submodule(info["module"]).register_forward_hook(lambda m, i, o: outs.append(o.shape))
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 12, 1000))
    assert outs == [(1, 64, 1000), (1, 128, 500), (1, 256, 250), (1, 512, 125)]
    assert [f["reduction"] for f in model.feature_info] == [1, 2, 4, 8]
    assert feats.shape == (1, 512, 125) and model.num_features == 512


@pytest.fixture(scope="module")
def base_table():
    return count_macs_by_module(create_model("inceptionformer", 9), (1, 12, 1000), depth=3)


@pytest.mark.parametrize("name", sorted(set(NOTES) - {"inceptionformer"}))
def test_params_and_macs_match_the_notes(name):
    macs, params = NOTES[name]
    counted = count_macs(create_model(name, 9), (1, 12, 1000))
    assert counted["params"] == pytest.approx(params, rel=0.10)
    assert counted["macs_layers"] == pytest.approx(macs, rel=0.10)
    assert counted["macs"] >= counted["macs_layers"]  # plus the attention products


def test_base_and_stage_figures_match_the_notes(base_table):
    table = dict(base_table)
    total = {k: sum(row[k] for row in table.values()) for k in ("params", "macs", "macs_layers")}
    macs, params = NOTES["inceptionformer"]
    assert total["params"] == pytest.approx(params, rel=0.10)
    assert total["macs_layers"] == pytest.approx(macs, rel=0.10)
    assert total["macs"] > total["macs_layers"]
    table["stem"] = {
        k: sum(v[k] for n, v in table.items() if n.startswith("stem.")) for k in ("params", "macs_layers")
    }
    for name, (macs, params) in NOTES_STAGES.items():
        assert table[name]["params"] == pytest.approx(params, rel=0.10), name
        assert table[name]["macs_layers"] == pytest.approx(macs, rel=0.10), name


def test_window_attention_keeps_windows_apart():
    torch.manual_seed(0)
    attn = WindowAttention(16, 2, window=5).eval()
    x = torch.randn(1, 23, 16)  # 4 whole windows and one of 3 tokens plus 2 padded
    y = x.clone()
    y[:, 10:15] += 1.0  # the third window
    with torch.no_grad():
        changed = (attn(x) - attn(y)).abs().amax(dim=-1)[0] > 1e-6
    assert changed.tolist() == [False] * 10 + [True] * 5 + [False] * 8
    attn.capture = True
    with torch.no_grad():
        attn(x)
    assert attn.attn_map.shape == (1, 2, 23, 23)
    assert attn.attn_map[..., 20:, :20].sum() == 0  # the padded last window sees only itself
    torch.testing.assert_close(attn.attn_map.sum(-1), torch.ones(1, 2, 23))


def test_shifted_windows_do_not_leak_across_the_wrap():
    torch.manual_seed(0)
    attn = WindowAttention(16, 2, window=4, shift=True).eval()
    attn.capture = True
    x = torch.randn(1, 15, 16)  # padded to 16, rolled by 2: slots 14, 15(pad), 0, 1 share a window
    with torch.no_grad():
        out = attn(x)
    amap = attn.attn_map[0, 0]
    assert amap[0, 14] == 0 and amap[14, 0] == 0 and amap[1, 14] == 0
    assert amap[0, 1] > 0 and amap[3, 4] > 0  # windows now straddle the unshifted borders
    assert amap[2, 1] == 0  # ... and end where the shifted windows end
    y = x.clone()
    y[:, 14] += 1.0
    with torch.no_grad():
        assert torch.equal(attn(y)[:, :2], out[:, :2])
    torch.testing.assert_close(attn.attn_map.sum(-1), torch.ones(1, 2, 15))


def test_routing_restricts_keys_to_the_top_k_regions():
    torch.manual_seed(0)
    attn = BiLevelRoutingAttention(16, 2, regions=5, topk=2).eval()
    attn.capture = True
    t = 23  # regions of 5 tokens, the last with 2 padded
    with torch.no_grad():
        attn(torch.randn(2, t, 16))
    assert attn.routing.shape == (2, 5, 2)
    for b in range(2):
        for region in range(5):
            allowed = torch.zeros(t, dtype=torch.bool)
            for chosen in attn.routing[b, region].tolist():
                allowed[chosen * 5 : chosen * 5 + 5] = True
            rows = attn.attn_map[b, :, region * 5 : min(region * 5 + 5, t)]
            assert rows[..., ~allowed].abs().max() == 0
            assert rows[..., allowed].sum(-1).sub(1).abs().max() < 1e-5


def test_pooled_keys_spread_their_weight_over_the_pooled_tokens():
    torch.manual_seed(0)
    attn = KeyReduceAttention(16, 2, ratio=4, reduce="avg").eval()
    attn.capture = True
    with torch.no_grad():
        attn(torch.randn(1, 10, 16))  # keys pool 4, 4 and 2 tokens
    amap = attn.attn_map
    torch.testing.assert_close(amap.sum(-1), torch.ones(1, 2, 10))
    torch.testing.assert_close(amap[..., 0], amap[..., 3])
    torch.testing.assert_close(amap[..., 8], amap[..., 9])


@pytest.mark.parametrize("name", FAMILY)
def test_odd_lengths_one_lead_and_capture(name):
    torch.manual_seed(0)
    model = create_model(name, 3, in_chans=1, **SMALL).eval()
    with torch.no_grad():
        for length in (model.min_samples, 203):
            feats = model.forward_features(torch.randn(2, 1, length))
            assert feats.shape == (2, model.num_features, math.ceil(length / 8))
        x = torch.randn(2, 1, 203)
        plain = model(x)
        model.set_attention_capture(True)
        captured = model(x)
        maps = model.attention_maps()
    torch.testing.assert_close(captured, plain, atol=1e-5, rtol=1e-4)
    if isinstance(model.stages[-1].blocks, SemanticTokens):  # stage 4 attends among 6 pooled tokens
        assert maps["stages.3.blocks.blocks.0.mixer"].shape == (2, 8, 6, 6)
    else:
        last = f"stages.3.blocks.{SMALL['depths'][3] - 1}.mixer"
        assert [m.shape[-2:] for n, m in maps.items() if n.startswith(last)] == [(26, 26)]
    for amap in maps.values():
        torch.testing.assert_close(amap.sum(-1), torch.ones(amap.shape[:-1]), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="at least"):
        model(torch.randn(1, 1, model.min_samples - 1))


@pytest.mark.parametrize("pos", ["learned", "rpb", "dwconv", "dwconv_v"])
@pytest.mark.parametrize("attn", ["mhsa", "shunted", "swin", "biformer", "hilo", "sr"])
def test_position_variants(pos, attn):
    model = create_model("inceptionformer", 3, attn=attn, pos=pos, **SMALL).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 12, 301)).shape == (1, 3)


def test_position_variant_names():
    expected = {
        "inceptionformer_ape": "stages.2.pos_embed.embed",
        "inceptionformer_rpb": "stages.3.blocks.0.mixer.rpb.table",
        "inceptionformer_cpe": "stages.3.blocks.0.pos_conv.conv.weight",
        "inceptionformer_lepe": "stages.3.blocks.0.mixer.v_pos.conv.conv.weight",
    }
    for name, param in expected.items():
        assert param in dict(create_model(name, 3, **SMALL).named_parameters()), name


def test_sparse_tokens_pool_stage_four():
    model = create_model("inceptionformer_sparse", 3, **SMALL).eval()
    body = model.stages[3].blocks
    assert isinstance(body, SemanticTokens) and body.pool_size == 5
    assert all(isinstance(b, ResidualBlock) for b in body.blocks)
    assert isinstance(model.stages[0].blocks[0], ConvBlock)


def test_token_batchnorm_is_batchnorm_over_batch_and_time():
    from ecglab.models.layers.norm import TokenBatchNorm

    torch.manual_seed(0)
    x = torch.randn(4, 50, 8) * 3 + 1  # (B, T, C)
    ours, reference = TokenBatchNorm(8), torch.nn.BatchNorm1d(8)
    torch.testing.assert_close(ours(x), reference(x.transpose(1, 2)).transpose(1, 2))
    torch.testing.assert_close(ours.running_mean, reference.running_mean)


def test_norm_choice_batch_by_default_layer_on_request():
    from ecglab.models.layers.norm import TokenBatchNorm

    batch = create_model("inceptionformer_tiny", 5)
    layer = create_model("inceptionformer_tiny", 5, norm="layer")
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in batch.modules())
    assert not any(isinstance(m, TokenBatchNorm) for m in layer.modules())
    # the same learnable weights either way: parameter counts and the notes' table are unchanged
    assert sum(p.numel() for p in batch.parameters()) == sum(p.numel() for p in layer.parameters())
    with pytest.raises(ValueError, match="unknown norm 'group'"):
        create_model("inceptionformer_tiny", 5, norm="group")
