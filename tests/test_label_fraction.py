"""`label_fraction`: a seeded, patient-wise subset of the training records that keeps every class."""

import numpy as np
import pytest
import yaml

from ecglab.checkpoint_meta import read_meta
from ecglab.train.config import load_config
from ecglab.train.distributed import World
from ecglab.train.label_fraction import label_subset
from ecglab.train.loop import build_datasets
from helpers import run_cli, synthetic_ptbxl, write_config


def _table(n_patients=200, seed=0):
    """Records of patients with one to three records each; class 2 rare (two patients)."""
    rng = np.random.default_rng(seed)
    patients = np.repeat(np.arange(n_patients), rng.integers(1, 4, n_patients))
    y = np.zeros((len(patients), 3), dtype=np.float32)
    y[:, 0] = 1
    y[rng.random(len(patients)) < 0.2, 1] = 1
    y[np.isin(patients, [17, 123]), 2] = 1
    return y, patients


def test_the_subset_is_patient_wise_seeded_and_keeps_every_class():
    y, patients = _table()
    subset = label_subset(y, patients, 0.05, seed=3, classes=["a", "b", "rare"])
    chosen = set(patients[subset.positions])
    assert set(np.flatnonzero(np.isin(patients, list(chosen)))) == set(subset.positions)  # whole patients
    assert subset.patients == len(chosen) and subset.total == len(y)
    assert y[subset.positions].sum(axis=0).min() >= 1 and subset.missing == ()
    target = round(0.05 * len(y))
    assert target <= len(subset.positions) <= target + 2 + 3 * 2  # the rare class's patients on top
    again = label_subset(y, patients, 0.05, seed=3)
    other = label_subset(y, patients, 0.05, seed=4)
    assert np.array_equal(again.positions, subset.positions)
    assert not np.array_equal(other.positions, subset.positions)
    assert np.array_equal(label_subset(y, patients, 1.0, seed=3).positions, np.arange(len(y)))
    common = label_subset(y, patients, 0.5, seed=0)
    assert abs(y[common.positions, 1].sum() - 0.5 * y[:, 1].sum()) <= 0.2 * y[:, 1].sum()


def test_records_without_a_patient_are_their_own_patients_and_absent_classes_are_named():
    y = np.array([[1, 0]] * 50, dtype=np.float32)
    subset = label_subset(y, [None] * 25 + [float("nan")] * 25, 0.1, seed=0, classes=["SR", "AFIB"])
    assert len(subset.positions) == 5 and subset.patients == 5 and subset.missing == ("AFIB",)
    assert "5 of 50 training records (5 patients); no positive of AFIB" in subset.describe()
    with pytest.raises(ValueError, match=r"label_fraction: 0 must lie in \(0, 1\]"):
        label_subset(y, range(50), 0, seed=0)


def test_train_on_a_fraction_records_it_in_the_log_and_the_checkpoint(tmp_path):
    root = synthetic_ptbxl(tmp_path / "ptbxl", n=120)
    recipe = write_config(tmp_path / "r.yaml", root, tmp_path, label_fraction=0.25, batch_size=8, epochs=1)
    config = load_config(recipe)
    assert config.run_name == "fcn_wang-ptbxl-rhythm-frac0.25-s0"
    data = build_datasets(config, World())
    full = build_datasets(load_config(recipe, ["label_fraction=1"]), World())
    total, classes = data.subset.total, full.train.y.sum(axis=0)
    assert round(total / 4) <= len(data.train) <= round(total / 4) + 8
    assert (data.train.y.sum(axis=0) >= np.round(classes / 4)).all()  # each class keeps its share
    assert set(data.train.keep) < set(full.train.keep)  # training records only: val and test untouched
    assert len(data.eval_sets["test"].y) == len(full.eval_sets["test"].y)
    run_cli("train", str(recipe), "--dry-run")
    run = tmp_path / "runs" / config.run_name
    meta = read_meta(run / "checkpoint/config.json")
    assert meta.label_fraction == 0.25 and meta.train_records == len(data.train)
    assert (
        f"label_fraction 0.25: {len(data.train)} of {data.subset.total} training records"
        in (run / "log.txt").read_text()
    )
    assert yaml.safe_load((run / "config.yaml").read_text())["label_fraction"] == 0.25


def test_a_fraction_smaller_than_a_batch_is_refused_with_the_counts(tmp_path):
    root = synthetic_ptbxl(tmp_path / "ptbxl", n=120)
    recipe = write_config(tmp_path / "r.yaml", root, tmp_path, label_fraction=0.05, batch_size=16)
    refused = run_cli("train", str(recipe), "--dry-run", check=False)
    assert refused.returncode == 2
    assert (
        "label_fraction 0.05: 6 of 96 training records (6 patients), 12 validation records" in refused.stderr
    )
    assert "too few for batch size 16" in refused.stderr
