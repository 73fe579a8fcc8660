"""The README's main job: a synthetic record, predicted and explained with the shipped model only."""

import json

import numpy as np
import pytest

from ecglab.infer import default_models
from ecglab.infer.synthetic import synthetic_ecg
from helpers import run_cli


def test_synthetic_ecg_shape_and_rhythms():
    x = synthetic_ecg("sinus", fs=500)
    assert x.shape == (12, 5000) and x.dtype == np.float32 and np.isfinite(x).all()
    assert 0.8 < x[1].max() < 2.0  # lead II R waves around 1.2 mV
    assert not np.array_equal(synthetic_ecg("afib"), x)
    with pytest.raises(ValueError, match="unknown rhythm 'vfib'"):
        synthetic_ecg("vfib")


@pytest.mark.skipif("ptbxl_rhythm" not in default_models(), reason="no shipped ptbxl_rhythm model")
def test_example_predict_and_explain_need_nothing_but_the_package(tmp_path):
    hea = tmp_path / "synthetic_sinus.hea"
    assert run_cli("example", "--out", str(tmp_path)).stdout.strip() == str(hea)
    assert "SYNTHETIC" in hea.read_text()
    out = json.loads(run_cli("predict", str(hea), "--format", "json").stdout)
    assert out[0]["model"] == "ptbxl_rhythm" and out[0]["labels"] == ["SR"]
    png = tmp_path / "sinus.png"
    proc = run_cli("explain", str(hea), "--out", str(png))
    assert "explained SR" in proc.stdout and png.stat().st_size > 50_000
