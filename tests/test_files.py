"""`read_ecg`: every supported file reads to float32 (leads, samples) in mV, with its rate and lead names."""

import re
import shutil

import numpy as np
import pytest
import scipy.io

from ecglab.data.errors import RecordError
from ecglab.data.leads import STANDARD_LEADS
from ecglab.data.wfdb_io import read_record
from ecglab.infer.files import lead_key, read_ecg, select_leads

PTBXL_LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _ok(rec, shape, fs, leads):
    assert rec.x.dtype == np.float32 and rec.x.shape == shape
    assert rec.fs == fs and rec.lead_names == tuple(leads)
    assert np.isfinite(rec.x).all() and 0.01 < np.abs(rec.x).max() < 20  # millivolts, not µV or V


@pytest.mark.data
@pytest.mark.parametrize(
    "name, shape, fs",
    [("records100/00000/00001_lr", (12, 1000), 100.0), ("records500/00000/00002_hr", (12, 5000), 500.0)],
)
def test_ptbxl_wfdb(ptbxl_root, name, shape, fs):
    rec = read_ecg(ptbxl_root / f"{name}.hea")
    _ok(rec, shape, fs, PTBXL_LEADS)
    np.testing.assert_array_equal(rec.x, read_record(ptbxl_root / f"{name}.hea")[0])
    for other in (f"{name}.dat", name):  # the .dat alone, or the record name without extension
        np.testing.assert_array_equal(read_ecg(ptbxl_root / other).x, rec.x)


@pytest.mark.data
def test_cpsc_original_mat(cpsc2018_root):
    path = cpsc2018_root / "TrainingSet/A1980.mat"
    rec = read_ecg(path, fs=250)  # the release is 500 Hz throughout: --fs does not apply
    data = scipy.io.loadmat(path)["ECG"][0, 0]["data"]
    _ok(rec, data.shape, 500.0, STANDARD_LEADS)
    np.testing.assert_allclose(rec.x, data, rtol=1e-6)


@pytest.mark.data
def test_cinc_mat_uses_its_header(cinc2020_root, cpsc2018_root):
    rec = read_ecg(cinc2020_root / "georgia/E07500.mat")  # the header's record line names the .mat
    _ok(rec, (12, 5000), 500.0, STANDARD_LEADS)
    np.testing.assert_array_equal(rec.x, read_ecg(cinc2020_root / "georgia/E07500.hea").x)
    _ok(read_ecg(cpsc2018_root / "cinc2020/A0001.mat"), (12, 7500), 500.0, STANDARD_LEADS)


@pytest.mark.data
def test_cinc2017_single_lead(cinc2017_root):
    rec = read_ecg(cinc2017_root / "training2017/A00001.hea")
    _ok(rec, (1, 9000), 300.0, ["ECG"])
    assert select_leads(rec, ["I"]).shape == (1, 9000)  # CinC 2017's "ECG" is its lead-I-like lead
    with pytest.raises(RecordError, match=r"A00001.hea: the model needs lead\(s\) II, III, aVR.*V6.*has ECG"):
        select_leads(rec, STANDARD_LEADS)


def _chapman_uv(n=1200):
    return np.random.default_rng(0).integers(-2000, 2000, size=(n, 12)).astype(np.float64)


def test_chapman_csv_with_and_without_header(tmp_path):
    uv = _chapman_uv()
    bare = tmp_path / "MUSE_1.csv"
    np.savetxt(bare, uv, delimiter=",", fmt="%.1f")
    rec = read_ecg(bare)
    _ok(rec, (12, 1200), 500.0, STANDARD_LEADS)
    np.testing.assert_allclose(rec.x, uv.T / 1000, rtol=1e-6)
    shuffled = [6, 0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11]  # V1 first, lower-case names: reordered
    named = tmp_path / "MUSE_2.csv"
    header = ",".join(STANDARD_LEADS[i].lower() for i in shuffled)
    np.savetxt(named, uv[:, shuffled], delimiter=",", fmt="%.1f", header=header, comments="")
    np.testing.assert_allclose(read_ecg(named).x, rec.x)
    assert read_ecg(bare, fs=250).fs == 250.0  # 500 Hz is assumed, --fs overrides


def test_edf(tmp_path):
    edfio = pytest.importorskip("edfio")
    x = np.random.default_rng(1).normal(scale=0.5, size=(12, 2500))  # mV
    leads = [edfio.EdfSignal(x[i] * 1000, 250, label=f"ECG {name}", physical_dimension="uV",
                             physical_range=(-5000, 5000)) for i, name in enumerate(STANDARD_LEADS)]  # fmt: skip
    resp = edfio.EdfSignal(np.zeros(250), 25, label="Resp", physical_dimension="")  # not ECG: ignored
    edfio.Edf([resp, *leads]).write(tmp_path / "rec.edf")
    rec = read_ecg(tmp_path / "rec.edf")
    assert rec.x.dtype == np.float32 and rec.x.shape == (12, 2500) and rec.fs == 250.0
    assert rec.lead_names == tuple(f"ECG {n}" for n in STANDARD_LEADS)
    np.testing.assert_allclose(rec.x, x, atol=1e-3)  # 16-bit quantisation of ±5 mV
    np.testing.assert_array_equal(select_leads(rec, STANDARD_LEADS), rec.x)


def test_npy_and_generic_csv_need_fs_and_leads(tmp_path):
    x = np.random.default_rng(2).normal(size=(3, 700)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "b.npy", x.T)  # (samples, leads) is recognised too
    for name in ("a.npy", "b.npy"):
        rec = read_ecg(tmp_path / name, fs=250, leads=["II", "v1", "I"])
        _ok(rec, (3, 700), 250.0, ["II", "v1", "I"])
        np.testing.assert_array_equal(rec.x, x)
    np.testing.assert_array_equal(select_leads(rec, ["I", "II"]), x[[2, 0]])
    with pytest.raises(RecordError, match=r"a.npy: .*pass --fs HZ and --leads"):
        read_ecg(tmp_path / "a.npy", fs=250)

    np.savetxt(tmp_path / "g.csv", x.T * 1000, delimiter=",")
    rec = read_ecg(tmp_path / "g.csv", fs=250, leads=["I", "II", "III"], units="uV")
    np.testing.assert_allclose(rec.x, x, rtol=1e-5)
    np.savetxt(tmp_path / "h.csv", x.T, delimiter=",", header="I,II,V2", comments="")
    _ok(read_ecg(tmp_path / "h.csv", fs=100), (3, 700), 100.0, ["I", "II", "V2"])
    with pytest.raises(RecordError, match=r"h.csv: .*pass --fs"):
        read_ecg(tmp_path / "h.csv")
    with pytest.raises(RecordError, match=r"g.csv: 3 unnamed columns; .*--leads"):
        read_ecg(tmp_path / "g.csv", fs=250)


def test_lead_names_match_case_insensitively():
    assert [lead_key(n) for n in ("avr", "AVL", "ECG V1", "Lead II", "EKG-v6", "Resp")] == [
        "aVR", "aVL", "V1", "II", "V6", None,
    ]  # fmt: skip


def test_bad_files_name_the_file_and_the_problem(tmp_path):
    corrupt = tmp_path / "corrupt.mat"
    corrupt.write_bytes(b"\x00garbage" * 50)
    cases = {corrupt: "not a readable MATLAB file", tmp_path / "rec.xyz": "unsupported file type '.xyz'"}
    (tmp_path / "rec.xyz").write_text("1,2,3")
    scipy.io.savemat(tmp_path / "val.mat", {"val": np.zeros((12, 10), np.int16)})
    cases[tmp_path / "val.mat"] = "needs its header val.hea beside it"
    (tmp_path / "lonely.dat").write_bytes(b"\x00" * 48)
    cases[tmp_path / "lonely.dat"] = "its header lonely.hea must sit beside it"
    nan = np.ones((2, 500), np.float32)
    nan[1, 7] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cases[tmp_path / "nan.npy"] = r"1 NaN or infinite sample\(s\) in lead\(s\) II"
    (tmp_path / "empty.csv").write_text("")
    cases[tmp_path / "empty.csv"] = "empty file"
    cases[tmp_path / "missing.hea"] = "no such file"
    (tmp_path / "bad.edf").write_bytes(b"0       " * 40)
    cases[tmp_path / "bad.edf"] = "not a readable EDF/BDF file"
    for path, problem in cases.items():
        with pytest.raises(RecordError, match=rf"^{re.escape(str(path))}: .*{problem}"):
            read_ecg(path, fs=100, leads=["I", "II"])


@pytest.mark.data
def test_truncated_wfdb(tmp_path, ptbxl_root):
    src = ptbxl_root / "records100/00000/00001_lr"
    shutil.copy(src.with_suffix(".hea"), tmp_path / "00001_lr.hea")
    (tmp_path / "00001_lr.dat").write_bytes(src.with_suffix(".dat").read_bytes()[:5000])
    with pytest.raises(RecordError, match=r"00001_lr.dat: truncated"):
        read_ecg(tmp_path / "00001_lr.hea")
