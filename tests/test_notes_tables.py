"""`ecglab bench benchmarks/notes_tables.yaml --dry-run`: the notes' three tables end to end, as a user runs it.

PTB-XL and CPSC 2018 come from the shared subsets under the data root; Chapman's waveforms are
not there, so the test writes a small release in its published layout (Diagnostics.xlsx and one
CSV per record) into a data root of its own that links the other two.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from data_helpers import microvolts, write_chapman_csv, write_release
from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.train.config import from_dict
from ecglab.train.tables import get_writer
from helpers import run_cli

SPEC = Path(__file__).resolve().parents[1] / "benchmarks" / "notes_tables.yaml"
CHAPMAN_RHYTHMS = ["AFIB", "ST", "SB", "SR"]  # one rhythm of each of the four groups (ST is GSVT)


def data_root(tmp_path, shared: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    for name in ("ptbxl", "cpsc2018"):
        if not (shared / name).is_dir():
            pytest.skip(f"dataset {name!r} not found at {shared / name}; set ECGLAB_DATA")
        (root / name).symlink_to(shared / name)
    rows = [(f"MUSE_{i:03d}", CHAPMAN_RHYTHMS[i % 4]) for i in range(40)]
    folder = write_release(root / "chapman", rows)
    for i, (name, _) in enumerate(rows):
        write_chapman_csv(folder / f"{name}.csv", microvolts(seed=i), header=False)
    return root


@pytest.mark.slow
@pytest.mark.data
def test_notes_tables_dry_run_writes_the_three_datasets_tables(tmp_path):
    from ecglab.paths import data_root as shared_root

    root = data_root(tmp_path, shared_root())
    env = {"ECGLAB_DATA": str(root), "ECGLAB_CACHE": str(tmp_path / "cache")}
    proc = run_cli(
        "bench", str(SPEC), "--dry-run", "--model", "mobilenetv2_1d", env=env, cwd=tmp_path, timeout=900
    )
    assert proc.stdout.count(": training") == 3
    out = tmp_path / "runs/bench/notes_tables-dry-run"
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["dataset"], r["task"]) for r in rows) == [
        ("chapman", "rhythm"), ("cpsc2018", "arrhythmia"), ("ptbxl", "rhythm")]  # fmt: skip
    page = (out / "results_notes.md").read_text()
    for title in ("## cpsc2018 · arrhythmia · 9 classes", "## ptbxl · rhythm · 12 classes",
                  "## chapman · rhythm · 4 classes"):  # fmt: skip
        assert title in page
    assert page.count("### thresholds tuned on fold 9") == 2 and page.count("### fixed threshold 0.5") == 2
    assert page.count("### argmax (multi-class") == 1
    assert (
        "| model | I-AVB | AF | LBBB | RBBB | NORM | PAC | STD | STE | PVC | macro F1 | macro AUC |" in page
    )
    assert page.count("| mobilenetv2_1d | ") == 5
    assert not (tmp_path / "benchmarks/notes_tables.csv").exists()  # a dry run leaves the spec's table alone


def test_notes_writer_scores_the_test_fold_at_tuned_thresholds_and_at_one_half(tmp_path):
    """Hand-checked: class A has F1 2/3 at its tuned 0.6 and 0.8 at 0.5; class B is right under both."""
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "predictions").mkdir()
    meta = CheckpointMeta(model="m", num_classes=2, in_chans=1, lead_names=("I",), classes=("A", "B"),
                          multilabel=True, fs=100, window_samples=1000)  # fmt: skip
    (run / "checkpoint/config.json").write_text(json.dumps(meta.to_json()))
    np.save(run / "predictions/test_true.npy", np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=np.float32))
    probs = [[0.55, 0.1], [0.9, 0.2], [0.3, 0.7], [0.52, 0.4]]
    np.save(run / "predictions/test_probs.npy", np.array(probs, dtype=np.float32))
    (run / "metrics.json").write_text(json.dumps({"thresholds": {"values": {"A": 0.6, "B": 0.5}}}))
    page = get_writer("notes")([(from_dict({"model": "m", "dataset": "d", "task": "t"}), run)])
    tuned, fixed = page.split("### thresholds tuned on fold 9")[1].split("### fixed threshold 0.5")
    assert "| m | 0.6667 | 1.0000 | 0.8333 | 1.0000 |" in tuned
    assert "| m | 0.8000 | 1.0000 | 0.9000 | 1.0000 |" in fixed
