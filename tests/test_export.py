"""`ecglab export`: ONNX with a dynamic batch and length that ONNX Runtime runs like PyTorch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ecglab.infer import default_models, onnx_export
from ecglab.infer.files import read_ecg
from ecglab.infer.predictor import Predictor
from ecglab.train.checkpoint import load_checkpoint
from helpers import run_cli
from infer_helpers import make_checkpoint

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
RECORDS = [f"records100/00000/{i:05d}_lr.hea" for i in (1, 2, 6, 7)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A checkpoint folder with model.onnx written by the CLI."""
    folder = make_checkpoint(tmp_path_factory.mktemp("export") / "checkpoint")
    proc = run_cli("export", str(folder), "--onnx", str(folder / "model.onnx"))
    assert "max |ONNX Runtime - PyTorch|" in proc.stdout and (folder / "model.onnx").is_file()
    return folder


@pytest.mark.data
def test_onnx_runtime_equals_pytorch_on_real_records(exported, ptbxl_root):
    torch_run = Predictor.from_checkpoint(exported)
    onnx_run = Predictor.from_checkpoint(exported, runtime="onnx")
    for name in RECORDS:
        windows, _ = torch_run.windows(read_ecg(ptbxl_root / name))
        np.testing.assert_allclose(onnx_run.run(windows), torch_run.run(windows), atol=1e-4, rtol=0)


def test_dynamic_batch_and_length(exported):
    model, _ = load_checkpoint(exported)
    session = ort.InferenceSession(str(exported / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [d if isinstance(d, int) else "dynamic" for d in session.get_inputs()[0].shape] == [
        "dynamic",
        12,
        "dynamic",
    ]
    rng = np.random.default_rng(0)
    for batch, length in ((1, 1000), (5, 1000), (1, 700), (5, 2500)):
        x = rng.standard_normal((batch, 12, length)).astype(np.float32)
        with torch.inference_mode():
            expected = model(torch.from_numpy(x)).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        assert got.shape == (batch, 3)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.data
def test_predict_runtime_onnx_equals_torch(exported, ptbxl_root):
    files = [str(ptbxl_root / name) for name in RECORDS] + [str(ptbxl_root / "records500/00000/00002_hr.hea")]
    proc = run_cli("predict", *files, "--model", str(exported), "--runtime", "onnx", "--format", "json")
    torch_run = Predictor.from_checkpoint(exported, name=str(exported))  # what `--runtime torch` prints
    expected = [torch_run.predict(read_ecg(f), f).to_json() for f in files]
    for a, b in zip(expected, json.loads(proc.stdout), strict=True):
        assert (a["record"], a["model"], a["labels"]) == (b["record"], b["model"], b["labels"])
        np.testing.assert_allclose(
            list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-4
        )


def test_runtime_onnx_without_an_export_says_how_to_make_one(tmp_path):
    folder = make_checkpoint(tmp_path / "checkpoint")
    with pytest.raises(FileNotFoundError, match=r"model.onnx: no ONNX model; run `ecglab export .*` first"):
        Predictor.from_checkpoint(folder, runtime="onnx")


def test_a_model_that_cannot_export_gets_a_clear_error(tmp_path, monkeypatch):
    folder = make_checkpoint(tmp_path / "checkpoint")

    def refuse(model, example, out):
        raise RuntimeError("aten::stft is not supported\nlong traceback")

    monkeypatch.setattr(onnx_export, "_export_dynamo", refuse)
    monkeypatch.setattr(onnx_export, "_export_torchscript", refuse)
    with pytest.raises(onnx_export.ExportError) as info:
        onnx_export.export_onnx(folder)
    message = str(info.value)
    assert message.startswith(f"{folder}: model 'resnet1d_wang' cannot be exported to ONNX")
    assert "dynamo: RuntimeError: aten::stft is not supported;" in message and "--runtime torch" in message
    assert not (folder / "model.onnx").exists()


def test_an_onnx_file_of_another_model_is_refused(exported, tmp_path):
    other = make_checkpoint(tmp_path / "other", in_chans=1, lead_names=["I"])
    with pytest.raises(
        ValueError, match=r"model.onnx: takes input \['batch', 12, 'length'\], not \(batch, 1, samples\)"
    ):
        Predictor.from_checkpoint(other, runtime="onnx", onnx_path=exported / "model.onnx")


def _package_files() -> dict[str, tuple[int, int]]:
    """Every file of the installed package (caches aside) with its size and modification time."""
    import ecglab

    root = Path(ecglab.__file__).parent
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}  # fmt: skip


@pytest.mark.data
def test_shipped_models_run_in_onnx_with_no_export_step(tmp_path, ptbxl_root):
    """`export NAME` and a first `--runtime onnx` write into the user cache, never into the package."""
    before, env = _package_files(), {"ECGLAB_CACHE": str(tmp_path / "cache")}
    proc = run_cli("export", "ptbxl_superdiagnostic", env=env)
    (exported,) = (tmp_path / "cache" / "onnx").glob("ptbxl_superdiagnostic-*.onnx")
    assert str(exported) in proc.stdout
    made = exported.stat().st_mtime_ns
    files = [str(ptbxl_root / name) for name in RECORDS[:2]]
    for name, folder in default_models().items():
        proc = run_cli("predict", *files, "--model", name, "--runtime", "onnx", "--format", "json", env=env)
        torch_run = Predictor.from_checkpoint(folder, name=name)
        for f, got in zip(files, json.loads(proc.stdout), strict=True):
            expected = torch_run.predict(read_ecg(f), f).to_json()
            assert (got["model"], got["labels"]) == (name, expected["labels"])
            np.testing.assert_allclose(
                list(got["probabilities"].values()),
                list(expected["probabilities"].values()),
                atol=1e-4,
                rtol=0,
            )
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "onnx").iterdir())
    assert cached == sorted(default_models())  # one file per model, no temporary left behind
    assert exported.stat().st_mtime_ns == made  # exported once, then reused
    assert _package_files() == before


def test_onnx_without_its_extra_names_the_install_command(tmp_path):
    code = (
        "import sys; sys.modules['onnxscript'] = None\n"
        "from ecglab.cli.main import app\n"
        "app(['export', 'ptbxl_rhythm'])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ECGLAB_CACHE": str(tmp_path)})  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "ONNX export needs ecglab's 'onnx' extra (onnxscript" in proc.stderr
    assert "pip install 'ecglab[onnx]'" in proc.stderr and not list(tmp_path.rglob("*.onnx"))


def test_an_unwritable_cache_is_named_with_the_fix(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    proc = run_cli("predict", "x.hea", "--runtime", "onnx", env={"ECGLAB_CACHE": str(blocker)}, check=False)
    assert proc.returncode == 2 and "cannot write the ONNX cache" in proc.stderr, proc.stderr
    assert "set ECGLAB_CACHE to a writable folder" in proc.stderr and "Traceback" not in proc.stderr
