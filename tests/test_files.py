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
    with pytest.raises(RecordError, match=r"MUSE_1.csv: .*does not state its sampling rate; pass --fs HZ"):
        read_ecg(bare)  # no silent 500 Hz: the file does not say so
    rec = read_ecg(bare, fs=500)
    _ok(rec, (12, 1200), 500.0, STANDARD_LEADS)
    np.testing.assert_allclose(rec.x, uv.T / 1000, rtol=1e-6)
    shuffled = [6, 0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11]  # V1 first, lower-case names: reordered
    named = tmp_path / "MUSE_2.csv"
    header = ",".join(STANDARD_LEADS[i].lower() for i in shuffled)
    np.savetxt(named, uv[:, shuffled], delimiter=",", fmt="%.1f", header=header, comments="")
    np.testing.assert_allclose(read_ecg(named, fs=500).x, rec.x)
    assert read_ecg(bare, fs=250).fs == 250.0


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


def _header_with(tmp_path, name, edit):
    """A good 12-lead WFDB record `name`, its header text passed through `edit`."""
    from helpers import write_wfdb

    hea = write_wfdb(tmp_path / name, np.random.default_rng(3).normal(0, 0.3, (12, 1000)), 100)
    hea.write_text(edit(hea.read_text()))
    return hea


def _field(text, column, value):
    lines = text.splitlines()
    tokens = lines[1].split()
    tokens[column] = value
    lines[1] = " ".join(tokens)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "edit, problem",
    [(lambda t: t.replace("1000.0(0)/mV", "e(0)/mV", 1), "line 2: ADC gain 'e' is not a number"),
     (lambda t: _field(t, 4, "zz"), "line 2: ADC zero 'zz' is not a whole number"),
     (lambda t: _field(t, 6, "x1"), "line 2: checksum 'x1' is not a whole number"),
     (lambda t: t.replace("r 12 100", "r 0 100", 1), "line 1: says 0 signals"),
     (lambda t: t.replace("r 12 100", "r twelve 100", 1), "number of signals 'twelve' is not a whole number"),
     (lambda t: t.replace("r 12 100", "r 12 inf", 1), "sampling rate 'inf' is not a number"),
     (lambda t: t.replace("r 12 100", "r 12 1e9", 1), "sampling rate 1e+09 Hz is outside 50-10000 Hz"),
     (lambda t: t.replace("r 12 100", "r 12 0.01", 1), "sampling rate 0.01 Hz is outside 50-10000 Hz"),
     (lambda t: t.replace("r.dat", "../elsewhere/r.dat"), "signal file '../elsewhere/r.dat' outside its own folder"),
     (lambda t: t.replace("r.dat", "/etc/passwd"), "outside its own folder"),
     (lambda t: t.replace("r.dat 16 ", "r.dat 99 "), "line 2: signal format '99' is not a WFDB format"),
     (lambda t: t.replace("r.dat 16 ", "r.dat 16+99999999 "), "byte offset 99999999 lies past the end")],
)  # fmt: skip
def test_malformed_headers_are_named_in_user_words(tmp_path, edit, problem):
    hea = _header_with(tmp_path, "r", edit)
    stem = re.escape(str(hea.with_suffix("")))
    with pytest.raises(
        RecordError, match=rf"^{stem}\.(hea|dat): .*{re.escape(problem)}"
    ):  # header or data file
        read_ecg(hea)


def test_limits_refuse_before_reading_and_are_configurable(tmp_path, monkeypatch):
    from ecglab.infer.limits import Limits

    x = np.random.default_rng(4).normal(size=(12, 2000)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    leads = list(STANDARD_LEADS)
    with pytest.raises(
        RecordError, match=r"sampling rate 0.001 Hz is outside 50-10000 Hz; give the true rate"
    ):
        read_ecg(tmp_path / "a.npy", fs=0.001, leads=leads)
    with pytest.raises(RecordError, match=r"0.7 minutes long; records up to 0.5 minutes"):
        read_ecg(tmp_path / "a.npy", fs=50, leads=leads, limits=Limits(max_minutes=0.5))
    monkeypatch.setenv("ECGLAB_MIN_FS", "0.5")
    assert read_ecg(tmp_path / "a.npy", fs=1, leads=leads).fs == 1.0
    monkeypatch.setenv("ECGLAB_MAX_MINUTES", "soon")
    with pytest.raises(ValueError, match="ECGLAB_MAX_MINUTES='soon' is not a number"):
        Limits.from_env()
    with pytest.raises(
        RecordError, match="resampling 1 Hz to the model's 500 Hz is a factor of 500, over the limit of 100"
    ):
        Limits().check_resample("a.npy", 1.0, 500.0)


def test_arrays_that_are_not_an_ecg(tmp_path):
    leads = ["I", "II"]
    np.save(tmp_path / "complex.npy", np.ones((2, 500), np.complex64))
    np.savez(tmp_path / "archive.npz", x=np.ones((2, 500)))
    shutil.move(tmp_path / "archive.npz", tmp_path / "archive.npy")
    np.save(tmp_path / "huge.npy", np.full((2, 500), 1e300))
    cases = {"complex.npy": "holds complex numbers", "archive.npy": "is an .npz archive, not one .npy array",
             "huge.npy": "1000 NaN or infinite sample"}  # fmt: skip
    for name, problem in cases.items():
        with pytest.raises(RecordError, match=rf"{name}: {problem}"):
            read_ecg(tmp_path / name, fs=100, leads=leads)


def test_csv_rate_from_its_header_comment(tmp_path):
    x = np.random.default_rng(5).normal(size=(3, 700)).astype(np.float32)
    path = tmp_path / "stated.csv"
    np.savetxt(path, x.T, delimiter=",", header="# fs=250 Hz\nI,II,V2", comments="", fmt="%.6f")
    rec = read_ecg(path)
    _ok(rec, (3, 700), 250.0, ["I", "II", "V2"])
    np.testing.assert_allclose(rec.x, x, atol=1e-5)


def test_truncated_edf_is_an_error(tmp_path):
    edfio = pytest.importorskip("edfio")
    x = np.random.default_rng(6).normal(scale=0.5, size=(2, 1000))
    signals = [edfio.EdfSignal(x[i] * 1000, 100, label=name, physical_dimension="uV", physical_range=(-5000, 5000))
               for i, name in enumerate(["I", "II"])]  # fmt: skip
    edfio.Edf(signals).write(tmp_path / "whole.edf")
    data = (tmp_path / "whole.edf").read_bytes()
    (tmp_path / "cut.edf").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(RecordError, match=r"cut.edf: truncated \(.*\); copy the whole file again"):
        read_ecg(tmp_path / "cut.edf")
