"""Broken checkpoints are refused with an error naming the file and what is wrong; NaN is never served."""

import hashlib
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from ecglab.checkpoint_meta import CheckpointMeta, read_meta
from ecglab.infer.files import read_ecg
from ecglab.infer.predictor import Predictor
from ecglab.infer.synthetic import write_example
from ecglab.train.checkpoint import load_checkpoint, save_checkpoint
from helpers import run_cli
from infer_helpers import make_checkpoint


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("good") / "ckpt")


@pytest.fixture
def ckpt(good, tmp_path):
    return shutil.copytree(good, tmp_path / "ckpt")


def edit_config(ckpt, **changes):
    config = json.loads((ckpt / "config.json").read_text())
    config.update(changes)
    for key in [k for k, v in changes.items() if v is ...]:
        del config[key]
    (ckpt / "config.json").write_text(json.dumps(config))


def rewrite_tensors(ckpt, change):
    """Replace model.safetensors by `change(tensors)`, keeping the config's hash out of the way."""
    tensors = load_file(ckpt / "model.safetensors")
    save_file(change(tensors), ckpt / "model.safetensors")
    edit_config(ckpt, weights_sha256=...)


def test_config_errors_name_the_file_and_the_key(ckpt):
    cases = [
        (lambda: edit_config(ckpt, classes=...), "config.json: missing key 'classes'"),
        (lambda: edit_config(ckpt, num_classes="3"), "config.json: key 'num_classes' should be an integer, got '3'"),
        (lambda: edit_config(ckpt, multilabel=1), "key 'multilabel' should be true or false"),
        (lambda: edit_config(ckpt, thresholds=[0.5, None, 0.5]), "key 'thresholds' should be a list of numbers or null"),
        (lambda: edit_config(ckpt, classes=["A", "B"]), "config.json: 2 classes for num_classes 3"),
        (lambda: edit_config(ckpt, colour="red"), "config.json: unknown key 'colour'"),
        (lambda: edit_config(ckpt, format=2), "checkpoint format 2; this ecglab reads format 1"),
        (lambda: edit_config(ckpt, temperature=0), "config.json: temperature 0 must be positive"),
        (lambda: edit_config(ckpt, model="resnet18"), "config.json: cannot build model 'resnet18'"),
        (lambda: edit_config(ckpt, model_kwargs={"wings": 2}), "cannot build model 'resnet1d_wang'.*wings"),
        (lambda: (ckpt / "config.json").write_text('{"model": "resnet1d_wang",'), r"config.json: not valid JSON \("),
        (lambda: (ckpt / "config.json").write_text("[1, 2]"), "config.json: expected a JSON object"),
        (lambda: (ckpt / "config.json").write_bytes(b"\xff\xfe\x00garbage"), "config.json: not a text file"),
    ]  # fmt: skip
    original = (ckpt / "config.json").read_text()
    for damage, message in cases:
        damage()
        with pytest.raises(ValueError, match=message):
            load_checkpoint(ckpt)
        (ckpt / "config.json").write_text(original)
    load_checkpoint(ckpt)  # restored: loads again


def test_truncated_or_foreign_weights_file(ckpt):
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    for damaged in (data[: len(data) // 2], data[:5], b"", b"PK\x03\x04 a zip, not tensors" * 10):
        weights.write_bytes(damaged)
        with pytest.raises(ValueError, match="ckpt/model.safetensors: truncated or not a safetensors file"):
            load_checkpoint(ckpt)


def test_a_changed_byte_fails_the_recorded_hash(ckpt):
    weights = ckpt / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-4] ^= 1  # the lowest mantissa bit of the last float: a finite, plausible, different weight
    weights.write_bytes(bytes(data))
    with pytest.raises(
        ValueError, match="model.safetensors: its SHA-256 differs from the one config.json records"
    ):
        load_checkpoint(ckpt)


def without_bias(t):
    return {k: v for k, v in t.items() if k != "head.fc.2.bias"}


@pytest.mark.parametrize(
    "change, message",
    [
        (without_bias, "model.safetensors: misses tensor.*'head.fc.2.bias'"),
        (lambda t: t | {"extra.weight": torch.zeros(2)}, "model.safetensors: has unexpected tensor.*'extra.weight'"),
        (lambda t: t | {"head.fc.2.weight": torch.zeros(5, 128)},
         r"tensor 'head.fc.2.weight' has shape \(5, 128\), the model expects \(3, 128\)"),
        (lambda t: t | {"head.fc.2.bias": torch.zeros(3, dtype=torch.int32)},
         "tensor 'head.fc.2.bias' is torch.int32, the model expects torch.float32"),
    ],
)  # fmt: skip
def test_missing_extra_and_misshapen_tensors_are_named(ckpt, change, message):
    rewrite_tensors(ckpt, change)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(ckpt)


def test_non_finite_weights_are_refused_at_load(ckpt):
    def poison(tensors):
        tensors["stem.0.conv.weight"][0, 0, 0] = float("nan")
        return tensors

    rewrite_tensors(ckpt, poison)
    with pytest.raises(ValueError, match="tensor 'stem.0.conv.weight' holds 1 NaN or infinite value"):
        load_checkpoint(ckpt)


def test_the_shipped_weights_load_unchanged():
    from ecglab.infer import default_models

    shipped = default_models()
    assert shipped, "no shipped weights found"
    for folder in shipped.values():
        model, meta = load_checkpoint(folder)
        assert meta.format == 1 and meta.num_classes == len(meta.classes)
        if meta.weights_sha256 is not None:  # ship.py records the hash of the weights it wrote
            digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
            assert meta.weights_sha256 == digest
        assert CheckpointMeta.from_json(meta.to_json()) == meta == read_meta(folder / "config.json")


def test_predict_cli_names_the_broken_file_and_exits_non_zero(ckpt, tmp_path):
    hea = write_example(tmp_path / "rec", "sinus")
    edit_config(ckpt, classes=...)
    proc = run_cli("predict", "--model", str(ckpt), str(hea), check=False)
    assert proc.returncode == 2 and "ckpt/config.json: missing key 'classes'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_non_finite_outputs_are_an_error_never_nan_probabilities(tmp_path):
    """Finite but huge weights overflow the logits to infinity: each record is an error, exit 1."""
    folder = make_checkpoint(tmp_path / "ckpt")
    model, meta = load_checkpoint(folder)
    with torch.no_grad():
        model.head.fc[2].weight.fill_(3e38)
    save_checkpoint(folder, model, meta)
    hea = write_example(tmp_path / "rec", "sinus")
    with pytest.raises(ValueError, match="gave NaN or infinite outputs"):
        Predictor.from_checkpoint(folder).predict(read_ecg(hea))
    proc = run_cli("predict", "--model", str(folder), str(hea), "--format", "json", check=False)
    (entry,) = json.loads(proc.stdout)
    assert proc.returncode == 1 and "probabilities" not in entry
    assert "gave NaN or infinite outputs" in entry["error"]
