import numpy as np
import pandas as pd
import pytest
import wfdb

from ecglab.data import get_reader, task_records
from ecglab.data.ptbxl import PTBXL, ptbxl_tasks

RHYTHM = ("AFIB", "AFLT", "BIGU", "PACE", "PSVT", "SARRH", "SBRAD", "SR", "STACH", "SVARR", "SVTAC", "TRIGU")


@pytest.mark.data
def test_full_label_table_and_subset_signals(ptbxl_root):
    reader = PTBXL(ptbxl_root)
    records = reader.records
    assert len(records) == 21837 and len(reader.skipped) == 0
    assert (records["path"] != "").sum() == 1797
    assert sorted(records["fold"].unique()) == list(range(1, 11))
    # strat_fold is per patient: no patient in two folds.
    assert records.groupby("patient_id")["fold"].nunique().max() == 1


@pytest.mark.data
def test_task_vocabularies(ptbxl_root):
    tasks = PTBXL(ptbxl_root).tasks
    assert tasks["rhythm"].classes == RHYTHM
    sizes = {name: t.num_classes for name, t in tasks.items()}
    assert sizes == {
        "all": 71,
        "diagnostic": 44,
        "subdiagnostic": 23,
        "superdiagnostic": 5,
        "form": 19,
        "rhythm": 12,
    }
    assert tasks["superdiagnostic"].classes == ("CD", "HYP", "MI", "NORM", "STTC")


@pytest.mark.data
def test_rhythm_task_leaves_out_records_without_rhythm_statement(ptbxl_root):
    reader = PTBXL(ptbxl_root)
    subset, y = task_records(reader.records, reader.task("rhythm"))
    assert 21000 < len(subset) < len(reader.records)
    assert y.shape == (len(subset), 12) and y.any(axis=1).all()
    # Counts of the first 1999 ids agree with the data README.
    first = subset.index.astype(int) <= 1999
    counts = dict(zip(RHYTHM, y[first].sum(axis=0).astype(int), strict=True))
    assert counts["SR"] == 1600 and counts["AFIB"] == 100 and counts["SVARR"] == 0 and counts["TRIGU"] == 1


def test_task_functions_are_pure_and_ignore_likelihood():
    statements = pd.DataFrame(
        {"diagnostic": [1.0, np.nan, 1.0], "form": [np.nan, np.nan, 1.0], "rhythm": [np.nan, 1.0, np.nan],
         "diagnostic_class": ["NORM", np.nan, "MI"], "diagnostic_subclass": ["NORM", np.nan, "IMI"]},
        index=["NORM", "SR", "IMI"],
    )  # fmt: skip
    tasks = ptbxl_tasks(statements)
    codes = {"NORM": 100.0, "SR": 0.0, "IMI": 15.0}
    assert list(tasks["rhythm"].to_classes(codes)) == ["SR"]
    assert set(tasks["superdiagnostic"].to_classes(codes)) == {"NORM", "MI"}
    assert set(tasks["form"].to_classes(codes)) == {"IMI"}
    assert tasks["all"].classes == ("IMI", "NORM", "SR")


@pytest.mark.data
def test_load_signal_matches_wfdb_in_millivolts(ptbxl_root):
    reader = get_reader("ptbxl", ptbxl_root)
    x = reader.load_signal("00001")
    ref = wfdb.rdrecord(str(ptbxl_root / "records100/00000/00001_lr")).p_signal.T
    assert x.dtype == np.float32 and x.shape == (12, 1000)
    np.testing.assert_allclose(x, ref, atol=1e-6)


@pytest.mark.data
def test_500hz_records(ptbxl_root):
    reader = PTBXL(ptbxl_root, fs=500)
    present = reader.records[reader.records["path"] != ""]
    assert len(present) == 56
    x = reader.load_signal(present.index[0])
    assert x.shape == (12, 5000)
    low = PTBXL(ptbxl_root).load_signal(present.index[0])
    # The 100 Hz record is the publisher's downsampled copy of the same ECG.
    assert np.corrcoef(x[1, ::5], low[1])[0, 1] > 0.9


def test_missing_label_table_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="ptbxl_database.csv"):
        PTBXL(tmp_path)
