"""The in-browser page (/local): records read, resampled, windowed and scored by ONNX Runtime Web in
headless Chromium, with the server's prediction endpoints blocked, equal to `ecglab predict`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="ecglab serve needs fastapi, uvicorn and python-multipart")
playwright = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs `pip install playwright`"
)

from conftest import dataset_dir  # noqa: E402
from ecglab.infer import SINGLE_LEAD_MODEL  # noqa: E402
from ecglab.serve.page_models import runtime_missing  # noqa: E402
from helpers import run_cli  # noqa: E402
from infer_helpers import make_checkpoint  # noqa: E402
from serve_helpers import CHROMIUM, TIMEOUT_MS, chromium, running_server  # noqa: E402

TWELVE_LEAD = "ptbxl_test"
SINGLE_CLASSES = ["N", "A", "O", "~"]
TOLERANCE = 1e-4

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM}; apt-get install -y chromium"
    ),
    pytest.mark.skipif(
        runtime_missing() is not None, reason="ONNX Runtime Web is not installed; run `make web`"
    ),
]


def single_lead_checkpoint(folder: Path) -> Path:
    """A one-lead, 300 Hz, four-class softmax model (random weights: the test checks the page, not skill)."""
    import torch

    from ecglab.checkpoint_meta import CheckpointMeta
    from ecglab.models import create_model
    from ecglab.train.checkpoint import save_checkpoint

    torch.manual_seed(1)
    model = create_model("resnet1d_wang", num_classes=len(SINGLE_CLASSES), in_chans=1)
    with torch.no_grad():  # spread the logits, so records differ in their probabilities
        [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].weight.mul_(20.0)
    meta = CheckpointMeta(
        model="resnet1d_wang", num_classes=len(SINGLE_CLASSES), in_chans=1, lead_names=("I",),
        classes=tuple(SINGLE_CLASSES), multilabel=False, fs=300.0, window_samples=3000, seconds=10.0,
        aggregate="max", dataset="cinc2017", task="test",
    )  # fmt: skip
    return save_checkpoint(folder, model.eval(), meta)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A weights folder (ECGLAB_WEIGHTS) with a 12-lead multi-label model and a single-lead one."""
    folder = tmp_path_factory.mktemp("weights")
    make_checkpoint(folder / TWELVE_LEAD, multilabel=True, thresholds=[0.3, 0.5, 0.7])
    single_lead_checkpoint(folder / SINGLE_LEAD_MODEL)
    return folder


@pytest.fixture(scope="module")
def env(weights, tmp_path_factory) -> dict:
    return {"ECGLAB_WEIGHTS": str(weights), "ECGLAB_CACHE": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def write_csv(path: Path, hea: Path) -> Path:
    """A real record as a CSV `predict` reads: a `# fs=` comment, a row of lead names, samples in mV."""
    from ecglab.data.wfdb_io import read_record

    x, header = read_record(hea)
    lines = [f"# fs={header.fs:g}", ",".join(header.lead_names)]
    lines += [",".join(f"{v:.4f}" for v in row) for row in x.T]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_212(stem: Path, hea: Path) -> Path:
    """A real record rewritten in WFDB format 212 (12-bit samples, two in three bytes)."""
    import wfdb

    from ecglab.data.wfdb_io import read_record

    x, header = read_record(hea)
    wfdb.wrsamp(
        stem.name, fs=header.fs, units=["mV"] * len(x), sig_name=header.lead_names, p_signal=x.T.astype(np.float64),
        fmt=["212"] * len(x), adc_gain=[200.0] * len(x), baseline=[0] * len(x), write_dir=str(stem.parent),
    )  # fmt: skip
    return stem.with_suffix(".hea")


def truncated_copy(stem: Path, hea: Path) -> Path:
    """A real record whose .dat lost its second half."""
    text = hea.read_text().replace(hea.stem, stem.name)
    stem.with_suffix(".hea").write_text(text)
    data = hea.with_suffix(".dat").read_bytes()
    stem.with_suffix(".dat").write_bytes(data[: len(data) // 2])
    return stem.with_suffix(".hea")


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> dict[str, list[Path]]:
    """Real records by model: 100 Hz and 500 Hz WFDB, a CSV, a format-212 copy, CinC 2017 .hea + .mat; and bad files."""
    ptbxl, cinc = dataset_dir("ptbxl"), dataset_dir("cinc2017") / "training2017"
    work = tmp_path_factory.mktemp("records")
    low, high = ptbxl / "records100/00000/00001_lr.hea", ptbxl / "records500/00000/00002_hr.hea"
    twelve = [low, high, write_csv(work / "00006_hr.csv", ptbxl / "records500/00000/00006_hr.hea"),
              write_212(work / "r212", ptbxl / "records100/00000/00009_lr.hea")]  # fmt: skip
    single = [cinc / "A00015.hea", cinc / "A00001.hea"]  # 6102 samples: the last window overlaps
    notes = work / "notes.txt"
    notes.write_text("not an ECG")
    bad = [truncated_copy(work / "cut", low), notes]
    return {"twelve": twelve, "single": single, "bad": bad}


def files_of(paths: list[Path]) -> list[str]:
    """Every file the page is given: a header with its signal file, or the file alone."""
    out = []
    for p in paths:
        out.append(str(p))
        if p.suffix == ".hea":
            signal = p.read_text().splitlines()[1].split()[0]
            out.append(str(p.with_name(signal)))
    return out


def predicted(paths: list[Path], model: str, runtime: str, env: dict) -> dict[str, dict]:
    """`ecglab predict --format json` of the records, by file name."""
    proc = run_cli(
        "predict", *map(str, paths), "--model", model, "--format", "json", "--runtime", runtime, env=env
    )
    return {Path(r["record"]).name: r for r in json.loads(proc.stdout)}


def scored_in_page(page, server_url: str, files: list[str]) -> tuple[dict, dict]:
    """Open /local, choose `files`, wait for the scores: ({record: result}, {file: error message})."""
    page.goto(server_url + "/local")
    page.wait_for_function("() => document.getElementById('model-line').textContent.includes('classes')",
                           timeout=TIMEOUT_MS)  # fmt: skip
    page.set_input_files("#files", files)
    page.wait_for_function("() => document.getElementById('status').textContent.includes('scored in this browser')",
                           timeout=TIMEOUT_MS)  # fmt: skip
    results = page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll('section.record')).map(s => [
            s.dataset.record, {model: s.dataset.model,
              probabilities: Object.fromEntries(Array.from(s.querySelectorAll('tr[data-class]')).map(
                r => [r.dataset.class, Number(r.dataset.probability)])),
              labels: s.querySelector('.labels').textContent,
              warnings: (s.querySelector('.warning') || {textContent: ''}).textContent}]))"""
    )
    errors = page.evaluate(
        "() => Object.fromEntries(Array.from(document.querySelectorAll('#errors li')).map(li => [li.dataset.file, li.textContent]))"
    )
    return results, errors


def watched_page(browser, server_url: str):
    """A page whose requests are recorded and whose POSTs to the prediction endpoints fail."""
    context = browser.new_context()
    page = context.new_page()
    requests, problems = [], []
    page.on("request", lambda r: requests.append((r.method, r.url)))
    page.on("pageerror", lambda e: problems.append(str(e)))
    for endpoint in ("/predict", "/explain"):
        page.route(f"{server_url}{endpoint}**", lambda route: route.abort())
    return context, page, requests, problems


@pytest.mark.data
@pytest.mark.slow
def test_page_scores_records_like_predict_with_the_endpoints_blocked(
    browser, weights, env, records, tmp_path
):
    with running_server(weights / TWELVE_LEAD, tmp_path, env=env) as server:
        context, page, requests, problems = watched_page(browser, server.url)
        chosen = files_of(records["twelve"] + records["single"] + records["bad"])
        results, errors = scored_in_page(page, server.url, chosen)
        page.screenshot(path=str(tmp_path / "local_page.png"), full_page=True)
        context.close()
    assert problems == [], problems
    assert all(method == "GET" and url.startswith(server.url) for method, url in requests), requests
    assert not any(url.endswith(("/predict", "/explain")) for _, url in requests)

    names = {p.name for p in records["twelve"] + records["single"]}
    assert set(results) == names, (results.keys(), errors)
    assert set(errors) == {"cut.hea", "notes.txt"}, errors
    assert errors["notes.txt"].startswith("notes.txt: unsupported file type '.txt'")
    cut = run_cli("predict", str(records["bad"][0]), "--model", TWELVE_LEAD, env=env, check=False)
    assert cut.returncode != 0 and "truncated: holds 500 of the 1000 samples" in cut.stderr + cut.stdout
    assert "cut.dat: truncated: holds 500 of the 1000 samples the header gives" in errors["cut.hea"]

    for runtime in ("onnx", "torch"):
        expected = predicted(records["twelve"], TWELVE_LEAD, runtime, env)
        expected |= predicted(records["single"], SINGLE_LEAD_MODEL, runtime, env)
        for name, want in expected.items():
            got = results[name]
            assert got["model"] == (SINGLE_LEAD_MODEL if name.startswith("A0") else TWELVE_LEAD)
            assert got["probabilities"].keys() == want["probabilities"].keys()
            diff = max(abs(got["probabilities"][c] - p) for c, p in want["probabilities"].items())
            assert diff < TOLERANCE, (name, runtime, got["probabilities"], want["probabilities"])
            assert got["labels"] == (", ".join(want["labels"]) or "no class reaches its threshold"), name
            assert got["warnings"] == "; ".join(want["warnings"]), name


def test_static_only_page_asks_for_the_token_then_scores_in_the_browser(browser, weights, env, tmp_path):
    from helpers import write_wfdb

    t = np.arange(1500) / 300
    hea = write_wfdb(
        tmp_path / "rec" / "one_lead", (np.sin(2 * np.pi * 1.2 * t) * 0.8)[None], 300, leads=["ECG"]
    )
    files = [str(hea), str(hea.with_suffix(".dat"))]
    guarded = env | {"ECGLAB_TOKEN": "page-token"}
    with running_server(weights / TWELVE_LEAD, tmp_path, "--static-only", env=guarded) as server:
        context, page, requests, problems = watched_page(browser, server.url)
        page.goto(server.url + "/")
        page.wait_for_selector("#token-field:not([hidden])", timeout=TIMEOUT_MS)
        page.set_input_files("#files", files)
        page.wait_for_selector("#errors:not([hidden])", timeout=TIMEOUT_MS)
        assert "access token" in page.inner_text("#errors")
        page.fill("#token", "page-token")
        page.dispatch_event("#token", "change")
        page.wait_for_function("() => document.getElementById('model-line').textContent.includes('classes')",
                               timeout=TIMEOUT_MS)  # fmt: skip
        page.set_input_files("#files", [])
        page.set_input_files("#files", files)
        page.wait_for_function("() => document.getElementById('status').textContent.includes('scored in this browser')",
                               timeout=TIMEOUT_MS)  # fmt: skip
        assert page.get_attribute("section.record", "data-model") == SINGLE_LEAD_MODEL  # picked for one lead
        assert "shorter than the model's 10-s window; zero-padded" in page.inner_text(
            "section.record .warning"
        )
        context.close()
    assert problems == [] and all(method == "GET" for method, _ in requests), (problems, requests)
