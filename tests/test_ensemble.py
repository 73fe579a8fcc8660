"""The ensemble model: the mean of its members' logits, saved and loaded as one checkpoint."""

import pytest
import torch

from ecglab.models import combination_models, create_model, list_models
from ecglab.train.checkpoint import load_checkpoint, save_checkpoint
from infer_helpers import make_checkpoint

MEMBERS = [{"model": "fcn_wang"}, {"model": "resnet1d_wang", "kwargs": {}}]


def test_forward_is_the_mean_of_the_members_logits():
    torch.manual_seed(0)
    model = create_model("ensemble", 3, in_chans=12, members=MEMBERS).eval()
    x = torch.randn(2, 12, 300)
    with torch.no_grad():
        expected = (model.members[0](x) + model.members[1](x)) / 2
        torch.testing.assert_close(model(x), expected)


def test_one_checkpoint_round_trip(tmp_path):
    from dataclasses import replace

    from ecglab.checkpoint_meta import read_meta

    meta = read_meta(make_checkpoint(tmp_path / "single") / "config.json")
    model = create_model("ensemble", 3, in_chans=12, members=MEMBERS).eval()
    folder = save_checkpoint(
        tmp_path / "ens", model, replace(meta, model="ensemble", model_kwargs={"members": MEMBERS})
    )
    loaded, _ = load_checkpoint(folder)
    x = torch.randn(1, 12, 1000)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]


def test_is_left_out_of_the_zoo_with_a_reason_and_refuses_bad_members():
    assert "ensemble" not in list_models() and combination_models()["ensemble"]
    for bad in (None, [], [{"name": "fcn_wang"}], [{"model": "ensemble"}]):
        with pytest.raises(ValueError, match="ensemble"):
            create_model("ensemble", 3, members=bad)


def test_grad_cam_explains_an_ensemble_through_its_first_member():
    import numpy as np

    from ecglab.explain.gradcam import grad_cam

    model = create_model("ensemble", 3, in_chans=12, members=MEMBERS).eval()
    relevance = grad_cam(model, np.random.default_rng(0).standard_normal((12, 300)).astype(np.float32), 1)
    assert relevance.shape == (300,) and np.isfinite(relevance).all()


def test_an_ensemble_exports_to_one_onnx_file_with_its_temperature(tmp_path):
    from dataclasses import replace

    import numpy as np

    pytest.importorskip("onnxruntime")
    from ecglab.checkpoint_meta import read_meta
    from ecglab.infer.onnx_export import export_onnx
    from ecglab.infer.predictor import Predictor

    meta = read_meta(make_checkpoint(tmp_path / "single") / "config.json")
    model = create_model("ensemble", 3, in_chans=12, members=MEMBERS).eval()
    meta = replace(meta, model="ensemble", model_kwargs={"members": MEMBERS}, temperature=2.0)
    folder = save_checkpoint(tmp_path / "ens", model, meta)
    report = export_onnx(folder)
    assert report.path == folder / "model.onnx"
    x = np.random.default_rng(0).standard_normal((3, 12, 1000)).astype(np.float32)
    torch_run, onnx_run = Predictor.from_checkpoint(folder), Predictor.from_checkpoint(folder, runtime="onnx")
    np.testing.assert_allclose(onnx_run.probabilities(x), torch_run.probabilities(x), rtol=0, atol=1e-5)
