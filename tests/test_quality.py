"""Signal quality before a verdict, and one bad file never taking the others down, through `ecglab predict`."""

import csv
import io
import json

import numpy as np
import pytest

from ecglab.data.errors import RecordError
from ecglab.data.leads import STANDARD_LEADS
from ecglab.infer.quality import FLAT_MV, quality_warnings
from helpers import run_cli, write_wfdb
from infer_helpers import CLASSES, make_checkpoint


def ecg(samples=1200, seed=0):
    """A 12-lead beat train in mV, 100 Hz: spiky enough for percentiles, like an ECG."""
    t = np.arange(samples) / 100
    beat = np.exp(-0.5 * (((t % 0.8) - 0.3) / 0.03) ** 2)
    noise = np.random.default_rng(seed).normal(0, 0.02, (12, samples))
    return np.stack([beat * (0.5 + k / 12) for k in range(12)]) + noise


def test_flat_and_saturated_leads_are_named():
    x = ecg()
    assert quality_warnings("r", x, STANDARD_LEADS) == []
    x[6] = 0.001  # V1 flat
    x[1] = np.clip(x[1], None, 0.2)  # II clipped at 0.2 mV
    notes = quality_warnings("r", x, STANDARD_LEADS)
    assert len(notes) == 2 and notes[0].startswith("flat lead(s) V1 ") and "saturated lead(s) II " in notes[1]
    with pytest.raises(RecordError, match=r"r: no ECG to classify: every sample is 0"):
        quality_warnings("r", np.zeros((12, 1200)), STANDARD_LEADS)
    with pytest.raises(RecordError, match=r"r: no ECG to classify: every lead is a constant"):
        quality_warnings("r", np.full((12, 1200), 0.3), STANDARD_LEADS)
    (tiny,) = quality_warnings(
        "r", ecg() * 1e-6, STANDARD_LEADS
    )  # a gain that scales every sample to nothing
    assert tiny.startswith(f"every lead spans under {FLAT_MV * 1000:g} µV: a wrong gain or units")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A checkpoint, one good record, records to warn about and records that fail each in its own way."""
    root = tmp_path_factory.mktemp("quality")
    x = ecg()
    good = write_wfdb(root / "good", x, 100)
    flat_lead = x.copy()
    flat_lead[7] = 0.0
    warn = write_wfdb(root / "flatlead", flat_lead, 100)
    flat = write_wfdb(root / "flat", np.zeros_like(x), 100)
    gain = write_wfdb(root / "gain", x, 100)
    gain.write_text(gain.read_text().replace("1000.0(0)/mV", "e(0)/mV", 1))
    np.save(root / "complex.npy", x.astype(np.complex64))
    np.savez(root / "archive.npz", x=x)
    (root / "archive.npz").rename(root / "archive.npy")
    np.savetxt(root / "norate.csv", x.T * 1000, delimiter=",", header=",".join(STANDARD_LEADS), comments="")
    files = [good, warn, flat, gain, root / "complex.npy", root / "archive.npy"]
    return make_checkpoint(root / "ckpt"), files


EXPECTED_ERRORS = {
    "flat.hea": "no ECG to classify: every sample is 0",
    "gain.hea": "line 2: ADC gain 'e' is not a number",
    "complex.npy": "holds complex numbers",
    "archive.npy": "is an .npz archive",
}


def _predict(batch, format):
    checkpoint, files = batch
    return run_cli("predict", *map(str, files), "--model", str(checkpoint), "--format", format,
                   "--fs", "100", "--leads", ",".join(STANDARD_LEADS), check=False)  # fmt: skip


def test_json_carries_warnings_and_errors_per_record(batch):
    proc = _predict(batch, "json")
    assert proc.returncode == 1, proc.stderr
    out = {r["record"].rsplit("/", 1)[-1]: r for r in json.loads(proc.stdout)}
    assert out["good.hea"]["warnings"] == [] and list(out["good.hea"]["probabilities"]) == CLASSES
    assert out["flatlead.hea"]["warnings"][0].startswith("flat lead(s) V2 ")
    for name, problem in EXPECTED_ERRORS.items():
        assert name in out[name]["error"] and problem in out[name]["error"], out[name]
        assert "Traceback" not in out[name]["error"]


def test_csv_and_table_show_the_warning(batch):
    rows = {
        r["record"].rsplit("/", 1)[-1]: r for r in csv.DictReader(io.StringIO(_predict(batch, "csv").stdout))
    }
    assert (
        rows["flatlead.hea"]["warnings"].startswith("flat lead(s) V2 ") and rows["good.hea"]["warnings"] == ""
    )
    assert "holds complex numbers" in rows["complex.npy"]["error"]
    table = _predict(batch, "table")
    assert table.returncode == 1 and "warning: flat lead(s) V2" in table.stdout
    assert "is an .npz archive" in table.stderr


def test_one_file_raising_anything_is_that_files_error(batch, monkeypatch):
    """Whatever a reader raises for one file (IndexError, AttributeError...) is that file's entry alone."""
    from typer.testing import CliRunner

    import ecglab.infer.files
    from ecglab.cli.main import app

    checkpoint, files = batch
    real = ecglab.infer.files.read_ecg

    def flaky(path, **options):
        if str(path).endswith("flatlead.hea"):
            raise IndexError("tuple index out of range")
        return real(path, **options)

    monkeypatch.setattr(ecglab.infer.files, "read_ecg", flaky)
    result = CliRunner().invoke(app, ["predict", str(files[0]), str(files[1]), "--model", str(checkpoint),
                                      "--format", "json"])  # fmt: skip
    assert result.exit_code == 1
    good, bad = json.loads(result.stdout)
    assert (
        good["labels"]
        and bad["error"] == f"{files[1]}: could not be read or scored (IndexError: tuple index out of range)"
    )
