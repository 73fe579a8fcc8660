"""The in-browser page refuses what `predict` refuses, with the same words: its readers and
preparation (static/records.js, static/pipeline.js, run in node) against `read_ecg` + `Predictor.prepare`."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.data.errors import RecordError
from ecglab.data.leads import STANDARD_LEADS
from ecglab.infer.files import read_ecg
from ecglab.infer.limits import Limits
from ecglab.infer.predictor import Predictor
from helpers import write_wfdb

NODE = shutil.which("node") or "/usr/bin/node"
HARNESS = Path(__file__).parent / "js" / "refusals_stdin.mjs"
MAX_RESAMPLE = 4.0  # so that a real 500 Hz record is refused for a 100 Hz model

pytestmark = pytest.mark.skipif(
    not Path(NODE).is_file(), reason=f"no node at {NODE}; apt-get install -y nodejs"
)


def edited_copy(src: Path, stem: Path, edit=lambda text: text, keep_bytes: int | None = None) -> Path:
    """A copy of WFDB record `src` named `stem`, its header text passed through `edit`, its data cut to `keep_bytes`."""
    stem.with_suffix(".hea").write_text(edit(src.read_text().replace(src.stem, stem.name)))
    data = src.with_suffix(".dat").read_bytes()
    stem.with_suffix(".dat").write_bytes(data if keep_bytes is None else data[:keep_bytes])
    return stem.with_suffix(".hea")


def first_signal_line(edit):
    def apply(text: str) -> str:
        lines = text.splitlines()
        lines[1] = edit(lines[1].split())
        return "\n".join(lines) + "\n"

    return apply


@pytest.fixture
def cases(ptbxl_root, cinc2017_root, tmp_path) -> list[list[Path]]:
    """Each record's files: good ones, and one for each refusal `predict` makes."""
    low = ptbxl_root / "records100/00000/00001_lr.hea"
    high = ptbxl_root / "records500/00000/00002_hr.hea"
    cinc = cinc2017_root / "training2017/A00001.hea"
    t = np.arange(50) / 100
    nan_csv = tmp_path / "gap.csv"
    nan_csv.write_text(
        "# fs=100\nI,II\n"
        + "".join(f"{np.sin(v):.4f},{'nan' if i == 7 else '0.1'}\n" for i, v in enumerate(t))
    )
    rateless = tmp_path / "rateless.csv"
    rateless.write_text("I,II\n0.1,0.2\n0.3,0.4\n")
    lone = tmp_path / "lone.dat"
    lone.write_bytes(low.with_suffix(".dat").read_bytes())
    headers = [
        low, high, cinc,
        edited_copy(low, tmp_path / "cut", keep_bytes=12_000),
        edited_copy(low, tmp_path / "slow", lambda s: s.replace(" 12 100 1000", " 12 10 1000")),
        edited_copy(low, tmp_path / "long", lambda s: s.replace(" 12 100 1000", " 12 100 400000")),
        edited_copy(low, tmp_path / "units", first_signal_line(lambda tok: " ".join([*tok[:2], "1000.0(0)/furlong", *tok[3:]]))),
        edited_copy(low, tmp_path / "checksum", first_signal_line(lambda tok: " ".join([*tok[:6], "1234", *tok[7:]]))),
        write_wfdb(tmp_path / "zeros", np.zeros((12, 1000)), 100),
        write_wfdb(tmp_path / "short", np.sin(np.arange(12 * 50).reshape(12, 50) / 3.0), 100),
    ]  # fmt: skip
    return [[h, h.with_name(h.read_text().splitlines()[1].split()[0])] for h in headers] + [
        [nan_csv], [rateless], [lone],
    ]  # fmt: skip


def predict_answer(path: Path, predictor: Predictor) -> str:
    try:
        predictor.prepare(read_ecg(path))
    except RecordError as exc:
        return str(exc).replace(f"{path.parent}/", "")
    return "ok"


def test_page_refuses_what_predict_refuses(cases, monkeypatch):
    monkeypatch.setenv("ECGLAB_MAX_RESAMPLE", str(MAX_RESAMPLE))
    meta = CheckpointMeta(
        model="resnet1d_wang", num_classes=2, in_chans=12, lead_names=STANDARD_LEADS, classes=("A", "B"),
        multilabel=False, fs=100.0, window_samples=1000,
    )  # fmt: skip
    predictor = Predictor(meta, run=lambda x: x, name="test")
    model = {"lead_names": list(meta.lead_names), "fs": meta.fs, "window_samples": meta.window_samples}
    job = {"records": [[str(p) for p in files] for files in cases], "model": model,
           "limits": dataclasses.asdict(Limits.from_env())}  # fmt: skip
    done = subprocess.run(
        [NODE, str(HARNESS)], input=json.dumps(job), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    page = dict(json.loads(done.stdout))
    expected = {files[0].name: predict_answer(files[0], predictor) for files in cases}
    assert page.keys() == expected.keys()
    assert sum(answer == "ok" for answer in expected.values()) == 1  # 00001_lr; every other case is refused
    for name, want in expected.items():
        # the problem (before "; ") is the same; the fix may name the page's field instead of --fs
        assert page[name].split("; ")[0] == want.split("; ")[0], (name, page[name], want)
