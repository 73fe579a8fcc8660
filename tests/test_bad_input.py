"""Every kind of bad input gets an error naming the file and the problem; `prepare` skips only those."""

import json
import re

import numpy as np
import pytest
import scipy.io

from ecglab.data import RecordError
from ecglab.data.ptbxl import PTBXL
from ecglab.data.wfdb_io import read_record
from helpers import run_cli, write_ptbxl, write_wfdb


def ecg(samples=1000, leads=12, seed=0):
    return np.random.default_rng(seed).normal(0, 0.3, (leads, samples))


def test_truncated_dat(tmp_path):
    hea = write_wfdb(tmp_path / "r", ecg(), 100)
    dat = tmp_path / "r.dat"
    dat.write_bytes(dat.read_bytes()[:10000])
    with pytest.raises(RecordError, match=r"r\.dat: truncated: holds 416 of the 1000 samples"):
        read_record(hea)


def test_header_that_disagrees_with_its_data(tmp_path):
    hea = write_wfdb(tmp_path / "r", ecg(), 100)
    hea.write_text(hea.read_text().replace("r 12 100 1000", "r 12 100 900", 1))
    with pytest.raises(RecordError, match="holds 1000 samples per signal; the header says 900"):
        read_record(hea)
    hea2 = write_wfdb(tmp_path / "s", ecg(), 100)
    lines = hea2.read_text().splitlines()
    lines[1] = lines[1].replace(" 0 I", " 0 I").rsplit(" ", 3)[0] + " 12345 0 I"
    hea2.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match="lead I: data checksum disagrees"):
        read_record(hea2)


def test_mat_without_val(tmp_path):
    write_wfdb(tmp_path / "r", ecg(), 500)
    hea = tmp_path / "r.hea"
    hea.write_text(hea.read_text().replace("r.dat 16", "r.mat 16+24"))
    scipy.io.savemat(tmp_path / "r.mat", {"data": np.zeros((12, 1000), np.int16)}, format="4")
    with pytest.raises(RecordError, match=r"r\.mat: no variable 'val' \(found: data\)"):
        read_record(hea)


def test_invalid_samples_are_nan_and_rejected(tmp_path):
    x = ecg()
    x[4, 5] = np.nan  # wfdb writes it as -32768, the format's invalid-sample value
    root = write_ptbxl(tmp_path, [(1, 1, 1, {"SR": 0.0}, x)])
    _statements(root)
    with pytest.raises(RecordError, match="1 NaN or infinite sample"):
        PTBXL(root).load_signal("00001")


def _statements(root):
    (root / "scp_statements.csv").write_text(
        ",description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass\n"
        "NORM,normal ECG,1.0,,,NORM,NORM\nSR,sinus rhythm,,,1.0,,\nAFIB,atrial fibrillation,,,1.0,,\n"
    )


@pytest.fixture
def bad_ptbxl(tmp_path):
    """A PTB-XL tree with 4 good records and one of each kind of bad one."""
    records = [
        (i, i, fold, {"NORM": 100.0, "SR": 0.0}, ecg(seed=i)) for i, fold in ((1, 1), (2, 2), (3, 9), (4, 10))
    ]
    records += [
        (5, 5, 1, {"SR": 0.0}, ecg(seed=5)),  # truncated below
        (6, 6, 1, {"AFIB": 0.0}, ecg(seed=6)),  # sampling rate contradicted below
        (7, 7, 1, {"SR": 0.0}, ecg(seed=7)),  # unknown lead name below
        (8, 8, 1, {"SR": 0.0}, ecg(samples=50, seed=8)),  # 0.5 s
        (9, 9, 1, {"FOO": 100.0}, ecg(seed=9)),  # unknown label code
        (10, 10, 1, {"SR": 0.0}, None),  # named in the table, no file
        (11, 11, 1, {"SR": 0.0}, ecg(seed=11)),  # a gain of 'e' in its header below
    ]
    root = write_ptbxl(tmp_path / "ptbxl", records)
    _statements(root)
    rec = root / "records100/00000"
    (rec / "00005_lr.dat").write_bytes((rec / "00005_lr.dat").read_bytes()[:5000])
    (rec / "00006_lr.hea").write_text(
        (rec / "00006_lr.hea").read_text().replace("00006_lr 12 100", "00006_lr 12 500")
    )
    (rec / "00007_lr.hea").write_text((rec / "00007_lr.hea").read_text().replace(" V6\n", " V7\n"))
    (rec / "00011_lr.hea").write_text(
        (rec / "00011_lr.hea").read_text().replace("1000.0(0)/mV", "e(0)/mV", 1)
    )
    return root


def test_reader_names_each_problem(bad_ptbxl):
    reader = PTBXL(bad_ptbxl)
    assert reader.skipped.to_dict("records") == [
        {"record_id": "00009", "path": str(bad_ptbxl / "ptbxl_database.csv"),
         "reason": "unknown SCP code(s) FOO (not in scp_statements.csv)"}
    ]  # fmt: skip
    expected = {
        "00005": "00005_lr.dat: truncated",
        "00006": "00006_lr.hea: header gives 500 Hz; records100/ should hold 100 Hz",
        "00007": "00007_lr.hea: unknown lead name 'V7'",
        "00008": "00008_lr.hea: only 50 samples (0.50 s at 100 Hz); need 1 s",
        "00010": "named in the label table but its signal file is missing",
        "00011": "00011_lr.hea: line 2: ADC gain 'e' is not a number",
    }
    for record_id, message in expected.items():
        with pytest.raises(RecordError, match=re.escape(message)):
            reader.load_signal(record_id)


def test_prepare_skips_bad_records_lists_them_and_keeps_the_rest(bad_ptbxl, tmp_path):
    out = tmp_path / "cache"
    proc = run_cli("data", "prepare", "ptbxl", "--root", str(bad_ptbxl), "--out", str(out), "--workers", "1")
    manifest = json.loads((out / "manifest.json").read_text())
    reasons = {item["record_id"]: item["reason"] for item in manifest["skipped"]}
    assert set(reasons) == {"00005", "00006", "00007", "00008", "00009", "00011"}
    for record_id, reason in reasons.items():
        assert f"skipped {record_id}: " in proc.stderr and reason in proc.stderr
    assert manifest["missing_signal"] == ["00010"]
    assert manifest["splits"]["train"]["records"] == 2
    assert manifest["splits"]["val"]["records"] == 1 and manifest["splits"]["test"]["records"] == 1
    assert "6 skipped" in proc.stdout
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("cache"))
    assert left == ["cache", "cache.lock"]  # no .partial; the lock shards take turns on stays
