"""The literature models of issue 16 (part A): each one's distinctive mechanism, tested directly."""

import json

import numpy as np
import pytest
import torch

from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.explain.gradcam import grad_cam_leads, keeps_leads, stretch
from ecglab.models import create_model
from ecglab.models.dprnn import overlap_add, segment
from ecglab.models.mpgt import CausalConv, GatedFusion, PGTBlock
from ecglab.models.mvms_ecg import STANDARD_VIEWS
from ecglab.models.profile import count_macs, count_macs_by_module
from ecglab.train.checkpoint import save_checkpoint
from helpers import run_cli, write_wfdb

NAMES = ["im_ecg", "se_ecgnet", "mvms_ecg", "ecgnet", "dprnn", "mpgt"]


pytestmark = pytest.mark.usefixtures("fast_cpu")


def _changed_rows(a: torch.Tensor, b: torch.Tensor) -> list[int]:
    """Rows (axis 2 of a (B, C, rows, T) map) where two maps differ."""
    return torch.nonzero((a - b).abs().amax(dim=(0, 1, 3)) > 1e-6).flatten().tolist()


def test_im_ecg_regional_kernels_mix_leads_and_horizontal_kernels_do_not():
    torch.manual_seed(0)
    conv = create_model("im_ecg", 3).stages[0][0].conv1  # a dual-kernel convolution
    x = torch.randn(1, conv.regional.in_channels, 12, 40)
    y = x.clone()
    y[:, :, 5] += 1.0  # perturb lead 6 (row 5) only
    with torch.no_grad():
        assert conv.regional.kernel_size == (3, 7) and conv.horizontal.kernel_size == (1, 7)
        assert _changed_rows(conv.regional(x), conv.regional(y)) == [4, 5, 6]
        assert _changed_rows(conv.horizontal(x), conv.horizontal(y)) == [5]


def test_im_ecg_keeps_one_row_per_lead_and_grad_cam_works_per_lead():
    torch.manual_seed(0)
    model = create_model("im_ecg", 3).eval()
    x = torch.randn(1, 12, 200)
    assert keeps_leads(model, 12, 200, "stages.3") and not keeps_leads(model, 12, 200)
    maps = grad_cam_leads(model, x[0].numpy(), 1, "stages.3")
    assert maps.shape == (12, 200) and np.isfinite(maps).all() and maps.max() == pytest.approx(1.0)
    # the same map by hand: per-row Grad-CAM of the (B, C, leads, T) output, stretched and normalised
    acts = []
    model.stages[3].register_forward_hook(lambda m, i, o: acts.append(o))
    logit = model(x)[0, 1]
    (grad,) = torch.autograd.grad(logit, acts[-1])
    cam = torch.relu((grad.mean(dim=-1, keepdim=True) * acts[-1]).sum(dim=1))[0]
    cam = stretch(cam.detach(), 200).numpy()
    np.testing.assert_allclose(maps, cam / cam.max(), atol=1e-5)


def test_explain_command_draws_im_ecg_grad_cam_per_lead(tmp_path):
    """`ecglab explain --layer stages.3` on an IM-ECG checkpoint (random weights) shades each lead on its own."""
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    classes = ["SR", "AFIB", "STACH"]
    meta = {"model": "im_ecg", "model_kwargs": {}, "num_classes": 3, "in_chans": 12, "lead_names": leads,
            "classes": classes, "multilabel": True, "fs": 100, "window_samples": 250, "seconds": 2.5,
            "norm": "zscore", "filter": "none", "aggregate": "mean", "thresholds": None}  # fmt: skip
    torch.manual_seed(0)
    checkpoint = save_checkpoint(
        tmp_path / "im_ecg", create_model("im_ecg", 3), CheckpointMeta.from_json(meta)
    )
    x = np.random.default_rng(0).standard_normal((12, 600)).astype(np.float32)
    record = write_wfdb(tmp_path / "rec", x, 100, leads)
    out = tmp_path / "fig.png"
    proc = run_cli(
        "explain", str(record), "--model", str(checkpoint), "--layer", "stages.3", "--out", str(out)
    )
    assert "with Grad-CAM per lead at stages.3" in proc.stdout and out.stat().st_size > 10_000


def test_se_ecgnet_image_scales_and_squeeze_excitation():
    torch.manual_seed(0)
    model = create_model("se_ecgnet", 3).eval()
    assert model.stem[1].kernel_size == (1, 50) and model.stem[1].stride == (1, 2)  # large kernels early
    kernels = [scale[0][0].convs[0][-1].kernel_size for scale in model.scales]
    assert kernels == [(1, 3), (1, 5), (1, 7)]  # one row (lead) at a time, one width per scale
    fold = model.scales[0][4]
    assert fold.proj.in_channels == 32 * 12 and fold.proj.out_channels == 256  # the leads meet here
    x = torch.randn(2, 12, 300)
    y = x.clone()
    y[:, 5] += 1.0
    with torch.no_grad():
        # convolutions run along each row; only the SE gates (pooled over the image) and the fold mix leads
        assert _changed_rows(model.stem[:4](x), model.stem[:4](y)) == [5]
    se = model.scales[0][0][0].se
    for shape in [(2, 32, 30), (2, 32, 12, 30)]:  # a 1-D map and a leads x time image
        x = torch.randn(*shape)
        with torch.no_grad():
            ratio = (se(x) / x).flatten(2)
        # one gate per (record, channel): the same at every position, strictly between 0 and 1
        torch.testing.assert_close(ratio, ratio[..., :1].expand_as(ratio))
        assert (ratio > 0).all() and (ratio < 1).all() and ratio[..., 0].std() > 1e-3


def test_mvms_views_partition_the_leads_by_viewing_angle():
    model = create_model("mvms_ecg", 3)
    # aVR | I, aVL | V1, V2 | V3, V4 | V5, V6 | II, III, aVF
    assert model.view_leads == STANDARD_VIEWS == ((3,), (0, 4), (6, 7), (8, 9), (10, 11), (1, 2, 5))
    assert create_model("mvms_ecg", 3, in_chans=1).view_leads == ((0,),)  # fallback: one view
    two_planes = create_model("mvms_ecg", 3, views=(tuple(range(6)), tuple(range(6, 12))))
    assert len(two_planes.views) == 2 and len(two_planes.harmoniser.scores) == 2
    with pytest.raises(ValueError, match="partition the 12 leads"):
        create_model("mvms_ecg", 3, views=((0, 1), (1, 2)))


def test_mvms_res2net_groups_grow_their_receptive_field():
    torch.manual_seed(0)
    block = create_model("mvms_ecg", 3).views[0][3].eval()  # the first Res2Net block
    assert block.scale == 4 and [c.conv.kernel_size[0] for c in block.convs] == [15, 15, 15]
    width = block.convs[0].conv.in_channels
    groups = torch.zeros(1, 4 * width, 101)
    groups[:, :, 50] = 1.0  # an impulse in every group
    with torch.no_grad():
        outs, y = [], None
        for conv, group in zip(block.convs, groups.chunk(4, dim=1)[:3], strict=True):
            y = conv(group if y is None else group + y)
            outs.append((y - conv(torch.zeros_like(group))).abs().amax(dim=1)[0] > 1e-6)
    spans = [int(o.sum()) for o in outs]
    assert spans == [15, 29, 43]  # each group also sees the previous group's output


def test_mvms_branch_sees_only_its_view_and_the_harmoniser_weighs_each_view():
    torch.manual_seed(0)
    model = create_model("mvms_ecg", 3).eval()
    x = torch.randn(2, 12, 160)
    y = x.clone()
    y[:, 7] += 1.0  # V2, in the septal view (V1, V2)
    with torch.no_grad():
        maps, maps_y = model.view_maps(x), model.view_maps(y)
        changed = [i for i, (m, n) in enumerate(zip(maps, maps_y, strict=True)) if not torch.allclose(m, n)]
        assert changed == [2]
        torch.testing.assert_close(model.view_branch(2)(x[:, 6:8]), maps[2])  # the student's body
        weights = model.harmoniser.view_weights(maps)
        fc = model.harmoniser.scores[4]
        assert fc.in_features == 128 and fc.out_features == 1
        torch.testing.assert_close(weights[:, 4], torch.sigmoid(fc(maps[4].mean(dim=-1)))[:, 0])
        assert weights.shape == (2, 6) and (weights > 0).all() and (weights < 1).all()
        fused = sum(w[:, None, None] * m for w, m in zip(weights.unbind(1), maps, strict=True))
        torch.testing.assert_close(model.forward_features(x), fused)


def test_ecgnet_inception_branches_see_their_kernel_width():
    model = create_model("ecgnet", 3).eval()
    block = model.inception
    assert [c.kernel_size[0] for c in block.convs] == [1, 3, 7, 15] and block.out_chans == 160
    assert len(model.blocks) == 4
    impulse = torch.zeros(1, 12, 61)
    impulse[:, :, 30] = 1.0
    with torch.no_grad():
        for conv in block.convs:
            support = torch.nonzero(conv(impulse).abs().amax(dim=1)[0] > 0).flatten()
            k = conv.kernel_size[0]
            assert support.tolist() == list(range(30 - k // 2, 31 + k // 2))
        pooled = torch.nonzero(block.pool(impulse).abs().amax(dim=1)[0] > 0).flatten()
        assert pooled.tolist() == [29, 30, 31]  # the 3-wide max-pool branch


@pytest.mark.parametrize("length", [1, 7, 50, 333])
def test_dprnn_segmentation_is_half_overlapping_and_overlap_add_inverts_it(length):
    x = torch.randn(2, 3, length)
    seg = segment(x, 10)
    assert seg.shape[:2] == (2, 3) and seg.shape[-1] == 10
    torch.testing.assert_close(seg[:, :, :-1, 5:], seg[:, :, 1:, :5])  # 50% overlap
    torch.testing.assert_close(overlap_add(seg, length), x)


@pytest.mark.parametrize("leads", [1, 12])
def test_dprnn_restores_the_encoder_length_on_one_lead_and_twelve(leads):
    torch.manual_seed(0)
    model = create_model("dprnn", 3, in_chans=leads).eval()
    x = torch.randn(2, leads, 400)
    with torch.no_grad():
        frames = model.encoder(x)
        feats = model.forward_features(x)
        seg = segment(frames, model.dual_path.segment_size)
    assert feats.shape == frames.shape == (2, 64, 99)
    assert seg.shape == (2, 64, 5, 50)  # [B, N, S, K]: 99 frames in 2 s segments at a 1 s hop
    block = model.dual_path.blocks[0]
    assert block.intra.rnn.bidirectional and block.inter.rnn.bidirectional


def test_mpgt_fusion_formula_and_block_order():
    torch.manual_seed(0)
    fusion = GatedFusion(8)
    x1, x2 = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    with torch.no_grad():
        expected = x1 * torch.sigmoid(torch.tanh(fusion.fc(x1))) + x2
        torch.testing.assert_close(fusion(x1, x2), expected.transpose(1, 2))
        torch.nn.init.zeros_(fusion.fc.weight)
        torch.nn.init.zeros_(fusion.fc.bias)
        torch.testing.assert_close(fusion(x1, x2), (0.5 * x1 + x2).transpose(1, 2))
    names = [type(m).__name__ for m in PGTBlock(8, 2).mixers]
    assert names == ["KeyReduceAttention", "Mlp", "CausalConv", "Mlp"]  # MHSA-FFN-TCN-FFN
    model = create_model("mpgt", 3)
    assert model.fine.embed[0].conv.kernel_size == (3,) and model.coarse.embed[0].conv.kernel_size == (15,)


def test_mpgt_temporal_convolution_sees_only_the_past():
    torch.manual_seed(0)
    tcn = CausalConv(4)
    x = torch.randn(1, 20, 4)
    y = x.clone()
    y[:, 12] += 1.0
    with torch.no_grad():
        changed = torch.nonzero((tcn(x) - tcn(y)).abs().amax(dim=(0, 2)) > 0).flatten().tolist()
    assert changed == [12, 14, 16]  # 3 taps, dilation 2: step 12 reaches 12, 14 and 16


@pytest.mark.parametrize("name", NAMES)
def test_size_is_comparable_with_the_baselines(name):
    """Within the baseline grid's range at 12 x 1000: mobilenetv2_1d (2.2 M, 92 M MACs) to xresnet1d101
    (33.6 M, 1834 M MACs). The published layouts of se_ecgnet (17 M) and mvms_ecg (781 M MACs) are the heavy ones."""
    out = count_macs(create_model(name, 9), (1, 12, 1000))
    assert 0.4e6 < out["params"] < 20e6
    assert 50e6 < out["macs_layers"] <= out["macs"] < 1000e6


def test_dprnn_macs_count_its_lstms():
    table = count_macs_by_module(create_model("dprnn", 9), (1, 12, 1000))
    assert table["dual_path"]["macs_layers"] > 10 * table["encoder"]["macs_layers"] > 0


def test_models_command_lists_them():
    rows = json.loads(run_cli("models", "m*", "--json", env={"OMP_NUM_THREADS": "1"}).stdout)
    names = [r["name"] for r in rows]
    assert {"mpgt", "mvms_ecg"} <= set(names)
    assert all(r["macs"] > 0 and r["params"] > 0 for r in rows)
