"""The mechanisms behind InceptionFormer's ablations: stacking, the class-token head, cascade pruning,
the ConvMod schedule, shunted and MobileViT attention, BiFormer's value conv, the sparse-token block."""

import math

import pytest
import torch

from ecglab.models import create_model
from ecglab.models.layers.attention import PatchAttention, ShuntedAttention
from ecglab.models.layers.mixers import ATTENTION_KINDS, LOCAL_KINDS, ResidualBlock, make_block
from ecglab.models.layers.pruning import CascadePruning
from ecglab.models.profile import count_macs_by_module

SMALL = {"dims": (16, 32, 64, 128), "depths": (1, 2, 4, 2)}


def _flat_kinds(model):
    return [kind for kinds in model.mixers for kind in kinds]


def test_serial_stacking_puts_every_local_block_before_every_global_one():
    serial = _flat_kinds(create_model("inceptionformer_serial", 3))
    local = [i for i, k in enumerate(serial) if k in LOCAL_KINDS]
    glob = [i for i, k in enumerate(serial) if k in ATTENTION_KINDS]
    assert max(local) < min(glob) and len(local) == 10 and len(glob) == 8
    cross = _flat_kinds(create_model("inceptionformer", 3))
    assert sorted(cross) == sorted(serial)  # the same blocks, only their order differs
    assert max(i for i, k in enumerate(cross) if k in LOCAL_KINDS) > min(
        i for i, k in enumerate(cross) if k in ATTENTION_KINDS
    )
    model = create_model("inceptionformer_serial", 3, **SMALL)
    mixers = [
        type(b.mixer).__name__ if isinstance(b, ResidualBlock) else type(b).__name__
        for b in model.stages[2].blocks
    ]
    assert mixers == ["ConvBlock"] * 2 + ["KeyReduceAttention"] * 2


def test_convmod_schedule_interleaves_conv_modulation_then_modulation_attention():
    model = create_model("inceptionformer_convmod", 3)
    assert model.mixers == [["conv"] * 2, ["conv", "convmod"] * 2, ["convmod", "mhsa"] * 4, ["mhsa"] * 4]
    kinds = [type(b).__name__ for b in model.stages[1].blocks]
    assert kinds == ["ConvBlock", "ResidualBlock"] * 2
    assert type(model.stages[1].blocks[1].mixer).__name__ == "ConvModulation"


def test_class_token_receives_attention_and_feeds_the_head():
    torch.manual_seed(0)
    model = create_model("inceptionformer_convmod_cls", 3, **SMALL).eval()
    x = torch.randn(2, 12, 203)
    model.set_attention_capture(True)
    logits = model(x)
    amap = model.attention_maps()["head"]
    assert amap.shape == (2, 8, 1, math.ceil(203 / 8))
    torch.testing.assert_close(amap.sum(-1), torch.ones(2, 8, 1))
    assert (amap > 0).all()  # every time step is attended to
    model.set_attention_capture(False)
    logits.sum().backward()
    assert model.head.cls_token.grad.abs().sum() > 0  # the token's value reaches the logits
    with torch.no_grad():
        model.head.cls_token.add_(1.0)
        assert not torch.allclose(model(x), logits)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 128)
    with pytest.raises(ValueError, match="unknown head"):
        create_model("inceptionformer", 3, head="max")


def _pruned_stage(token_keep=1.0, head_keep=1.0, depth=3, heads=4):
    torch.manual_seed(0)
    blocks = torch.nn.Sequential(*(make_block("mhsa", 16, heads) for _ in range(depth)))
    return CascadePruning(blocks, token_keep, head_keep).eval()


def test_token_deletion_removes_the_tokens_it_says_and_keeps_their_features():
    stage = _pruned_stage(token_keep=0.5)
    x = torch.randn(2, 10, 16)
    with torch.no_grad():
        first = stage.blocks[0](x)
    seen = []
    for block in stage.blocks:
        block.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    with torch.no_grad():
        out = stage(x)
    assert seen == [10, 5, 3] and out.shape == x.shape
    assert stage.blocks[1].mixer.last_weights.shape == (2, 4, 5, 5)  # block 1 attends among 5 tokens
    # the five tokens that left after block 0 carry block 0's output unchanged
    unchanged = (out - first).abs().amax(dim=-1) == 0
    assert unchanged.sum(dim=1).tolist() == [5, 5]
    with pytest.raises(ValueError, match="token_keep"):
        _pruned_stage(token_keep=0.0)


def test_head_pruning_silences_the_heads_it_says_in_cascade():
    stage = _pruned_stage(head_keep=0.5, heads=4)
    masks, outputs = [], []
    for block in stage.blocks:
        block.mixer.register_forward_pre_hook(lambda m, i: masks.append(m.head_mask.clone()))
        block.mixer.proj.register_forward_hook(lambda m, i, o: outputs.append(i[0].unflatten(-1, (4, 4))))
    with torch.no_grad():
        stage(torch.randn(2, 10, 16))
    assert [m.sum(dim=1).tolist() for m in masks] == [[4, 4], [2, 2], [1, 1]]
    for earlier, later in zip(masks, masks[1:], strict=False):
        assert not (later & ~earlier).any()  # once pruned, pruned in every later block
    for mask, out in zip(masks, outputs, strict=True):
        assert (out.abs().amax(dim=(1, 3))[~mask] == 0).all()  # silenced heads give nothing
        assert (out.abs().amax(dim=(1, 3))[mask] > 0).all()


def test_pruning_options_on_the_model():
    model = create_model("inceptionformer", 3, token_keep=0.7, head_keep=0.75, **SMALL)
    assert isinstance(model.stages[3].blocks, CascadePruning)
    model(torch.randn(2, 12, 203)).sum().backward()
    assert model.forward_features(torch.randn(1, 12, 203)).shape[-1] == math.ceil(203 / 8)
    sparse = create_model("inceptionformer_sparse", 3, token_keep=0.5, **SMALL)  # pruning the pooled tokens
    assert isinstance(sparse.stages[3].blocks.blocks, CascadePruning)
    assert sparse(torch.randn(2, 12, 203)).shape == (2, 3)
    with pytest.raises(ValueError, match="mhsa, sr"):
        create_model("inceptionformer_hilo", 3, token_keep=0.5, **SMALL)


def test_shunted_attention_reduces_keys_and_values_as_the_paper():
    torch.manual_seed(0)
    dim, x = 64, torch.randn(2, 20, 64)
    paper, light = ShuntedAttention(dim, 8), ShuntedAttention(dim, 8, paper=False)
    shapes = []
    for branch in paper.branches[1:]:
        branch.reduce.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    paper(x)
    assert shapes == [(2, 10, 64), (2, 5, 64)]  # keys pooled 2x and 4x from full-width tokens
    assert [b.reduce.conv.groups for b in paper.branches[1:]] == [1, 1]  # full convolutions
    assert [b.reduce.conv.groups for b in light.branches[1:]] == [dim, dim]  # depthwise
    assert all(b.v_pos is not None for b in paper.branches)  # local enhancement V + DWConv(V)
    assert all(b.v_pos is None for b in light.branches)
    extra = sum(p.numel() for p in paper.parameters()) - sum(p.numel() for p in light.parameters())
    assert extra == pytest.approx(6 * dim * dim, rel=0.05)
    assert create_model("inceptionformer", 3, attn="shunted_dw", **SMALL).mixers[3] == ["shunted_dw"] * 2


def test_mobilevit_attention_joins_tokens_at_the_same_patch_offset():
    torch.manual_seed(0)
    attn = PatchAttention(16, 2, patch=2).eval()
    attn.capture = True
    with torch.no_grad():
        attn(torch.randn(1, 9, 16))  # padded to 10: five patches of two
    amap = attn.attn_map[0, 0]
    offset = (torch.arange(9)[:, None] - torch.arange(9)[None, :]) % 2
    assert amap[offset == 1].abs().max() == 0 and (amap[offset == 0] > 0).all()
    torch.testing.assert_close(attn.attn_map.sum(-1), torch.ones(1, 2, 9))
    model = create_model("inceptionformer_mobilevit", 3, **SMALL)
    assert type(model.stages[3].blocks[0]).__name__ == "MobileViTBlock"


def test_biformer_keeps_its_value_conv():
    model = create_model("inceptionformer_biformer", 3, **SMALL)
    v_pos = model.stages[3].blocks[0].mixer.v_pos
    assert v_pos is not None and v_pos.conv.conv.kernel_size == (1, 5)


def test_sparse_token_block_matches_the_notes():
    """The notes' SparseAttentionBlock: 4.74 M parameters, 236.95 M MACs at 512 x 125."""
    table = count_macs_by_module(create_model("inceptionformer_sparse", 9), (1, 12, 1000), depth=3)
    inner = count_macs_by_module(create_model("inceptionformer_sparse", 9), (1, 12, 1000), depth=4)
    stage4 = table["stages.3.blocks"]
    blocks = inner["stages.3.blocks.blocks"]
    extra = {k: stage4[k] - blocks[k] for k in ("params", "macs_layers")}
    assert extra["params"] == pytest.approx(4.74e6, rel=0.02)
    assert extra["macs_layers"] == pytest.approx(236.95e6, rel=0.10)
