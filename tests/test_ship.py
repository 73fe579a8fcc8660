"""`benchmarks/ship.py`: from finished runs to a shipped weights folder, chosen on fold 9, scored on fold 10 once."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ecglab.infer.predictor import Predictor
from ecglab.train.config import from_dict
from ecglab.train.loop import fit
from helpers import synthetic_ptbxl, write_wfdb

REPO = Path(__file__).parents[1]


def tiny_runs(tmp_path, seeds=(0, 1)):
    """Two seeds of fcn_wang on a synthetic PTB-XL rhythm task, as the bench writes them."""
    root = synthetic_ptbxl(tmp_path / "ptbxl", n=60)
    for seed in seeds:
        fit(from_dict({"model": "fcn_wang", "dataset": "ptbxl", "task": "rhythm", "root": str(root),
                       "cache": str(tmp_path / "cache"), "out": str(tmp_path / "runs"), "epochs": 2,
                       "batch_size": 16, "lr": 0.003, "crop_seconds": 2.5, "patience": 0, "threads": 1,
                       "bootstrap": 20, "seed": seed}))  # fmt: skip
    return root


def test_ship_chooses_on_fold_9_calibrates_and_writes_the_weights_and_card(tmp_path):
    root = tiny_runs(tmp_path)
    out, card = tmp_path / "weights" / "tiny_rhythm", tmp_path / "docs" / "tiny_rhythm.md"
    args = ["--name", "tiny_rhythm", "--runs", str(tmp_path / "runs" / "fcn_wang-ptbxl-rhythm-s*"),
            "--out", str(out), "--card", str(card), "--bootstrap", "30", "--threads", "1",
            "--train-command", "ecglab bench tiny.yaml"]  # fmt: skip
    proc = subprocess.run([sys.executable, "benchmarks/ship.py", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["temperature"] > 0 and len(config["thresholds"]) == 2
    text = card.read_text()
    rows = [
        line for line in text.splitlines() if line.startswith("| fcn_wang") or line.startswith("| ensemble")
    ]
    assert len(rows) == 3  # the two runs and their seeds' ensemble (the same as "all runs": not repeated)
    aucs = {line.split("|")[1].strip(): float(line.split("|")[3]) for line in rows}
    chosen = next(name for name in aucs if "(chosen)" in name)
    assert aucs[chosen] >= max(aucs.values()) - 0.001
    if chosen.startswith("ensemble"):
        assert config["model"] == "ensemble" and len(config["model_kwargs"]["members"]) == 2
    assert "expected calibration error" in text and "fold 10 (test)" in text and "macro AUC" in text
    assert "```\necglab bench tiny.yaml\npython benchmarks/ship.py --name tiny_rhythm" in text
    assert (card.parent / "tiny_rhythm_reliability.png").read_bytes()[:4] == b"\x89PNG"
    # the folder is a checkpoint predict uses, its probabilities calibrated by the temperature
    x = np.random.default_rng(0).standard_normal((12, 1000))
    rec = write_wfdb(tmp_path / "rec", x, 100)
    from ecglab.infer.files import read_ecg

    prediction = Predictor.from_checkpoint(out).predict(read_ecg(rec))
    assert set(prediction.probabilities) == {"AFIB", "SR"}
    # re-runnable: a second build replaces the folder whole
    again = subprocess.run([sys.executable, "benchmarks/ship.py", *args], cwd=REPO, capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "config.json").read_text())["temperature"] == config["temperature"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny_rhythm"]
    assert root.is_dir()


def test_ship_refuses_runs_of_different_tasks(tmp_path):
    tiny_runs(tmp_path, seeds=(0,))
    run = tmp_path / "runs" / "fcn_wang-ptbxl-rhythm-s0"
    other = tmp_path / "runs" / "other-s0"
    import shutil

    shutil.copytree(run, other)
    config = json.loads((other / "checkpoint" / "config.json").read_text())
    (other / "checkpoint" / "config.json").write_text(
        json.dumps(config | {"fs": 250.0, "window_samples": 625})
    )
    proc = subprocess.run([sys.executable, "benchmarks/ship.py", "--name", "x", "--runs", str(tmp_path / "runs" / "*"),
                           "--out", str(tmp_path / "w"), "--card", str(tmp_path / "c.md")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode != 0 and "differs from" in proc.stderr and not (tmp_path / "w").exists()


def synthetic_cinc2017(root, per_fold=(40, 8, 8)):
    """A CinC 2017 tree of one-lead 300 Hz records whose four classes differ in rate; record names
    taken from the shipped fold file so that `per_fold` (train, val, test) records land in each split."""
    from data_helpers import write_cinc_record
    from ecglab.data.folds import load_fold_file

    folds = load_fold_file("cinc2017")
    names = [*folds[folds <= 8].index[: per_fold[0]], *folds[folds == 9].index[: per_fold[1]],
             *folds[folds == 10].index[: per_fold[2]]]  # fmt: skip
    folder = root / "training2017"
    rng = np.random.default_rng(0)
    t = np.arange(300 * 12) / 300
    rows = []
    for i, name in enumerate(names):
        label, rate = [("N", 1.0), ("A", 2.2), ("O", 1.6), ("~", 0.0)][i % 4]
        x = np.sin(2 * np.pi * rate * t + rng.uniform(0, 6)) + rng.normal(
            0, 0.6 if label == "~" else 0.1, t.size
        )
        write_cinc_record(folder, name, (x * 500).astype(np.int16)[None], fs=300, leads=("ECG",))
        rows.append(f"{name},{label}")
    (folder / "REFERENCE-v3.csv").write_text("\n".join(rows) + "\n")
    return root


def test_ship_handles_the_one_of_k_cinc2017_task(tmp_path):
    root = synthetic_cinc2017(tmp_path / "cinc2017")
    fit(from_dict({"model": "fcn_wang", "dataset": "cinc2017", "task": "rhythm", "root": str(root),
                   "cache": str(tmp_path / "cache"), "out": str(tmp_path / "runs"), "fs": 100, "seconds": 12,
                   "crop_seconds": 5, "eval_stride_seconds": 2.5, "epochs": 2, "batch_size": 16, "lr": 0.003,
                   "patience": 0, "threads": 1, "bootstrap": 20}))  # fmt: skip
    out, card = tmp_path / "w" / "tiny_single_lead", tmp_path / "docs" / "tiny_single_lead.md"
    proc = subprocess.run([sys.executable, "benchmarks/ship.py", "--name", "tiny_single_lead", "--runs",
                           str(tmp_path / "runs" / "*-cinc2017-rhythm-s*"), "--out", str(out), "--card", str(card),
                           "--bootstrap", "30", "--threads", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["thresholds"] is None and config["multilabel"] is False and config["temperature"] > 0
    text = card.read_text()
    assert "CinC 2017 score (mean F1 of N, A, O)" in text and "argmax" in text and "softmax" in text
