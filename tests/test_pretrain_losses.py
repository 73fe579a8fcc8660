"""The pretraining losses against small cases computed by hand."""

import math

import pytest
import torch

from ecglab.pretrain.losses import clocs_loss, info_nce, masked_patch_mse, own_patients


def test_info_nce_with_known_similarities():
    # One step, two records: the scores pred_b . target_d are [[2, 0], [0, 1]].
    pred = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    target = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])
    first = -math.log(math.exp(2) / (math.exp(2) + math.exp(0)))
    second = -math.log(math.exp(1) / (math.exp(0) + math.exp(1)))
    assert info_nce(pred, target).item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_info_nce_averages_steps_and_punishes_a_swapped_target():
    pred = torch.tensor([[[3.0, 0.0], [0.0, 3.0]], [[3.0, 0.0], [0.0, 3.0]]])
    right = torch.eye(2).expand(2, 2, 2)
    wrong = right.flip(1)  # each record's target is the other record's
    expected_right = -math.log(math.exp(3) / (math.exp(3) + 1))
    assert info_nce(pred, right).item() == pytest.approx(expected_right, rel=1e-6)
    assert info_nce(pred, wrong).item() == pytest.approx(-math.log(1 / (math.exp(3) + 1)), rel=1e-6)


def test_info_nce_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(steps, B, C\)"):
        info_nce(torch.zeros(1, 2, 3), torch.zeros(1, 3, 3))


def test_records_without_patient_are_their_own_patient():
    ids = own_patients(torch.tensor([4, -1, 4, -1]))
    assert ids[0] == ids[2] and len({int(ids[1]), int(ids[3]), int(ids[0])}) == 3


def _clocs_by_hand(cos_ab: list[list[float]], positives: list[tuple[int, int]], t: float) -> float:
    """One pair of views: mean over positives of the row and column cross-entropies, halved."""
    s = [[c / t for c in row] for row in cos_ab]
    n = len(s)

    def row_term(i, j):
        return -(s[i][j] - math.log(sum(math.exp(s[i][k]) for k in range(n))))

    def col_term(i, j):
        return -(s[i][j] - math.log(sum(math.exp(s[k][j]) for k in range(n))))

    rows = sum(row_term(i, j) for i, j in positives) / len(positives)
    cols = sum(col_term(i, j) for i, j in positives) / len(positives)
    return (rows + cols) / 2


def test_clocs_positives_are_all_views_of_one_patient():
    # Records 0 and 1 come from one patient, record 2 from another; view A and view B of each
    # record are unit vectors at chosen angles, so every cosine is known.
    angles_a = [0.0, 0.5, 2.0]
    angles_b = [0.1, 0.7, 2.5]
    view_a = torch.tensor([[math.cos(a), math.sin(a)] for a in angles_a])
    view_b = torch.tensor([[math.cos(b), math.sin(b)] for b in angles_b])
    embeddings = torch.stack([view_a, 3 * view_b], dim=1)  # the scale of a view must not matter
    cos_ab = [[math.cos(a - b) for b in angles_b] for a in angles_a]
    t = 0.1
    with_patient = _clocs_by_hand(cos_ab, [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)], t)
    alone = _clocs_by_hand(cos_ab, [(0, 0), (1, 1), (2, 2)], t)
    got = clocs_loss(embeddings, torch.tensor([7, 7, 3]), temperature=t).item()
    assert got == pytest.approx(with_patient, rel=1e-5)
    unknown = clocs_loss(embeddings, torch.tensor([-1, -1, 3]), temperature=t).item()
    assert unknown == pytest.approx(alone, rel=1e-5) and alone != pytest.approx(with_patient)


def test_clocs_averages_every_pair_of_views():
    torch.manual_seed(0)
    emb = torch.randn(4, 3, 5)
    ids = torch.tensor([0, 1, 1, 2])
    pairs = [clocs_loss(emb[:, list(p)], ids) for p in ((0, 1), (0, 2), (1, 2))]
    assert clocs_loss(emb, ids).item() == pytest.approx(torch.stack(pairs).mean().item(), rel=1e-6)


def test_masked_mse_counts_only_masked_patches():
    target = torch.zeros(1, 2, 3, 4)  # (B, leads, patches, patch_size)
    pred = torch.zeros_like(target)
    mask = torch.tensor([[[1, 0, 0], [0, 0, 1]]])
    pred[0, 0, 0] = 2.0  # masked: squared error 4 on every sample
    pred[0, 1, 2] = torch.tensor([1.0, 1.0, 0.0, 0.0])  # masked: mean squared error 0.5
    pred[0, 0, 1] = 100.0  # visible: must not count
    assert masked_patch_mse(pred, target, mask).item() == pytest.approx((4 + 0.5) / 2)


def test_masked_mse_refuses_an_empty_mask():
    with pytest.raises(ValueError, match="no masked patch"):
        masked_patch_mse(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2))
