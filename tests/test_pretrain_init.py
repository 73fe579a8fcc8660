"""`train` from a pretrained encoder (`init:`): linear evaluation, fine-tuning, mismatches named."""

import json

import pytest
import torch
from safetensors.torch import load_file

from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.models import create_model
from ecglab.models.layers.heads import LinearProbe
from ecglab.pretrain.config import from_dict as pretrain_recipe
from ecglab.pretrain.run import pretrain
from ecglab.pretrain.transfer import estimate_norm_statistics, freeze_encoder
from ecglab.train.checkpoint import load_checkpoint, save_checkpoint
from ecglab.train.config import load_config
from ecglab.train.distributed import World
from ecglab.train.loop import build_datasets, build_model_and_optimizer, train_one_epoch
from helpers import run_cli, synthetic_ptbxl, write_config


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A synthetic PTB-XL and an fcn_wang encoder pretrained on it by CPC (a dry run): (data root, encoder folder)."""
    tmp = tmp_path_factory.mktemp("init")
    root = synthetic_ptbxl(tmp / "data/ptbxl").parent
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ECGLAB_CACHE", str(tmp / "cache"))
        run = pretrain(pretrain_recipe({"encoder": "fcn_wang", "datasets": ["ptbxl"], "root": str(root),
                                        "crop_seconds": 2.5, "batch_size": 16, "threads": 1, "dry_run": True,
                                        "out": str(tmp / "runs")}))  # fmt: skip
    return root, run / "encoder"


def _recipe(tmp_path, root, init, **extra):
    path = write_config(
        tmp_path / "r.yaml", root / "ptbxl", tmp_path, init=init, epochs=1, augment={}, **extra
    )
    return load_config(path)


def _parts(config):
    data = build_datasets(config, World())
    return data, build_model_and_optimizer(config, data, World())


def _encoder(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith("head.")}


def test_linear_mode_trains_the_head_and_leaves_the_encoder_untouched(pretrained, tmp_path, one_thread):
    root, encoder = pretrained
    config = _recipe(tmp_path, root, {"path": str(encoder), "mode": "linear"})
    data, parts = _parts(config)
    before = {k: v.clone() for k, v in parts.model.state_dict().items()}
    assert all(
        torch.equal(before[k], v) for k, v in _encoder(load_file(encoder / "model.safetensors")).items()
    )
    train_one_epoch(parts.train_model, data.loader, parts.stepper, parts.loss_fn, max_steps=3)
    after = parts.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in _encoder(before))  # BatchNorm statistics too
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("head."))


def test_finetune_sets_the_encoder_learning_rate_by_its_scale(pretrained, tmp_path):
    root, encoder = pretrained
    config = _recipe(tmp_path, root, {"path": str(encoder), "encoder_lr_scale": 0.1}, lr=0.002)
    _, parts = _parts(config)
    head, body = parts.stepper.optimizer.param_groups
    assert head["lr"] == 0.002 and body["lr"] == pytest.approx(0.0002)
    named = dict(parts.model.named_parameters())
    assert {id(p) for p in head["params"]} == {id(p) for n, p in named.items() if n.startswith("head.")}
    assert len(head["params"]) + len(body["params"]) == len(named)  # the whole model trains


def test_train_cli_from_a_pretrained_encoder_in_linear_mode(pretrained, tmp_path):
    root, encoder = pretrained
    init = {"path": str(encoder), "mode": "linear"}
    recipe = write_config(
        tmp_path / "r.yaml", root / "ptbxl", tmp_path, init=init, name="linear", bootstrap=20
    )
    run_cli("train", str(recipe), "--dry-run", env={"ECGLAB_CACHE": str(tmp_path / "cache")})
    trained = load_file(tmp_path / "runs/linear/checkpoint/model.safetensors")
    for key, value in _encoder(load_file(encoder / "model.safetensors")).items():
        assert torch.equal(trained[key], value), key
    saved = (tmp_path / "runs/linear/config.yaml").read_text()
    assert (
        "mode: linear" in saved and json.loads((encoder / "pretraining.json").read_text())["method"] == "cpc"
    )


def test_an_encoder_of_another_model_or_shape_is_refused_naming_both(pretrained, tmp_path):
    root, encoder = pretrained
    with pytest.raises(ValueError, match=r"pretrained fcn_wang .*; the recipe's model is resnet1d18"):
        _parts(_recipe(tmp_path, root, {"path": str(encoder)}, model="resnet1d18"))
    one_lead = tmp_path / "one_lead"
    meta = CheckpointMeta(model="fcn_wang", num_classes=0, in_chans=1, lead_names=("I",), classes=(),
                          multilabel=False, fs=100, window_samples=250)  # fmt: skip
    save_checkpoint(one_lead, create_model("fcn_wang", 0, 1), meta)
    with pytest.raises(
        ValueError, match=r"fcn_wang \(1 leads.*fcn_wang \(12 leads\): tensor .* is \(128, 1, 8\)"
    ):
        _parts(_recipe(tmp_path, root, {"path": str(one_lead)}))


def test_a_random_frozen_encoder_stays_as_initialised_while_its_head_learns(pretrained, tmp_path, one_thread):
    root, _ = pretrained
    config = _recipe(tmp_path, root, {"path": "random", "mode": "linear"})
    data, parts = _parts(config)
    learning = [name for name, p in parts.model.named_parameters() if p.requires_grad]
    assert learning and all(name.startswith("head.") for name in learning)
    before = {k: v.clone() for k, v in parts.model.state_dict().items()}
    train_one_epoch(parts.train_model, data.loader, parts.stepper, parts.loss_fn, max_steps=3)
    after = parts.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in _encoder(before))  # BatchNorm statistics too
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("head."))


def test_init_modes_that_say_nothing_clear_are_refused():
    from ecglab.train.config import from_dict

    with pytest.raises(ValueError, match="give its path, or path: random"):
        from_dict({"init": {"mode": "linear"}})
    with pytest.raises(ValueError, match="path: random with mode: finetune is training from scratch"):
        from_dict({"init": {"path": "random"}})


def test_norm_statistics_are_estimated_from_the_batches_and_nothing_else_moves():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 5), torch.nn.BatchNorm1d(3), torch.nn.Dropout(0.5))
    model.train()
    weights = {
        k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k
    }
    x = 3 + 2 * torch.randn(8, 2, 50)
    rng = torch.get_rng_state()
    assert estimate_norm_statistics(model, [x]) == 1
    conv = model[0](x).transpose(0, 1).reshape(3, -1)
    norm = model[1]
    assert torch.allclose(norm.running_mean, conv.mean(1), atol=1e-5)
    assert torch.allclose(norm.running_var, conv.var(1), rtol=1e-4)  # unbiased, as BatchNorm keeps it
    assert torch.equal(torch.get_rng_state(), rng)  # the dropout drew nothing
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    assert model.training and norm.training and norm.momentum == 0.1


def test_a_random_encoder_run_keeps_its_initial_weights_with_its_training_windows_statistics(
    pretrained, tmp_path
):
    """`init: {path: random, mode: linear}`: PyTorch's default statistics (mean 0, variance 1) would leave
    the frozen network unnormalised; the run estimates them on its training windows first and logs it."""
    root, _ = pretrained
    init = {"path": "random", "mode": "linear"}
    recipe = write_config(
        tmp_path / "r.yaml", root / "ptbxl", tmp_path, init=init, name="random", bootstrap=20
    )
    run_cli("train", str(recipe), "--dry-run", env={"ECGLAB_CACHE": str(tmp_path / "cache")})
    log = (tmp_path / "runs/random/log.txt").read_text()
    assert "random encoder: BatchNorm statistics of" in log and "estimated on" in log
    trained = load_file(tmp_path / "runs/random/checkpoint/model.safetensors")
    config = load_config(recipe)
    torch.manual_seed(config.seed)
    classes = json.loads((tmp_path / "runs/random/checkpoint/config.json").read_text())["num_classes"]
    fresh = create_model(config.model, classes, 12).state_dict()
    means = [k for k in fresh if k.endswith("running_mean")]
    assert means and all(not torch.equal(trained[k], fresh[k]) for k in means)
    weights = [k for k in _encoder(fresh) if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(trained[k], fresh[k]) for k in weights)


def test_linear_evaluation_probes_standardised_features_and_its_checkpoint_loads(tmp_path):
    """MAE's linear probe: frozen features standardised (BatchNorm, no affine), then the linear layer.
    A plain linear layer under Adam mostly learns the features' offset (resnet1d_wang's pooled features:
    mean 0.46, spread 0.13); the checkpoint says `linear_probe`, so it loads as it trained."""
    torch.manual_seed(0)
    model = freeze_encoder(create_model("resnet1d_wang", 3, 12, head="avg", drop_rate=0.0))
    learning = [name for name, p in model.named_parameters() if p.requires_grad]
    assert isinstance(model.head.fc, LinearProbe) and learning == ["head.fc.fc.weight", "head.fc.fc.bias"]
    x = torch.randn(32, 12, 250)
    model.train()
    model(x)
    with torch.no_grad():
        features = model.head(model.forward_features(x), pre_logits=True)
    probe = model.head.fc.norm
    assert torch.allclose(probe.running_mean, 0.1 * features.mean(0), atol=1e-6)  # one step of momentum 0.1
    meta = CheckpointMeta(model="resnet1d_wang", model_kwargs={"head": "avg", "drop_rate": 0.0}, num_classes=3,
                          in_chans=12, lead_names=tuple(f"L{i}" for i in range(12)), classes=("a", "b", "c"),
                          multilabel=True, fs=100, window_samples=250, linear_probe=True)  # fmt: skip
    save_checkpoint(tmp_path / "probe", model, meta)
    loaded, loaded_meta = load_checkpoint(tmp_path / "probe")
    assert loaded_meta.linear_probe and isinstance(loaded.head.fc, LinearProbe)
    assert torch.equal(loaded(x), model.eval()(x))
    plain = json.loads((tmp_path / "probe/config.json").read_text())
    del plain["linear_probe"]  # a checkpoint written before the key: a plain linear head
    assert not CheckpointMeta.from_json(plain).linear_probe
