"""The model contract, checked for every registered model: a model is tested as soon as it is registered."""

import pytest
import torch

from ecglab.models import create_model, list_models
from ecglab.models._output import split_output

# Names that torch.export cannot capture, each with the reason.
NOT_EXPORTABLE: dict[str, str] = {
    "beat_transformer": "R peaks are found by scipy on a CPU copy inside forward",
    "mmil_ecg": "R peaks are found by scipy on a CPU copy inside forward",
}

NUM_CLASSES = 5
# Combinations of registered models (the ensemble) are not in list_models and so not walked here:
# `combination_models()` gives each one's reason, and tests/test_ensemble.py tests them.


pytestmark = pytest.mark.usefixtures("fast_cpu")  # see conftest: one thread, no oneDNN, no denormals


def _length(model, preferred: int = 256) -> int:
    """A short input (tests stay fast), but never shorter than the model's `min_samples`."""
    return max(preferred, model.min_samples)


def _pre_logits_width(model) -> int:
    """`num_features`, or `head_hidden_size` for heads with a hidden layer (timm's convention)."""
    return getattr(model, "head_hidden_size", model.num_features)


def _hooked_output(model, module_name: str, x):
    captured = []
    handle = model.get_submodule(module_name).register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        feats = model.forward_features(x)
    finally:
        handle.remove()
    return feats, captured[-1]


def _check_train_step(name, model, x):
    feats = model.forward_features(x)
    assert feats.ndim == 3 and feats.shape[:2] == (2, model.num_features)
    assert model.forward_head(feats, pre_logits=True).shape == (2, _pre_logits_width(model))
    logits = model.forward_head(feats)
    assert logits.shape == (2, NUM_CLASSES) and torch.isfinite(logits).all()
    logits.square().sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    if no_grad:  # parameters that only an auxiliary loss trains (a decoder) get it from forward in train mode
        _, aux = split_output(model(x))
        if aux is not None:
            aux.backward()
        no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}: parameters without a gradient: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def _check_feature_info(name, model, x):
    info = model.feature_info
    assert info and all({"module", "num_chs", "reduction"} <= set(f) for f in info)
    assert info[-1]["num_chs"] == model.num_features
    for f in info:
        model.get_submodule(f["module"])  # raises if the name is wrong
    feats, hooked = _hooked_output(model, info[-1]["module"], x)
    assert torch.equal(hooked, feats), f"{name}: feature_info[-1] is not the module forward_features returns"
    assert feats.shape[-1] <= x.shape[-1] // info[-1]["reduction"] + 1


@pytest.mark.parametrize("name", list_models())
def test_model_contract(name):
    """Train step with gradients everywhere, feature_info, a state-dict round trip and reset_classifier."""
    torch.manual_seed(0)
    model = create_model(name, NUM_CLASSES).train()
    x = torch.randn(2, 12, _length(model))
    _check_train_step(name, model, x)  # also moves the norms' running statistics off their defaults
    model.eval()
    fresh = create_model(name, NUM_CLASSES).eval()
    fresh.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        _check_feature_info(name, model, x)
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
        model.reset_classifier(3)
        assert model(x).shape == (2, 3)
        model.reset_classifier(0)
        assert model(x).shape == (2, _pre_logits_width(model))


@pytest.mark.parametrize("name", list_models())
def test_one_lead_and_other_lengths(name):
    model = create_model(name, NUM_CLASSES, in_chans=1).eval()
    with torch.no_grad():
        for samples in (_length(model, 333), model.min_samples):
            logits = model(torch.randn(2, 1, samples))
            assert logits.shape == (2, NUM_CLASSES) and torch.isfinite(logits).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_export(name):
    if name in NOT_EXPORTABLE:
        pytest.skip(f"{name} does not export: {NOT_EXPORTABLE[name]}")
    model = create_model(name, NUM_CLASSES).eval()
    x = torch.randn(2, 12, _length(model))
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x), rtol=1e-4, atol=1e-4)
