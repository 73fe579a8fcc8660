"""ST-MEM pretraining: the patch layout, the per-lead mask, and a loss that sees only hidden patches."""

import pytest
import torch

from ecglab.models import create_model
from ecglab.models.st_mem import patchify
from ecglab.pretrain.losses import masked_patch_mse
from ecglab.pretrain.st_mem import STMEM, random_patch_mask

pytestmark = pytest.mark.usefixtures("one_thread")


def _small_stmem(leads=3):
    encoder = create_model("st_mem_vit", 0, leads, dim=32, depth=1, num_heads=2)
    return STMEM(encoder, decoder_dim=16, decoder_depth=1, decoder_heads=2)


def test_patches_tile_each_lead_in_order():
    x = torch.arange(2 * 3 * 100, dtype=torch.float32).reshape(2, 3, 100)
    patches = patchify(x, 25)
    assert patches.shape == (2, 3, 4, 25)
    assert torch.equal(patches[1, 2, 3], x[1, 2, 75:100])
    assert torch.equal(patches.flatten(-2), x)  # every sample once, in order, no overlap
    with pytest.raises(ValueError, match="multiple of 25"):
        patchify(x[..., :90], 25)


def test_mask_hides_exactly_three_quarters_of_every_lead_independently():
    torch.manual_seed(0)
    keep, mask = random_patch_mask(4, 12, 40)
    assert mask.shape == (4, 12, 40) and keep.shape == (4, 12, 10)
    assert (mask.sum(dim=-1) == 30).all()  # 75% of 40, in every lead of every record
    assert (mask.gather(-1, keep) == 0).all()  # the kept patches are the unmasked ones
    assert len({tuple(row.tolist()) for row in mask[0]}) > 1  # leads are masked independently
    with pytest.raises(ValueError, match="keeps 0"):
        random_patch_mask(1, 1, 3, ratio=0.75)


def test_loss_flows_only_from_masked_patches():
    torch.manual_seed(0)
    model = _small_stmem()
    x = torch.randn(2, 3, 200)
    torch.manual_seed(1)
    _, _, mask = model.reconstruct(x)  # the mask is forward's only random draw: same seed, same mask
    captured = {}

    def keep_output(module, args, out):
        out.retain_grad()
        captured["pred"] = out

    model.decoder.register_forward_hook(keep_output)
    torch.manual_seed(1)
    model(x).backward()
    grad = captured["pred"].grad
    per_patch = grad[:, :, 1:-1].abs().sum(dim=-1)  # separators dropped
    assert per_patch.shape == mask.shape == (2, 3, 8)
    assert (per_patch[mask == 0] == 0).all() and (per_patch[mask == 1] > 0).all()
    assert grad[:, :, [0, -1]].abs().sum() == 0
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without a gradient: {no_grad}"


def test_absent_leads_leave_the_loss():
    torch.manual_seed(0)
    model = _small_stmem()
    x = torch.randn(2, 3, 200)
    with torch.no_grad():
        torch.manual_seed(1)
        pred, target, mask = model.reconstruct(x)
        torch.manual_seed(1)
        got = model(x, present=torch.tensor([[1, 0, 0], [1, 0, 0]]))
    expected = masked_patch_mse(pred[:, :1], target[:, :1], mask[:, :1])
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert got.item() != pytest.approx(masked_patch_mse(pred, target, mask).item(), rel=1e-3)


def test_input_must_be_whole_patches_and_encoder_must_be_st_mem():
    model = _small_stmem()
    with pytest.raises(ValueError, match="multiple of 25"):
        model(torch.randn(1, 3, 210))
    with pytest.raises(TypeError, match="st_mem_vit"):
        STMEM(create_model("resnet1d18", 0, 3))
