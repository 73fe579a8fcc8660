"""`ecglab bench benchmarks/notes_tables.yaml --dry-run`: the notes' three tables end to end, as a user runs it.

PTB-XL and CPSC 2018 come from the shared subsets under the data root; Chapman's waveforms are
not there, so the test writes a small release in its published layout (Diagnostics.xlsx and one
CSV per record) into a data root of its own that links the other two.
"""

import csv
from pathlib import Path

import pytest

from data_helpers import microvolts, write_chapman_csv, write_release
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
