"""The server's answers to its own failures: a JSON 500 without a traceback, a 503 when the model is held too long.

The app runs in this process (uvicorn in a thread), so a test can hold the model's lock or swap in
a service that fails.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="ecglab serve needs fastapi, uvicorn and python-multipart")
httpx = pytest.importorskip("httpx", reason="the serve tests talk HTTP with httpx")

from ecglab.data.leads import STANDARD_LEADS  # noqa: E402
from ecglab.infer.files import read_ecg  # noqa: E402
from ecglab.serve.app import create_app  # noqa: E402
from ecglab.serve.service import Service  # noqa: E402
from ecglab.serve.uploads import UploadError  # noqa: E402
from infer_helpers import make_checkpoint  # noqa: E402
from serve_helpers import client_port, free_port  # noqa: E402


class Failing(Service):
    """A service whose predictions fail in a way no handler expects."""

    def predict(self, upload):
        raise ZeroDivisionError("secret detail of the server")


@contextlib.contextmanager
def serving(app):
    """uvicorn on a free loopback port in a thread; its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("errors") / "ckpt")


def upload() -> dict:
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).normal(0, 0.3, (12, 1000)).astype(np.float32))
    return {
        "files": [("files", ("r.npy", buffer.getvalue()))],
        "data": {"fs": "100", "leads": ",".join(STANDARD_LEADS)},
    }


def test_unexpected_error_is_a_json_500_and_the_connection_lives_on(checkpoint):
    with (
        serving(create_app(service=Failing(checkpoint))) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        failed = client.post("/predict", **upload())
        assert failed.status_code == 500 and failed.headers["content-type"] == "application/json"
        assert failed.json() == {
            "detail": "internal error while answering this request; the server's log has the details"
        }
        assert "secret" not in failed.text and "Traceback" not in failed.text
        after = client.get("/health")
        assert after.status_code == 200 and client_port(after) == client_port(failed)


def test_model_held_too_long_is_503(checkpoint):
    service = Service(checkpoint, request_timeout_s=0.5)
    with serving(create_app(service=service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        with service.lock:  # another request holds the model
            busy = client.post("/predict", **upload())
        assert busy.status_code == 503 and "the model is busy" in busy.json()["detail"]
        assert client.post("/predict", **upload()).status_code == 200
    rec = read_ecg(_saved(checkpoint), fs=100, leads=STANDARD_LEADS)
    with pytest.raises(TimeoutError):
        service.predictor.predict(rec, deadline=time.monotonic() - 1)  # no batch starts past the deadline
    with pytest.raises(UploadError, match="took longer than this server allows") as refused:
        with service.network(time.monotonic() + 5):
            raise TimeoutError
    assert refused.value.status == 503


def _saved(checkpoint):
    path = checkpoint.parent / "r.npy"
    np.save(path, np.random.default_rng(0).normal(0, 0.3, (12, 1000)).astype(np.float32))
    return path
