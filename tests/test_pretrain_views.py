"""CLOCS's views of a record, the records that cannot give them, and the CLOCS objective on a batch."""

import numpy as np
import pytest
import torch

from ecglab.pretrain.clocs import CLOCS
from ecglab.pretrain.views import ViewsError, ViewSpec, make_views, views_problem

pytestmark = pytest.mark.usefixtures("one_thread")


def _ramp(leads=3, samples=50):
    """Row r holds 1000 * r + t, so every sample says which lead and time it came from."""
    return (1000 * np.arange(leads)[:, None] + np.arange(samples)[None, :]).astype(np.float32)


def test_cmsc_gives_adjacent_non_overlapping_segments_with_all_leads():
    views = make_views(_ramp(), ViewSpec("cmsc", segment_samples=10, segments=3), np.random.default_rng(0))
    assert views.shape == (3, 3, 10)
    start = views[0, 0, 0]
    for s in range(3):  # segment s starts where segment s-1 ended
        np.testing.assert_array_equal(views[s], _ramp()[:, int(start) + 10 * s : int(start) + 10 * (s + 1)])


def test_cmlc_gives_each_lead_of_one_segment_as_a_view():
    views = make_views(_ramp(), ViewSpec("cmlc", segment_samples=10), np.random.default_rng(1))
    assert views.shape == (3, 1, 10)
    t0 = views[0, 0, 0]
    for lead in range(3):
        np.testing.assert_array_equal(views[lead, 0], 1000 * lead + t0 + np.arange(10))


def test_cmsmlc_gives_every_lead_of_every_segment_segment_major():
    spec = ViewSpec("cmsmlc", segment_samples=10, segments=2, leads=(0, 2))
    views = make_views(_ramp(), spec, np.random.default_rng(2))
    assert views.shape == (4, 1, 10)
    t0 = views[0, 0, 0]
    expected_starts = [t0, 2000 + t0, t0 + 10, 2000 + t0 + 10]  # (segment 0: leads 0, 2), (segment 1: ...)
    assert [v[0, 0] for v in views] == expected_starts


def test_a_record_that_cannot_give_the_views_is_named():
    spec = ViewSpec("cmsc", segment_samples=30, segments=2)
    assert views_problem(50, [True] * 3, spec) == "50 samples; CMSC needs 60 (2 x 30)"
    with pytest.raises(ViewsError, match="ptbxl/00042: 50 samples; CMSC needs 60"):
        make_views(_ramp(), spec, np.random.default_rng(0), record="ptbxl/00042")
    assert "at least 2" in views_problem(100, [True], ViewSpec("cmlc", 10))
    assert "lacks lead row(s) 1, 2" in views_problem(100, [True, False, False], ViewSpec("cmsmlc", 10))
    assert views_problem(60, [True, False], ViewSpec("cmsc", 30)) is None  # CMSC uses the leads it has
    with pytest.raises(ValueError, match="unknown CLOCS variant"):
        ViewSpec("cmxx")


def test_clocs_objective_learns_from_a_batch_of_views():
    torch.manual_seed(0)
    model = CLOCS("resnet1d_wang", in_chans=1, embed_dim=8, widths=(8, 8, 8))
    views = torch.randn(4, 3, 1, 64)
    loss = model(views, torch.tensor([0, 0, 1, -1]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None and ".head." not in n]
    assert not no_grad, f"parameters without a gradient: {no_grad}"
    assert model.embed(views).shape == (4, 3, 8)
