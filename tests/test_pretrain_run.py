"""`ecglab pretrain`: every shipped recipe end to end, resume after an interruption, refused pools."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from ecglab.models import create_model
from ecglab.pretrain.config import from_dict, load_pretrain_config
from ecglab.pretrain.run import pretrain
from ecglab.train.checkpoint import load_checkpoint
from helpers import Interrupted, run_cli, stop_at_epoch, synthetic_ptbxl

RECIPES = ["configs/pretrain_cpc.yaml", "configs/pretrain_clocs.yaml", "configs/pretrain_st_mem.yaml"]


@pytest.mark.data
@pytest.mark.parametrize("recipe", RECIPES)
def test_dry_run_of_every_shipped_recipe(recipe, ptbxl_root, cinc2017_root, tmp_path):
    cfg = load_pretrain_config(recipe)
    assert cfg.datasets == ["ptbxl", "cinc2017"] and cfg.evaluated == {"ptbxl": [9, 10]} and cfg.fs == 100
    done = run_cli("pretrain", recipe, "--dry-run", "--set", f"out={tmp_path}", "--set", "batch_size=8",
                   "--set", "threads=1")  # fmt: skip
    run = tmp_path / cfg.run_name
    assert str(run / "encoder") in done.stdout
    for name in ("config.yaml", "log.txt", "history.csv", "state.safetensors"):
        assert (run / name).is_file(), name
    encoder, meta = load_checkpoint(run / "encoder")
    about = json.loads((run / "encoder/pretraining.json").read_text())
    assert meta.model == cfg.encoder and meta.num_classes == 0 and encoder.num_features > 0
    assert about["method"] == cfg.method and about["in_chans"] == meta.in_chans == 12
    assert about["pool"]["ptbxl"] > 0 and about["pool"]["cinc2017"] > 0 and about["fs"] == 100


@pytest.fixture
def synthetic_root(tmp_path, monkeypatch):
    """A data root holding a small synthetic PTB-XL, with its caches under tmp_path."""
    monkeypatch.setenv("ECGLAB_CACHE", str(tmp_path / "cache"))
    synthetic_ptbxl(tmp_path / "data/ptbxl")
    return tmp_path / "data"


def _tiny(root, out, **extra) -> dict:
    return {"method": "st_mem", "encoder": "st_mem_vit", "encoder_kwargs": {"dim": 24, "depth": 1, "num_heads": 2},
            "datasets": ["ptbxl"], "root": str(root), "crop_seconds": 2.5, "epochs": 2, "batch_size": 16,
            "threads": 1, "out": str(out)} | extra  # fmt: skip


def test_resume_after_an_interruption_gives_the_same_encoder(synthetic_root, tmp_path):
    """ST-MEM draws its masks from the global RNG: the hardest method to resume bit for bit."""
    whole = pretrain(from_dict(_tiny(synthetic_root, tmp_path / "runs", name="whole")))
    killed = from_dict(_tiny(synthetic_root, tmp_path / "runs", name="killed"))
    with pytest.raises(Interrupted):
        pretrain(killed, progress=stop_at_epoch(2))
    assert not (tmp_path / "runs/killed/encoder").exists()
    resumed = pretrain(killed)
    a, b = load_file(whole / "encoder/model.safetensors"), load_file(resumed / "encoder/model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    untrained = create_model("st_mem_vit", 0, 12, dim=24, depth=1, num_heads=2).state_dict()
    assert not all(np.array_equal(a[k], untrained[k].numpy()) for k in a)  # it did learn something
    drop_time = lambda path: [row.rsplit(",", 1)[0] for row in path.read_text().splitlines()]  # noqa: E731
    assert drop_time(whole / "history.csv") == drop_time(resumed / "history.csv")
    assert "resumed after epoch 0" in (resumed / "log.txt").read_text()


def test_a_pool_holding_an_evaluated_fold_is_refused_by_name(synthetic_root, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps(_tiny(synthetic_root, tmp_path / "runs", evaluated={"ptbxl": [8, 10]})))
    refused = run_cli("pretrain", str(recipe), "--dry-run", check=False)
    assert refused.returncode == 2
    assert "the pool would hold fold 8 of ptbxl" in refused.stderr and "val_fold/test_fold" in refused.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.data
def test_records_too_short_for_the_views_are_skipped_by_name_and_the_rest_go_on(cinc2017_root, tmp_path):
    """CinC 2017 records last 9 to 60 s: two 6-s CMSC segments skip the shorter ones, by name."""
    cfg = from_dict({"method": "clocs", "encoder": "fcn_wang", "segment_seconds": 6, "datasets": ["cinc2017"],
                     "evaluated": {}, "batch_size": 8, "threads": 1, "dry_run": True, "out": str(tmp_path)})  # fmt: skip
    run = pretrain(cfg)
    skipped = [line for line in (run / "log.txt").read_text().splitlines() if " skipped cinc2017/" in line]
    about = json.loads((run / "encoder/pretraining.json").read_text())
    assert skipped and "needs 1200 (2 x 600)" in skipped[0] and about["skipped"] == len(skipped)
    assert about["pool"]["cinc2017"] > 0


def test_recipe_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="encoder: 'resnet1d_wang'; ST-MEM brings its own encoder"):
        from_dict({"method": "st_mem", "encoder": "resnet1d_wang"})
    with pytest.raises(ValueError, match="unknown key 'mask_ration'; did you mean 'mask_ratio'"):
        from_dict({"mask_ration": 0.5})
    with pytest.raises(ValueError, match="variant: 'cmxx' is not one of cmsc, cmlc, cmsmlc"):
        from_dict({"variant": "cmxx"})
    with pytest.raises(ValueError, match=r"datasets/evaluated: \['mitbih'\]"):
        from_dict({"datasets": ["ptbxl", "mitbih"]})
