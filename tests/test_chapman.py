"""Chapman-Shaoxing: Diagnostics.xlsx, the CSV files (with and without a header row), the JS WFDB form."""

from __future__ import annotations

import numpy as np
import pytest

from data_helpers import fold_counts_even, microvolts, write_chapman_csv, write_cinc_record, write_release
from ecglab.data import RecordError, task_records
from ecglab.data.chapman import RHYTHMS, Chapman
from ecglab.data.folds import load_fold_file
from ecglab.data.leads import STANDARD_LEADS

RHYTHM_COUNTS = {
    "SB": 3889, "SR": 1826, "AFIB": 1780, "ST": 1568, "SVT": 587, "AF": 445,
    "SA": 399, "AT": 121, "AVNRT": 16, "AVRT": 8, "SAAWR": 7,
}  # fmt: skip


@pytest.fixture(scope="module")
def real(request):
    from conftest import dataset_dir

    return Chapman(dataset_dir("chapman"))


@pytest.mark.data
def test_real_counts(real):
    records = real.records
    assert len(records) == 10646 and real.skipped.empty
    assert (records["patient_id"] == records.index).all()  # one record per patient
    assert (records["path"] == "").all()  # only the workbooks are distributed here
    assert records["labels"].value_counts().to_dict() == RHYTHM_COUNTS
    kept, y = task_records(records, real.task("rhythm"))
    assert real.task().classes == ("AFIB", "GSVT", "SB", "SR")
    assert y.sum(axis=0).astype(int).tolist() == [2225, 2307, 3889, 2225] and len(kept) == 10646
    _, y11 = task_records(records, real.task("rhythm11"))
    assert dict(zip(RHYTHMS, y11.sum(axis=0).astype(int).tolist(), strict=True)) == RHYTHM_COUNTS
    with pytest.raises(RecordError, match="signal file is missing"):
        real.load_signal(records.index[0])


@pytest.mark.data
def test_shipped_folds(real):
    shipped = load_fold_file("chapman")
    assert len(shipped) == 10646 and set(shipped.index) == set(real.records.index)
    _, y = task_records(real.records, real.task())
    folds = real.records["fold"].to_numpy()
    assert (folds == shipped.reindex(real.records.index).to_numpy()).all()
    assert fold_counts_even(folds, y)


def test_csv_with_and_without_header(tmp_path):
    folder = write_release(
        tmp_path, [("MUSE_A", "AFIB"), ("MUSE_B", "SA"), ("MUSE_C", "XYZ"), ("MUSE_D", "SB")]
    )
    x = microvolts()
    order = [11, 0, 5, 1, 2, 3, 4, 6, 7, 8, 9, 10]  # a header row in another order is followed
    write_chapman_csv(folder / "MUSE_A.csv", x[order], [STANDARD_LEADS[i] for i in order])
    write_chapman_csv(folder / "MUSE_B.csv", x, header=False)
    reader = Chapman(tmp_path)
    records = reader.records
    assert records["labels"].to_dict() == {"MUSE_A": "AFIB", "MUSE_B": "SA", "MUSE_D": "SB"}
    assert records.loc["MUSE_D", "path"] == "" and records.loc["MUSE_A", "path"].endswith(
        "ECGData/MUSE_A.csv"
    )
    assert reader.skipped["record_id"].tolist() == ["MUSE_C"]
    assert "unknown rhythm 'XYZ'" in reader.skipped.at[0, "reason"]
    assert records["fold"].between(1, 10).all()  # not in the shipped file: folds of their own
    for record_id in ("MUSE_A", "MUSE_B"):
        signal = reader.load_signal(record_id)
        assert signal.dtype == np.float32 and signal.shape == (12, 5000)
        np.testing.assert_allclose(signal, x / 1000, atol=1e-6)  # µV -> mV, standard order
    _, y = task_records(records, reader.task())
    assert y.tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    with pytest.raises(RecordError, match=r"MUSE_D.*missing"):
        reader.load_signal("MUSE_D")


def test_denoised_folder_choice(tmp_path):
    write_release(tmp_path, [("MUSE_A", "ST")], csv_folder="ECGDataDenoised")
    write_chapman_csv(tmp_path / "ECGDataDenoised" / "MUSE_A.csv", microvolts(1), header=False)
    assert Chapman(tmp_path).records.at["MUSE_A", "path"].endswith("ECGDataDenoised/MUSE_A.csv")
    (tmp_path / "ECGData").mkdir()
    write_chapman_csv(tmp_path / "ECGData" / "MUSE_A.csv", microvolts(2))
    assert "ECGData/" in Chapman(tmp_path).records.at["MUSE_A", "path"]  # raw preferred
    assert "ECGDataDenoised/" in Chapman(tmp_path, denoised=True).records.at["MUSE_A", "path"]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("zero_lead", r"lead\(s\) V3 hold one constant value"),
        ("nan", "1 NaN or infinite sample"),
        ("short", "need 1 s"),
        ("unknown_lead", "unknown lead name 'V7'"),
        ("eleven", "11 columns; expected the 12 leads"),
        ("text", "not a table of numbers"),
    ],
)
def test_bad_csv(tmp_path, kind, message):
    folder = write_release(tmp_path, [("MUSE_A", "SR")])
    x, names = microvolts(samples=300 if kind == "short" else 5000), list(STANDARD_LEADS)
    if kind == "zero_lead":
        x[8] = 0
    if kind == "nan":
        x[2, 10] = np.nan
    if kind == "unknown_lead":
        names[11] = "V7"
    if kind == "eleven":
        x, names = x[:11], names[:11]
    write_chapman_csv(folder / "MUSE_A.csv", x, names)
    if kind == "text":
        (folder / "MUSE_A.csv").write_text("I,II\n1,2\n3,abc\n")
    with pytest.raises(RecordError, match=message) as info:
        Chapman(tmp_path).load_signal("MUSE_A")
    assert "MUSE_A.csv" in str(info.value)


def test_wfdb_form(tmp_path):
    dx = {
        "JS00001": "164889003,59118001",
        "JS00002": "427393009",
        "JS00003": "164934002",
        "JS10647": "426177001",
    }
    for name, codes in dx.items():
        write_cinc_record(tmp_path / "WFDB", name, comments={"Age": "60", "Sex": "Male", "Dx": codes})
    write_cinc_record(tmp_path / "WFDB", "JS00004", comments={"Dx": "426783006"}, variable="ECG")
    reader = Chapman(tmp_path)
    records = reader.records
    assert records["labels"].to_dict() == {"JS00001": "AFIB", "JS00002": "SA", "JS00004": "SR"}
    assert (records["patient_id"] == records.index).all() and records["fold"].between(1, 10).all()
    reasons = reader.skipped.set_index("record_id")["reason"]
    assert "no rhythm code" in reasons["JS00003"] and "Ningbo" in reasons["JS10647"]
    x = reader.load_signal("JS00001")
    assert x.shape == (12, 5000) and x.dtype == np.float32
    with pytest.raises(RecordError, match=r"JS00004\.mat: no variable 'val'"):
        reader.load_signal("JS00004")


def test_empty_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Diagnostics.xlsx and no JS"):
        Chapman(tmp_path)
