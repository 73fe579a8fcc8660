"""What the server hands the in-browser page: the CSP of each page, `/models`, the ONNX files,
ONNX Runtime Web (or how to install it), and `ecglab serve --static-only`."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("fastapi", reason="ecglab serve needs fastapi, uvicorn and python-multipart")

from fastapi.testclient import TestClient  # noqa: E402

from ecglab.serve import page_models  # noqa: E402
from ecglab.serve.app import create_app  # noqa: E402
from infer_helpers import CLASSES, make_checkpoint  # noqa: E402
from serve_helpers import running_server  # noqa: E402

WASM = "'wasm-unsafe-eval'"


def client_of(checkpoint, **options) -> TestClient:
    return TestClient(create_app(checkpoint, **options), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("static-only") / "ckpt")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ECGLAB_WEIGHTS", str(tmp_path / "no-shipped-models"))
    return tmp_path / "cache"


def test_only_the_local_page_may_compile_webassembly(checkpoint, cache):
    client = client_of(checkpoint)
    home, local = client.get("/"), client.get("/local")
    assert home.status_code == local.status_code == 200
    assert WASM not in home.headers["content-security-policy"]
    policy = local.headers["content-security-policy"]
    assert "default-src 'self'" in policy and f"script-src 'self' {WASM}" in policy
    assert 'type="module" src="/static/local.js"' in local.text
    for module in ("local.js", "wfdb.js", "resample.js", "pipeline.js"):
        assert client.get(f"/static/{module}").headers["content-type"].startswith("text/javascript")


def test_models_lists_the_served_model_and_hands_out_its_onnx(checkpoint, cache):
    client = client_of(checkpoint, static_only=True)
    catalog = client.get("/models").json()
    assert catalog["default"] == "ckpt" and catalog["single_lead"] is None
    (model,) = catalog["models"]
    assert model["classes"] == CLASSES and model["fs"] == 100 and model["window_samples"] == 1000
    assert model["onnx"] == "/models/ckpt/model.onnx" and catalog["limits"]["max_fs"] == 10_000
    onnx = client.get(model["onnx"])
    assert onnx.status_code == 200 and len(onnx.content) > 10_000
    assert list(cache.glob("onnx/ckpt-*.onnx")) and not (checkpoint / "model.onnx").exists()
    missing = client.get("/models/other/model.onnx")
    assert missing.status_code == 404 and "GET /models" in missing.json()["detail"]


def test_a_missing_runtime_names_make_web(checkpoint, cache, tmp_path, monkeypatch):
    monkeypatch.setattr(page_models, "VENDOR", tmp_path / "empty")
    client = client_of(checkpoint, static_only=True)
    answer = client.get("/static/vendor/ort.wasm.min.mjs")
    assert answer.status_code == 404 and "run `make web`" in answer.json()["detail"]
    assert "make web" in client.get("/models").json()["runtime_missing"]


def test_static_only_serves_the_page_and_no_prediction_endpoint(checkpoint, tmp_path):
    env = {"ECGLAB_CACHE": str(tmp_path / "cache"), "ECGLAB_WEIGHTS": str(tmp_path / "none")}
    with running_server(checkpoint, tmp_path, "--static-only", env=env) as server:
        assert server.health()["static_only"] is True
        with httpx.Client(base_url=server.url, timeout=120) as client:
            home = client.get("/")
            assert home.status_code == 200 and WASM in home.headers["content-security-policy"]
            assert "in this browser" in home.text
            for endpoint in ("/predict", "/explain"):
                refused = client.post(endpoint, files={"files": ("a.csv", b"1,2\n")})
                assert refused.status_code in (404, 405), endpoint
            assert [m["name"] for m in client.get("/models").json()["models"]] == ["ckpt"]
            assert client.get("/models/ckpt/model.onnx").status_code == 200
    assert "serving the in-browser page" in server.log.read_text()
