"""CinC 2017: the label table, the single-lead signals, the shipped folds and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from data_helpers import fold_counts_even, write_cinc_record
from ecglab.data import RecordError, task_records
from ecglab.data.cinc2017 import CLASSES, CinC2017
from ecglab.data.folds import load_fold_file


@pytest.mark.data
def test_real_table(cinc2017_root):
    reader = CinC2017(cinc2017_root)
    records = reader.records
    assert reader.reference.name == "REFERENCE-v3.csv"
    assert len(records) == 8528 and reader.skipped.empty
    assert records["patient_id"].isna().all()
    with_signal = records[records["path"] != ""]
    assert len(with_signal) == 1619
    assert records["labels"].value_counts().to_dict() == {"N": 5076, "O": 2415, "A": 758, "~": 279}
    assert with_signal["labels"].value_counts().to_dict() == {"N": 620, "O": 420, "A": 419, "~": 160}
    n = with_signal["n_samples"].astype(int)
    assert n.min() >= 9 * 300 and n.max() <= 61 * 300


@pytest.mark.data
def test_real_signals(cinc2017_root):
    reader = CinC2017(cinc2017_root / "training2017")  # the folder itself works as root too
    for record_id in ("A00001", "A00003", "A00106"):
        x = reader.load_signal(record_id)
        assert x.dtype == np.float32 and x.shape == (1, reader.records.at[record_id, "n_samples"])
        assert np.isfinite(x).all() and 0.1 < np.abs(x).max() < 20  # mV
    assert reader.records.at["A00001", "fs"] == 300
    with pytest.raises(RecordError, match="signal file is missing"):
        reader.load_signal("A00018")  # in REFERENCE-v3.csv, not distributed here


@pytest.mark.data
def test_shipped_folds(cinc2017_root):
    reader = CinC2017(cinc2017_root)
    shipped = load_fold_file("cinc2017")
    assert set(shipped.index) == set(reader.records.index)
    records, y = task_records(reader.records, reader.task("rhythm"))
    assert len(records) == 8528 and reader.task().classes == CLASSES
    assert sorted(np.unique(records["fold"])) == list(range(1, 11))
    assert fold_counts_even(records["fold"].to_numpy(), y)
    # The revised and the original labels share the folds.
    original = CinC2017(cinc2017_root, reference="REFERENCE.csv").records
    assert (original["fold"] == reader.records["fold"]).all()
    assert original["labels"].value_counts()["N"] == 5050


def write_set(folder, references: dict[str, str]):
    for file_name, text in references.items():
        (folder / file_name).write_text(text)


def test_reference_preference_and_bad_rows(tmp_path):
    folder = tmp_path / "training2017"
    folder.mkdir()
    write_set(
        folder,
        {"REFERENCE.csv": "A00001,N\nA00002,A\n", "REFERENCE-v3.csv": "A00001,O\nA00002,X\nA00001,N\n"},
    )
    write_cinc_record(folder, "A00001", np.arange(600, dtype=np.int16)[None], fs=300, leads=("ECG",))
    reader = CinC2017(tmp_path)
    assert reader.records["labels"].to_dict() == {"A00001": "O"}
    skipped = reader.skipped.set_index("record_id")
    assert "unknown label 'X'" in skipped.at["A00002", "reason"]
    assert "listed twice" in skipped.at["A00001", "reason"]
    assert skipped.at["A00002", "path"].endswith("REFERENCE-v3.csv, line 2")
    x = reader.load_signal("A00001")
    assert x.shape == (1, 600) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :3], [0.0, 0.001, 0.002], atol=1e-7)  # 1000 units/mV
    assert CinC2017(tmp_path, reference="REFERENCE.csv").records["labels"].to_dict() == {
        "A00001": "N",
        "A00002": "A",
    }


def test_no_label_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="REFERENCE-v3.csv or REFERENCE.csv"):
        CinC2017(tmp_path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("short", "need 1 s"),
        ("lead", "unknown lead name 'XYZ'"),
        ("variable", "no variable 'val'"),
        ("nan", "NaN or infinite"),
        ("missing_mat", "signal file named by the header is missing"),
    ],
)
def test_bad_records(tmp_path, kind, message):
    (tmp_path / "REFERENCE-v3.csv").write_text("A00001,N\n")
    val = np.ones((1, 100 if kind == "short" else 900), dtype=np.int16)
    if kind == "nan":
        val = val.astype(np.float64)
        val[0, 5] = np.nan
    hea = write_cinc_record(
        tmp_path, "A00001", val, fs=300, leads=("XYZ" if kind == "lead" else "ECG",),
        variable="data" if kind == "variable" else "val",
    )  # fmt: skip
    if kind == "missing_mat":
        hea.with_suffix(".mat").unlink()
    reader = CinC2017(tmp_path)
    with pytest.raises(RecordError, match=message) as info:
        reader.load_signal("A00001")
    assert "A00001" in str(info.value)
