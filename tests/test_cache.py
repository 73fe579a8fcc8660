import json

import numpy as np
import pytest

from ecglab.data.dataset import CachedSplit, WindowDataset
from ecglab.data.preprocess import resample
from ecglab.data.ptbxl import PTBXL
from helpers import run_cli, write_ptbxl, write_wfdb


def small_ptbxl(root, seconds=10):
    rng = np.random.default_rng(0)
    records = [(i, i, fold, {"NORM": 100.0, "SR": 0.0} if i % 2 else {"AFIB": 0.0}, rng.normal(0, 0.3, (12, seconds * 100)))
               for i, fold in enumerate([1, 2, 3, 4, 9, 10], start=1)]  # fmt: skip
    root = write_ptbxl(root, records)
    (root / "scp_statements.csv").write_text(
        ",description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass\n"
        "NORM,normal ECG,1.0,,,NORM,NORM\nSR,sinus rhythm,,,1.0,,\nAFIB,atrial fibrillation,,,1.0,,\n"
    )
    return root


def test_prepare_is_incremental_and_notices_changed_input(tmp_path):
    root = small_ptbxl(tmp_path / "ptbxl")
    out = tmp_path / "cache"
    args = ("data", "prepare", "ptbxl", "--root", str(root), "--out", str(out), "--workers", "1")
    assert "built in" in run_cli(*args).stdout
    first = json.loads((out / "manifest.json").read_text())
    assert "up to date, nothing to do" in run_cli(*args).stdout
    write_wfdb(root / "records100/00000/00003_lr", np.random.default_rng(1).normal(0, 0.3, (12, 1000)), 100)
    proc = run_cli(*args)
    second = json.loads((out / "manifest.json").read_text())
    assert second["inputs_hash"] != first["inputs_hash"]
    assert "built in" in proc.stdout and "skipped" not in proc.stderr
    assert "up to date" in run_cli(*args, "--fs", "100").stdout
    assert "built in" in run_cli(*args[:-2], "--seconds", "5", "--workers", "1").stdout


def test_two_processes_preparing_one_cache_build_it_once(tmp_path):
    """Bench shards side by side reach a dataset together: one builds, the other waits and reuses."""
    import subprocess
    import sys

    root = small_ptbxl(tmp_path / "ptbxl")
    out = tmp_path / "cache"
    args = ("data", "prepare", "ptbxl", "--root", str(root), "--out", str(out), "--workers", "1")
    procs = [
        subprocess.Popen([sys.executable, "-m", "ecglab", *args], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted("built in" in o for o in outputs) == [False, True], outputs
    assert json.loads((out / "manifest.json").read_text())["splits"]["train"]["records"] == 4


def test_cache_holds_resampled_records_and_windows(tmp_path):
    root = small_ptbxl(tmp_path / "ptbxl")
    out = tmp_path / "cache"
    run_cli(
        "data", "prepare", "ptbxl", "--root", str(root), "--out", str(out), "--fs", "50", "--workers", "1"
    )
    reader = PTBXL(root)
    train = CachedSplit(out, "train")
    assert train.signals.shape == (4 * 500, 12) and train.fs == 50
    first = train.meta["record_id"][0]
    np.testing.assert_allclose(train.record(0), resample(reader.load_signal(first), 100, 50), atol=1e-5)
    task = reader.task("rhythm")
    ds = WindowDataset(out, "train", task, seconds=2.5, mode="random", norm="none")
    x, y = ds[0]
    assert x.shape == (12, 125) and y.shape == (2,)  # AFIB, SR
    sliding = WindowDataset(out, "test", task, seconds=2.5, mode="sliding", norm="zscore")
    assert len(sliding) == 4 and (sliding.record_index == 0).all()


@pytest.mark.data
@pytest.mark.slow
def test_prepare_real_ptbxl_subset(ptbxl_root, tmp_path):
    out = tmp_path / "cache"
    proc = run_cli("data", "prepare", "ptbxl", "--root", str(ptbxl_root), "--out", str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(s["records"] for s in manifest["splits"].values()) == 1797
    assert manifest["skipped"] == [] and len(manifest["missing_signal"]) == 21837 - 1797
    assert "20040 record(s) of the label table have no signal file here" in proc.stderr.replace("\n", " ")
    test = WindowDataset(out, "test", PTBXL(ptbxl_root).task("rhythm"), mode="centre")
    x, y = test[0]
    assert x.shape == (12, 1000) and np.isfinite(x.numpy()).all() and y.sum() >= 1
