import json

import pytest

from helpers import run_cli


@pytest.mark.data
def test_info_json_ptbxl_rhythm(ptbxl_root):
    out = json.loads(run_cli("data", "info", "ptbxl", "--root", str(ptbxl_root), "--json").stdout)
    assert out["dataset"] == "ptbxl" and out["task"] == "rhythm" and len(out["classes"]) == 12
    assert set(out["splits"]) == {"train", "val", "test"}
    assert out["splits"]["val"]["folds"] == [9] and out["splits"]["test"]["folds"] == [10]
    assert sum(s["with_signal"] for s in out["splits"].values()) <= 1797
    for split in out["splits"].values():
        assert len(split["counts"]) == 12 and split["with_signal"] <= split["records"]


@pytest.mark.data
def test_info_json_cpsc_counts_add_up(cpsc2018_root):
    out = json.loads(run_cli("data", "info", "cpsc2018", "--json").stdout)
    totals = [sum(s["counts"][i] for s in out["splits"].values()) for i in range(9)]
    assert totals == [722, 1221, 236, 1857, 918, 616, 869, 220, 700]
    assert sum(s["records"] for s in out["splits"].values()) == 6877


@pytest.mark.data
def test_info_table_and_other_task(ptbxl_root):
    proc = run_cli("data", "info", "ptbxl", "--task", "superdiagnostic")
    assert "superdiagnostic" in proc.stdout and "STTC" in proc.stdout and "with signal" in proc.stdout


def test_info_errors_are_clear(tmp_path):
    proc = run_cli("data", "info", "nosuch", check=False)
    assert proc.returncode == 2 and "unknown dataset 'nosuch'" in proc.stderr
    proc = run_cli("data", "info", "ptbxl", "--root", str(tmp_path), check=False)
    assert proc.returncode == 2 and "no ptbxl_database.csv" in proc.stderr
    proc = run_cli("data", "info", "ptbxl", "--task", "rythm", check=False)
    assert proc.returncode == 2 and "has no task 'rythm'" in proc.stderr
