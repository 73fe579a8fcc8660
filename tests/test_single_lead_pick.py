"""Without --model, a one-lead file gets the shipped single-lead model (when installed) and says so."""

import csv
import io
import json

import numpy as np
import pytest

from helpers import run_cli, write_wfdb
from infer_helpers import make_checkpoint

SINGLE_CLASSES = ["N", "A", "O", "~"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A weights folder with the default 12-lead model and a small single-lead model (random weights)."""
    import torch

    from ecglab.checkpoint_meta import CheckpointMeta
    from ecglab.models import create_model
    from ecglab.train.checkpoint import save_checkpoint

    folder = tmp_path_factory.mktemp("weights")
    make_checkpoint(folder / "ptbxl_rhythm")
    torch.manual_seed(0)
    meta = {"model": "fcn_wang", "num_classes": 4, "in_chans": 1, "lead_names": ["I"], "classes": SINGLE_CLASSES,
            "multilabel": False, "fs": 100, "window_samples": 1000, "temperature": 1.5}  # fmt: skip
    save_checkpoint(
        folder / "cinc2017_single_lead", create_model("fcn_wang", 4, 1).eval(), CheckpointMeta.from_json(meta)
    )
    return folder


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    rng = np.random.default_rng(0)
    one = write_wfdb(folder / "wearable", rng.normal(0, 0.3, (1, 3000)), 300, ["I"])
    twelve = write_wfdb(folder / "twelve", rng.normal(0, 0.3, (12, 1000)), 100)
    return str(one), str(twelve)


def test_predict_picks_the_single_lead_model_for_a_one_lead_file(weights, records):
    one, twelve = records
    proc = run_cli("predict", one, twelve, "--format", "json", env={"ECGLAB_WEIGHTS": str(weights)})
    results = {r["record"]: r for r in json.loads(proc.stdout)}
    assert results[one]["model"] == "cinc2017_single_lead" and set(results[one]["probabilities"]) == set(
        SINGLE_CLASSES
    )
    assert results[twelve]["model"] == "ptbxl_rhythm"
    assert f"note: {one}: one lead: using the single-lead model cinc2017_single_lead" in proc.stderr
    table = run_cli("predict", one, env={"ECGLAB_WEIGHTS": str(weights)})
    assert f"{one}  (model cinc2017_single_lead, 1 window(s))" in table.stdout
    rows = list(csv.DictReader(io.StringIO(run_cli("predict", one, twelve, "--format", "csv",
                                                   env={"ECGLAB_WEIGHTS": str(weights)}).stdout)))  # fmt: skip
    assert [r["model"] for r in rows] == ["cinc2017_single_lead", "ptbxl_rhythm"]
    assert rows[0]["N"] and not rows[0]["NORM"] and rows[1]["NORM"] and not rows[1]["N"]


def test_model_option_wins_and_a_missing_single_lead_model_falls_back_with_a_note(weights, records, tmp_path):
    one, _ = records
    forced = run_cli(
        "predict", one, "--model", "ptbxl_rhythm", env={"ECGLAB_WEIGHTS": str(weights)}, check=False
    )
    assert (
        forced.returncode == 1 and "the model needs lead(s)" in forced.stderr and "note:" not in forced.stderr
    )
    only_default = tmp_path / "weights"
    make_checkpoint(only_default / "ptbxl_rhythm")
    fallback = run_cli("predict", one, env={"ECGLAB_WEIGHTS": str(only_default)}, check=False)
    assert fallback.returncode == 1
    assert "single-lead model cinc2017_single_lead is not installed" in fallback.stderr
    assert "using ptbxl_rhythm" in fallback.stderr and "the model needs lead(s)" in fallback.stderr


def test_explain_picks_the_single_lead_model_too(weights, records, tmp_path):
    one, _ = records
    proc = run_cli("explain", one, "--out", str(tmp_path / "w.png"), env={"ECGLAB_WEIGHTS": str(weights)})
    assert "model cinc2017_single_lead" in proc.stdout and (tmp_path / "w.png").is_file()
    assert "one lead: using the single-lead model" in proc.stderr


def test_the_server_gives_one_lead_uploads_the_single_lead_model(weights, records, monkeypatch):
    from pathlib import Path

    from ecglab.serve.service import Service
    from ecglab.serve.uploads import Upload

    monkeypatch.setenv("ECGLAB_WEIGHTS", str(weights))
    service = Service()
    assert service.health()["model"] == "ptbxl_rhythm"
    assert service.health()["single_lead_model"] == "cinc2017_single_lead"
    one, twelve = map(Path, records)
    files = {p.name: p for rec in (one, twelve) for p in (rec, rec.with_suffix(".dat"))}
    upload = Upload(folder=one.parent, files=files)
    found = {p["record"]: p["model"] for p in service.predict(upload)["predictions"]}
    assert found == {"wearable.hea": "cinc2017_single_lead", "twelve.hea": "ptbxl_rhythm"}
