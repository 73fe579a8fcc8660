"""`evaluate_run` on run folders written here, as training would write them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

import ecglab.evaluate.evaluate as E
from ecglab.evaluate import evaluate_run

MULTILABEL = ["AF", "IAVB", "LBBB", "NSR"]
CINC2017 = ["N", "A", "O", "~"]


def fake_split(rng, n, k, multilabel):
    if multilabel:
        y = (rng.random((n, k)) < rng.uniform(0.15, 0.4, k)).astype(np.float32)
        probs = np.clip(0.35 * y + rng.random((n, k)) * 0.7, 0, 1)
    else:
        y = np.eye(k, dtype=np.float32)[rng.choice(k, n, p=np.linspace(2, 1, k) / np.linspace(2, 1, k).sum())]
        logits = 1.5 * y + rng.normal(size=(n, k))
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs.astype(np.float32)


def make_run(
    root: Path,
    *,
    classes=MULTILABEL,
    multilabel=True,
    dataset="ptbxl",
    task="rhythm",
    n=(150, 200),
    seed=0,
    history=True,
) -> Path:
    """A run folder as `ecglab train` leaves it (the contract in issue 4), with made-up predictions."""
    run = root / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "predictions").mkdir()
    config = {
        "model": "resnet1d18",
        "model_kwargs": {"drop_rate": 0.1},
        "num_classes": len(classes),
        "in_chans": 12,
        "lead_names": ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"],
        "classes": list(classes),
        "multilabel": multilabel,
        "fs": 100,
        "window_samples": 250,
        "norm": "zscore",
        "thresholds": None,
        "dataset": dataset,
        "task": task,
        "data_manifest_hash": "abc123",
        "git_commit": "0123456789abcdef",
        "ecglab_version": "0.1.0",
    }
    (run / "checkpoint" / "config.json").write_text(json.dumps(config, indent=2))
    (run / "checkpoint" / "model.safetensors").write_bytes(b"")
    (run / "config.yaml").write_text(f"model: resnet1d18\ndataset: {dataset}\nepochs: 3\n")
    rng = np.random.default_rng(seed)
    for split, size in zip(("val", "test"), n, strict=True):
        y, probs = fake_split(rng, size, len(classes), multilabel)
        np.save(run / "predictions" / f"{split}_true.npy", y)
        np.save(run / "predictions" / f"{split}_probs.npy", probs)
    if history:
        rows = ["epoch,train_loss,val_loss,val_macro_auc,val_macro_f1,lr,seconds"]
        rows += [
            f"{e},{1 / e:.3f},{1.2 / e:.3f},{0.6 + e / 20:.3f},{0.4 + e / 20:.3f},{1e-3 / e:.2e},12.5"
            for e in (1, 2, 3)
        ]
        (run / "history.csv").write_text("\n".join(rows) + "\n")
    return run


def load(run: Path, split: str):
    return (np.load(run / "predictions" / f"{split}_{kind}.npy") for kind in ("true", "probs"))


def test_multilabel_run_writes_metrics_thresholds_and_report(tmp_path):
    run = make_run(tmp_path)
    result = evaluate_run(run, n_bootstrap=100, report=False)
    on_disk = json.loads((run / "metrics.json").read_text())
    assert on_disk["thresholds"]["method"] == "per_class" and on_disk["thresholds"]["source"] == "val"
    thresholds = on_disk["thresholds"]["values"]
    assert list(thresholds) == MULTILABEL
    assert json.loads((run / "checkpoint" / "config.json").read_text())["thresholds"] == list(
        thresholds.values()
    )
    test = on_disk["test"]
    for key in (
        "macro_f1",
        "macro_auc",
        "macro_precision",
        "macro_recall",
        "exact_match_accuracy",
        "label_accuracy",
    ):
        assert test[key]["lo"] <= test[key]["value"] <= test[key]["hi"], key
    assert set(test["per_class"]["AF"]) >= {
        "f1",
        "auc",
        "precision",
        "recall",
        "average_precision",
        "support",
    }
    assert isinstance(on_disk["val"]["macro_f1"], float)
    assert on_disk["bootstrap"]["n_resamples"] == 100
    assert result["test"]["macro_f1"]["value"] == pytest.approx(test["macro_f1"]["value"])
    assert "cinc2017_score" not in test and "challenge_score" not in test


def test_test_metrics_agree_with_sklearn(tmp_path):
    run = make_run(tmp_path, seed=4)
    result = evaluate_run(run, n_bootstrap=20, report=False)
    y, probs = load(run, "test")
    pred = probs >= np.array(list(result["thresholds"]["values"].values()))
    test = result["test"]
    assert test["macro_f1"]["value"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert test["macro_auc"]["value"] == pytest.approx(skm.roc_auc_score(y, probs, average="macro"))
    assert test["exact_match_accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, pred))
    assert test["label_accuracy"]["value"] == pytest.approx(1 - skm.hamming_loss(y, pred))
    recall = skm.recall_score(y, pred, average=None)
    for k, cls in enumerate(MULTILABEL):
        assert test["per_class"][cls]["recall"]["value"] == pytest.approx(recall[k])
        assert test["per_class"][cls]["support"] == int(y[:, k].sum())


def test_thresholds_never_read_test_predictions(tmp_path, monkeypatch):
    """Corrupting every test prediction leaves the thresholds as they were; they are tuned before test is opened."""
    run = make_run(tmp_path, seed=1)
    first = evaluate_run(run, n_bootstrap=0, report=False)
    rng = np.random.default_rng(99)
    y, probs = load(run, "test")
    np.save(run / "predictions" / "test_probs.npy", rng.permutation(probs[:, ::-1]))
    np.save(run / "predictions" / "test_true.npy", 1 - y)
    opened, tuned_after = [], []
    real_load, real_tune = np.load, E.tune_thresholds

    def spy_load(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_load(path, *args, **kwargs)

    def spy_tune(y_true, y_score, **kwargs):
        tuned_after.append(list(opened))
        val_true, val_probs = load(run, "val")
        np.testing.assert_array_equal(y_true, val_true)
        np.testing.assert_array_equal(y_score, val_probs)
        return real_tune(y_true, y_score, **kwargs)

    monkeypatch.setattr(E.np, "load", spy_load)
    monkeypatch.setattr(E, "tune_thresholds", spy_tune)
    second = evaluate_run(run, n_bootstrap=0, report=False)
    assert tuned_after == [["val_true.npy", "val_probs.npy"]]
    assert second["thresholds"] == first["thresholds"]
    assert second["test"]["macro_f1"] != first["test"]["macro_f1"]


def test_global_threshold_is_one_value_for_all_classes(tmp_path):
    run = make_run(tmp_path, seed=2)
    result = evaluate_run(run, threshold="global", n_bootstrap=0, report=False)
    values = set(result["thresholds"]["values"].values())
    assert result["thresholds"]["method"] == "global" and len(values) == 1
    val_true, val_probs = load(run, "val")
    assert result["val"]["macro_f1"] == pytest.approx(
        skm.f1_score(val_true, val_probs >= values.pop(), average="macro")
    )
    assert result["test"]["macro_f1"]["lo"] is None  # no bootstrap, no interval


def test_multiclass_run_uses_argmax_and_the_cinc2017_score(tmp_path):
    run = make_run(tmp_path, classes=CINC2017, multilabel=False, dataset="cinc2017", n=(200, 300))
    result = evaluate_run(run, n_bootstrap=50, report=False)
    assert result["thresholds"]["method"] == "argmax" and result["thresholds"]["values"] is None
    assert json.loads((run / "checkpoint" / "config.json").read_text())["thresholds"] is None
    y, probs = load(run, "test")
    t, p = y.argmax(1), probs.argmax(1)
    test = result["test"]
    assert test["accuracy"]["value"] == pytest.approx(skm.accuracy_score(t, p))
    f1 = skm.f1_score(t, p, average=None, labels=range(4))
    assert test["cinc2017_score"]["value"] == pytest.approx(f1[:3].mean())
    assert test["macro_f1"]["value"] == pytest.approx(f1.mean())
    assert test["macro_auc"]["value"] == pytest.approx(
        skm.roc_auc_score(t, probs, multi_class="ovr", average="macro")
    )
    assert "exact_match_accuracy" not in test
    assert any("argmax" in note for note in result["notes"])


def test_class_without_test_positives_is_reported_and_left_out(tmp_path):
    run = make_run(tmp_path, seed=5)
    y, probs = load(run, "test")
    y[:, 2] = 0
    np.save(run / "predictions" / "test_true.npy", y)
    result = evaluate_run(run, n_bootstrap=50, report=False)
    test = result["test"]
    assert "LBBB" in test["excluded_from_macro"]
    assert test["per_class"]["LBBB"]["auc"]["value"] is None and not test["per_class"]["LBBB"]["in_macro"]
    keep = [0, 1, 3]
    pred = probs >= np.array(list(result["thresholds"]["values"].values()))
    assert test["macro_f1"]["value"] == pytest.approx(
        skm.f1_score(y[:, keep], pred[:, keep], average="macro")
    )
    assert "LBBB" not in result["bootstrap"]["kept_present"]


CHALLENGE_WEIGHTS = """,164889003,270492004,164909002,426783006,713427006,59118001
164889003,1.0,0.3,0.4,0.2,0.4,0.4
270492004,0.3,1.0,0.45,0.5,0.45,0.45
164909002,0.4,0.45,1.0,0.3,0.5,0.5
426783006,0.2,0.5,0.3,1.0,0.3,0.3
713427006,0.4,0.45,0.5,0.3,1.0,1.0
59118001,0.4,0.45,0.5,0.3,1.0,1.0
"""


def test_cinc2020_run_gets_the_challenge_score(tmp_path):
    classes = ["AF", "IAVB", "LBBB", "NSR", "CRBBB|RBBB"]
    run = make_run(tmp_path, classes=classes, dataset="cinc2020", task="scored2020", seed=6)
    weights = tmp_path / "weights.csv"
    weights.write_text(CHALLENGE_WEIGHTS)
    result = evaluate_run(run, n_bootstrap=50, challenge_weights=weights, report=False)
    score = result["test"]["challenge_score"]
    assert score["lo"] <= score["value"] <= score["hi"] and score["value"] < 1
    assert result["challenge"]["normal_class"] == "NSR"
    assert isinstance(result["val"]["challenge_score"], float)
    missing = evaluate_run(run, n_bootstrap=0, challenge_weights=tmp_path / "absent.csv", report=False)
    assert "challenge_score" not in missing["test"]
    assert any("challenge score skipped" in note for note in missing["notes"])


def test_helpful_errors(tmp_path):
    with pytest.raises(ValueError, match="threshold='youden'"):
        evaluate_run(tmp_path, threshold="youden")
    with pytest.raises(FileNotFoundError, match="ecglab train"):
        evaluate_run(tmp_path)
    run = make_run(tmp_path)
    np.save(run / "predictions" / "test_probs.npy", np.zeros((5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="test_probs.npy: expected shape"):
        evaluate_run(run, report=False)
    (run / "predictions" / "val_true.npy").unlink()
    with pytest.raises(FileNotFoundError, match="val_true.npy"):
        evaluate_run(run, report=False)
