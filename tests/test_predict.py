"""`ecglab predict` run as a user would, plus the Predictor's windowing and decisions."""

import csv
import io
import json

import numpy as np
import pytest

from ecglab.data.errors import RecordError
from ecglab.infer.files import read_ecg
from ecglab.infer.predictor import Predictor
from helpers import run_cli, write_wfdb
from infer_helpers import CLASSES, make_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint")


@pytest.mark.data
def test_json_scores_every_format_and_reports_bad_files(
    tmp_path, checkpoint, ptbxl_root, cpsc2018_root, cinc2017_root
):
    ecg = read_ecg(ptbxl_root / "records100/00000/00001_lr.hea").x
    short = write_wfdb(tmp_path / "short", ecg[:, :500], 100)  # 5 s: padded with a warning
    np.save(tmp_path / "rec.npy", ecg)
    (tmp_path / "corrupt.hea").write_text("this is not a header\n")
    good = [
        ptbxl_root / f"records{fs}/00000/{i:05d}_{'lr' if fs == 100 else 'hr'}.hea"
        for i in (2, 6)
        for fs in (100, 500)
    ]
    good += [cpsc2018_root / "TrainingSet/A1981.mat", short, tmp_path / "rec.npy"]
    bad = [cinc2017_root / "training2017/A00001.hea", tmp_path / "corrupt.hea"]
    proc = run_cli("predict", *map(str, good + bad), "--model", str(checkpoint), "--format", "json",
                   "--fs", "100", "--leads", ",".join(f"lead {n}" for n in "I II III aVR aVL aVF V1 V2 V3 V4 V5 V6".split()),
                   check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert [o["record"] for o in out] == [str(p) for p in good + bad]
    for o in out[: len(good)]:
        assert o["model"] == str(checkpoint) and list(o["probabilities"]) == CLASSES
        assert sum(o["probabilities"].values()) == pytest.approx(1.0)  # one-of-K: softmax
        assert o["labels"] == [max(o["probabilities"], key=o["probabilities"].get)]
    probs = [np.array(list(o["probabilities"].values())) for o in out[: len(good)]]
    # The same ECG at 100 Hz and at 500 Hz (resampled to the model's 100 Hz) scores alike...
    np.testing.assert_allclose(probs[0], probs[1], atol=0.03)
    np.testing.assert_allclose(probs[2], probs[3], atol=0.03)
    assert np.abs(probs[0] - probs[2]).max() > 0.03  # ...while different ECGs do not
    np.testing.assert_allclose(probs[6], read_ecg_probs(checkpoint, ptbxl_root), atol=1e-6)  # the .npy copy
    missing = out[len(good)]["error"]
    assert missing.startswith(str(bad[0])) and "needs lead(s) II, III, aVR, aVL, aVF, V1" in missing
    assert out[-1] == {"record": str(bad[1]), "error": out[-1]["error"]} and str(bad[1]) in out[-1]["error"]
    assert f"warning: {short}: 5.0 s is shorter than the model's 10-s window; zero-padded" in proc.stderr


def read_ecg_probs(checkpoint, ptbxl_root):
    predictor = Predictor.from_checkpoint(checkpoint)
    result = predictor.predict(read_ecg(ptbxl_root / "records100/00000/00001_lr.hea"))
    return np.array(list(result.probabilities.values()))


@pytest.mark.data
def test_csv_format(checkpoint, ptbxl_root):
    files = [
        str(ptbxl_root / "records100/00000/00001_lr.hea"),
        str(ptbxl_root / "records100/00000/00002_lr.hea"),
    ]
    proc = run_cli("predict", *files, "--model", str(checkpoint), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["record"] for r in rows] == files
    assert list(rows[0]) == ["record", "model", *CLASSES, "labels", "warnings", "error"]
    for r in rows:
        assert sum(float(r[c]) for c in CLASSES) == pytest.approx(1.0, abs=1e-5) and r["labels"] in CLASSES


@pytest.mark.data
def test_table_with_the_shipped_default_model(tmp_path, ptbxl_root):
    make_checkpoint(tmp_path / "weights" / "ptbxl_rhythm", thresholds=[0.0, 1.1, 1.1])
    record = str(ptbxl_root / "records100/00000/00001_lr.hea")
    proc = run_cli("predict", record, env={"ECGLAB_WEIGHTS": str(tmp_path / "weights")})
    assert f"{record}  (model ptbxl_rhythm, 1 window(s))" in proc.stdout
    lines = {line.split()[1]: line for line in proc.stdout.splitlines() if line[:1] == "│"}
    assert set(CLASSES) <= set(lines) and "yes" in lines["NORM"] and "yes" not in lines["AF"]
    assert "0.000" in lines["NORM"] and "1.100" in lines["AF"]  # the tuned thresholds are shown


def test_no_default_model_installed(tmp_path):
    proc = run_cli("predict", "x.hea", env={"ECGLAB_WEIGHTS": str(tmp_path / "none")}, check=False)
    assert proc.returncode == 2
    assert "error: no default model is installed" in proc.stderr and "--model" in proc.stderr


@pytest.mark.data
def test_long_records_are_windowed(checkpoint, cpsc2018_root, cinc2020_root):
    predictor = Predictor.from_checkpoint(checkpoint)
    a1981 = read_ecg(cpsc2018_root / "TrainingSet/A1981.mat")  # 15.9 s at 500 Hz
    windows, notes = predictor.windows(a1981)
    assert windows.shape == (2, 12, 1000) and notes == []
    np.testing.assert_allclose(windows.mean(axis=-1), 0, atol=1e-4)  # each window z-scored per lead
    np.testing.assert_allclose(windows.std(axis=-1), 1, atol=1e-3)
    s0001 = predictor.predict(read_ecg(cinc2020_root / "ptb/S0001.hea"))  # 38.4 s at 1000 Hz
    assert s0001.windows == 4
    assert s0001.warnings[0].startswith("every lead spans under 20 µV")  # its header's gain is 1000x too high
    probs = predictor.run(predictor.windows(read_ecg(cinc2020_root / "ptb/S0001.hea"))[0])
    exp = np.exp(probs - probs.max(axis=1, keepdims=True))
    expected = (exp / exp.sum(axis=1, keepdims=True)).mean(axis=0)  # window probabilities, averaged
    np.testing.assert_allclose(list(s0001.probabilities.values()), expected, rtol=1e-5)


def test_short_record_is_padded_and_too_short_refused(checkpoint, tmp_path):
    predictor = Predictor.from_checkpoint(checkpoint)
    x = np.random.default_rng(0).normal(size=(12, 1500)).astype(np.float32)
    np.save(tmp_path / "short.npy", x)
    rec = read_ecg(
        tmp_path / "short.npy", fs=500, leads=list("I II III aVR aVL aVF V1 V2 V3 V4 V5 V6".split())
    )
    windows, notes = predictor.windows(rec)  # 3 s at 500 Hz -> 300 samples at 100 Hz, padded to 1000
    assert windows.shape == (1, 12, 1000) and notes == [
        "3.0 s is shorter than the model's 10-s window; zero-padded"
    ]
    tiny = read_ecg(tmp_path / "short.npy", fs=5000, leads=rec.lead_names)
    with pytest.raises(RecordError, match=r"short.npy: only 0.30 s long"):
        predictor.windows(tiny)


def test_multilabel_thresholds_and_untrusted_pickles(tmp_path):
    multi = Predictor.from_checkpoint(
        make_checkpoint(tmp_path / "m", multilabel=True, thresholds=[0.2, 0.5, 0.9])
    )
    assert multi.decide(np.array([0.3, 0.4, 0.95])) == ["NORM", "OTHER"]
    plain = Predictor.from_checkpoint(make_checkpoint(tmp_path / "p", multilabel=True))
    assert plain.decide(np.array([0.3, 0.6, 0.5])) == ["AF", "OTHER"]  # 0.5 without tuned thresholds
    config = make_checkpoint(tmp_path / "t") / "config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"thresholds": [0.5, 0.5]}))
    with pytest.raises(ValueError, match="t/config.json: 2 thresholds for 3 classes"):
        Predictor.from_checkpoint(config.parent)
    (tmp_path / "model.pt").write_bytes(b"not really a pickle")
    with pytest.raises(ValueError, match="pickled checkpoints can run arbitrary code"):
        Predictor.from_checkpoint(tmp_path / "model.pt")
