import shutil

import numpy as np
import pytest
import scipy.io

from ecglab.data import RecordError, task_records
from ecglab.data.cpsc2018 import CLASSES, CPSC2018, parse_dx
from ecglab.data.folds import load_fold_file

COUNTS = [722, 1221, 236, 1857, 918, 616, 869, 220, 700]


@pytest.mark.data
def test_reference_counts_and_classes(cpsc2018_root):
    reader = CPSC2018(cpsc2018_root)
    records, y = task_records(reader.records, reader.task())
    assert reader.task().classes == CLASSES
    assert len(records) == 6877 and len(reader.skipped) == 0
    assert y.sum(axis=0).astype(int).tolist() == COUNTS
    # 477 rows give more than one label; A0953 gives PAC twice, so 476 records have two classes.
    assert (y.sum(axis=1) > 1).sum() == 476
    assert reader.records.at["A0953", "labels"] == ("PAC",)
    assert records["patient_id"].isna().all()


@pytest.mark.data
def test_both_published_forms_load(cpsc2018_root):
    reader = CPSC2018(cpsc2018_root)
    present = reader.records[reader.records["path"] != ""]
    assert len(present) == 33
    original = reader.load_signal("A1981")  # TrainingSet form, 12 x 7950
    assert original.shape == (12, 7950) and original.dtype == np.float32
    ecg = scipy.io.loadmat(cpsc2018_root / "TrainingSet/A1981.mat")["ECG"][0, 0]["data"]
    np.testing.assert_allclose(original, ecg, rtol=1e-6)
    wfdb_form = reader.load_signal("A0001")  # CinC 2020 form, 12 x 7500, gain 1000/mV
    assert wfdb_form.shape == (12, 7500)
    assert wfdb_form[0, 0] == pytest.approx(0.028)


@pytest.mark.data
def test_labels_from_headers_without_reference(cpsc2018_root, tmp_path):
    shutil.copytree(cpsc2018_root / "cinc2020", tmp_path / "Training_WFDB")
    reader = CPSC2018(tmp_path)
    assert len(reader.records) == 28
    assert reader.records.at["A0001", "labels"] == ("RBBB",)
    assert reader.records.at["A0002", "labels"] == ("NORM",)


def test_dx_in_both_spellings():
    assert parse_dx("I-AVB", "x.hea") == ("I-AVB",)
    assert parse_dx("59118001,164884008", "x.hea") == ("RBBB", "PVC")
    with pytest.raises(RecordError, match="x.hea: unknown #Dx entry 'XYZ'"):
        parse_dx("XYZ", "x.hea")


def test_fold_file_is_stratified_and_complete():
    folds = load_fold_file("cpsc2018")
    assert len(folds) == 6877 and folds.index.is_unique
    assert sorted(folds.unique()) == list(range(1, 11))
    assert folds.value_counts().between(640, 740).all()


def test_unknown_reference_code_is_skipped_with_reason(tmp_path):
    (tmp_path / "REFERENCE.csv").write_text(
        "Recording,First_label,Second_label,Third_label\nA0001,5,,\nA0002,10,,\n"
    )
    reader = CPSC2018(tmp_path)
    assert list(reader.records.index) == ["A0001"]
    assert reader.skipped.iloc[0]["reason"] == "unknown label code(s) 10"
    with pytest.raises(RecordError, match="A0001: named in the label table but its signal file is missing"):
        reader.load_signal("A0001")


def test_original_mat_without_ecg_struct(tmp_path):
    (tmp_path / "REFERENCE.csv").write_text("Recording,First_label,Second_label,Third_label\nA0001,1,,\n")
    scipy.io.savemat(tmp_path / "A0001.mat", {"signal": np.zeros((12, 5000))})
    with pytest.raises(RecordError, match=r"A0001.mat: no struct 'ECG' \(found: signal\)"):
        CPSC2018(tmp_path).load_signal("A0001")


def test_original_mat_with_nan(tmp_path):
    (tmp_path / "REFERENCE.csv").write_text("Recording,First_label,Second_label,Third_label\nA0001,1,,\n")
    data = np.zeros((12, 5000))
    data[3, 10:13] = np.nan
    scipy.io.savemat(tmp_path / "A0001.mat", {"ECG": {"sex": "Male", "age": 50, "data": data}})
    with pytest.raises(RecordError, match="A0001.mat: 3 NaN or infinite sample"):
        CPSC2018(tmp_path).load_signal("A0001")
