"""`ecglab serve` over real HTTP: a server subprocess on 127.0.0.1, requests as any client would send them."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="ecglab serve needs fastapi, uvicorn and python-multipart")
httpx = pytest.importorskip("httpx", reason="the serve tests talk HTTP with httpx")

from helpers import run_cli, write_wfdb  # noqa: E402
from infer_helpers import CLASSES, make_checkpoint  # noqa: E402
from serve_helpers import client_port, running_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PREDICTION_KEYS = {"record", "model", "probabilities", "labels", "warnings"}  # `ecglab predict --format json`


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def checkpoint(work) -> Path:
    return make_checkpoint(work / "ckpt")


@pytest.fixture(scope="module")
def server(work, checkpoint):
    with running_server(checkpoint, work, "--max-upload-mb", "1", "--body-timeout", "2") as server:
        yield server


@pytest.fixture(scope="module")
def record(work) -> list[Path]:
    """A 12-lead WFDB pair, 12 s at 100 Hz (a synthetic rhythm: the tests check plumbing)."""
    t = np.arange(1200) / 100
    x = np.stack([np.sin(2 * np.pi * (1.0 + 0.1 * i) * t) * 0.5 for i in range(12)])
    hea = write_wfdb(work / "rec" / "r001", x, 100)
    return [hea, hea.with_suffix(".dat")]


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def files(*paths: Path, names: list[str] | None = None) -> list[tuple]:
    names = names or [p.name for p in paths]
    return [
        ("files", (name, p.read_bytes(), "application/octet-stream"))
        for name, p in zip(names, paths, strict=True)
    ]


def assert_refused(server, response, status: int | tuple[int, ...], *words: str) -> str:
    """The request got `status` with a message holding `words`; the server still answers and kept no file."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    for word in words:
        assert word in detail, detail
    assert str(server.tmp) not in detail and "ecglab-serve-" not in detail  # no server paths
    assert server.health()["status"] == "ok"
    assert server.leftovers() == []
    return detail


def test_health_names_the_model(server):
    health = server.health()
    assert health["status"] == "ok" and health["model"] == "ckpt"
    assert health["classes"] == CLASSES and len(health["leads"]) == 12
    assert health["version"] and health["max_upload_bytes"] == 1024 * 1024


def test_openapi_schema_lists_the_endpoints(client):
    schema = client.get("/openapi.json").json()
    assert {"/health", "/predict", "/explain"} <= set(schema["paths"])
    for path in ("/predict", "/explain"):
        fields = schema["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert (
            fields["properties"]["files"]["minItems"] == 1
            and ".hea" in fields["properties"]["files"]["description"]
        )
        assert fields["properties"]["fs"]["exclusiveMinimum"] == 0
        responses = schema["paths"][path]["post"]["responses"]
        assert {"403", "408", "413", "415", "422", "503"} <= set(responses)
        assert responses["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
    refused = client.post("/explain?dpi=1000", files=[("files", ("r.npy", b"x"))])
    assert refused.status_code == 422 and "dpi" in refused.json()["detail"]  # as the schema says: a string


def test_page_and_its_files_come_from_the_server(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # nothing loads from elsewhere
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/index.py").status_code == 404
    assert client.get("/static/..%2Fapp.py").status_code == 404


def test_predict_matches_the_cli_json(server, client, record, checkpoint):
    response = client.post("/predict", files=files(*record))
    assert response.status_code == 200, response.text
    body = response.json()
    (got,) = body["predictions"]
    assert PREDICTION_KEYS <= set(got) and got["record"] == "r001.hea" and body["model"] == "ckpt"
    (cli,) = json.loads(
        run_cli("predict", str(record[0]), "--model", str(checkpoint), "--format", "json").stdout
    )
    assert set(cli) == PREDICTION_KEYS
    assert got["labels"] == cli["labels"]
    assert got["probabilities"] == pytest.approx(cli["probabilities"], abs=1e-6)
    assert server.leftovers() == []


def test_predict_npy_with_fields(client, work):
    x = np.random.default_rng(0).normal(size=(12, 1000)).astype(np.float32) * 0.2
    np.save(work / "rec.npy", x)
    leads = "I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6"
    response = client.post("/predict", files=files(work / "rec.npy"), data={"fs": "100", "leads": leads})
    assert response.status_code == 200, response.text
    assert set(response.json()["predictions"][0]["probabilities"]) == set(CLASSES)


def test_predict_several_records_explain_one(server, client, record, work):
    np.save(work / "second.npy", np.random.default_rng(1).normal(0, 0.3, (12, 1000)).astype(np.float32))
    both = files(*record, work / "second.npy")
    response = client.post(
        "/predict", files=both, data={"fs": "100", "leads": ",".join(server.health()["leads"])}
    )
    assert response.status_code == 200, response.text
    assert [p["record"] for p in response.json()["predictions"]] == ["r001.hea", "second.npy"]
    refused = client.post("/explain", files=both, data={"fs": "100", "leads": "I"})
    assert_refused(server, refused, 400, "one record", "r001.hea, second.npy")


def test_explain_returns_a_png(server, client, record):
    response = client.post("/explain?format=png", files=files(*record))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png" and response.content.startswith(PNG_MAGIC)
    body = client.post("/explain", files=files(*record), data={"class": "AF"}).json()
    assert body["class"] == "AF" and body["media_type"] == "image/png"
    assert base64.b64decode(body["image"]).startswith(PNG_MAGIC)
    assert PREDICTION_KEYS <= set(body["prediction"])
    svg = client.post("/explain?format=svg", files=files(*record))
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content[:2000]
    assert server.leftovers() == []


def test_explain_unknown_class(server, client, record):
    response = client.post("/explain", files=files(*record), data={"class": "STEMI"})
    assert_refused(server, response, 422, "STEMI", "NORM, AF, OTHER")


def test_explain_refuses_a_long_record(server, client, work):
    np.save(
        work / "long.npy", np.random.default_rng(2).normal(0, 0.3, (12, 13_000)).astype(np.float32)
    )  # 130 s
    data = {"fs": "100", "leads": ",".join(server.health()["leads"])}
    assert_refused(
        server, client.post("/explain", files=files(work / "long.npy"), data=data), 422, "long.npy", "120 s"
    )
    assert client.post("/predict", files=files(work / "long.npy"), data=data).status_code == 200


def test_too_large_is_413(server, client, work):
    big = work / "big.npy"
    np.save(big, np.zeros((12, 30_000), dtype=np.float32))  # 1.4 MB, the limit is 1 MB
    response = client.post("/predict", files=files(big), data={"fs": "500", "leads": "I"})
    assert_refused(server, response, 413, "too large", "1.0 MB")


def test_too_large_streamed_without_length_is_413(server, client):
    def chunks():  # chunked transfer: no Content-Length, the limit is enforced while reading
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="x.npy"\r\n\r\n'
        for _ in range(40):
            yield b"\0" * 65536

    response = client.post(
        "/predict", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert_refused(server, response, 413, "too large")


def test_wrong_type_is_415(server, client, work):
    (work / "notes.txt").write_text("not an ECG")
    assert_refused(server, client.post("/predict", files=files(work / "notes.txt")), 415, "notes.txt", ".hea")
    assert_refused(server, client.post("/predict", json={"files": "x"}), 415, "multipart/form-data")


@pytest.mark.parametrize(
    "name, content",
    [("bad.hea", b"\x00\x01garbage"), ("bad.npy", b"\x93NUMPY garbage"), ("bad.mat", b"MATLAB 5.0 garbage" * 10),
     ("bad.csv", b"I,II\n1,x,3\n"), ("bad.edf", b"0       garbage")],
)  # fmt: skip
def test_corrupt_file_is_refused_by_name(server, client, name, content):
    response = client.post("/predict", files=[("files", (name, content))], data={"fs": "100"})
    assert_refused(server, response, (400, 422), name)


@pytest.mark.parametrize(
    "data, extra, words",
    [({"colour": "red"}, [], ("unknown form field 'colour'", "fs, leads, units")),
     ({"fs": "fast"}, [], ("fs='fast'", "Hz")),
     ({"units": "furlongs"}, [], ("furlongs", "mV or uV")),
     ({}, [("files", ("r001.hea", b"again"))], ("r001.hea: uploaded twice",)),
     ({}, [("files", ("", b""))], ("no file name",))],
)  # fmt: skip
def test_bad_requests_are_400(server, client, record, data, extra, words):
    response = client.post("/predict", files=files(*record) + extra, data=data)
    assert_refused(server, response, 400, *words)


def test_no_file_is_400(server, client):
    response = client.post("/predict", files={"fs": (None, "100")})
    assert_refused(server, response, 400, "no file uploaded")


def test_dat_without_its_header(server, client, record):
    assert_refused(server, client.post("/predict", files=files(record[1])), 422, "r001.dat", "r001.hea")


@pytest.mark.parametrize("name", ["../r001.hea", "/etc/r001.hea", "a\\b.hea", ".hidden.hea"])
def test_file_names_with_folders_are_refused(server, client, record, name):
    response = client.post("/predict", files=files(*record, names=[name, "r001.dat"]))
    assert_refused(server, response, 400, "name", Path(name.replace("\\", "/")).name)


@pytest.mark.parametrize(
    "target, words",
    [("../../etc/passwd", ("outside its own folder",)), ("/etc/passwd", ("outside its own folder",)),
     ("other.dat", ("not uploaded",))],
)  # fmt: skip
def test_header_cannot_name_a_file_that_was_not_uploaded(server, client, record, target, words):
    header = record[0].read_text().replace("r001.dat", target)
    response = client.post("/predict", files=[("files", ("r001.hea", header.encode())),
                                              ("files", ("r001.dat", record[1].read_bytes()))])  # fmt: skip
    assert_refused(server, response, 422, "r001.hea", *words)


def test_wrong_lead_count_names_the_missing_leads(server, client, work):
    np.save(work / "one_lead.npy", np.zeros((1, 1000), dtype=np.float32))
    response = client.post("/predict", files=files(work / "one_lead.npy"), data={"fs": "100", "leads": "II"})
    assert_refused(server, response, 422, "one_lead.npy", "V1", "V6")


@pytest.mark.data
def test_cinc2017_single_lead_names_the_missing_leads(server, client, cinc2017_root):
    stem = cinc2017_root / "training2017" / "A00001"
    response = client.post("/predict", files=files(stem.with_suffix(".hea"), stem.with_suffix(".mat")))
    assert_refused(server, response, 422, "A00001.hea", "II, III, aVR", "V6")


@pytest.mark.data
def test_real_records(server, client, ptbxl_root, cpsc2018_root):
    stem = ptbxl_root / "records100" / "00000" / "00001_lr"
    pair = client.post("/predict", files=files(stem.with_suffix(".hea"), stem.with_suffix(".dat")))
    cpsc = client.post("/predict", files=files(cpsc2018_root / "TrainingSet" / "A1980.mat"))
    assert pair.status_code == 200 and cpsc.status_code == 200, (pair.text, cpsc.text)
    assert cpsc.json()["predictions"][0]["record"] == "A1980.mat"


@pytest.mark.slow
def test_load_from_a_second_process_loses_nothing(server, record):
    command = [sys.executable, str(REPO / "benchmarks" / "serve_load.py"), "--url", server.url,
               "--requests", "300", "--concurrency", "4", "--predict-every", "3", *map(str, record)]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    report = json.loads(proc.stdout)
    print(json.dumps(report, indent=1))
    assert proc.returncode == 0, report
    assert report["answered"] == report["ok"] == 300 and report["statuses"] == {"200": 300}
    assert server.health()["status"] == "ok"
    assert server.leftovers() == []


def _edited(record, edit) -> list[tuple]:
    header = edit(record[0].read_text())
    return [("files", ("r001.hea", header.encode())), ("files", ("r001.dat", record[1].read_bytes()))]


def _signal_field(column: int, value: str):
    def edit(text: str) -> str:
        lines = text.splitlines()
        tokens = lines[1].split()
        tokens[column] = value
        return "\n".join([lines[0], " ".join(tokens), *lines[2:]]) + "\n"

    return edit


@pytest.mark.parametrize(
    "edit, words",
    [(lambda t: t.replace("1000.0(0)/mV", "e(0)/mV", 1), ("line 2: ADC gain 'e' is not a number",)),
     (_signal_field(4, "zz"), ("ADC zero 'zz' is not a whole number",)),
     (_signal_field(6, "12a"), ("checksum '12a' is not a whole number",)),
     (lambda t: t.replace("r001 12 100", "r001 0 100", 1), ("says 0 signals",)),
     (lambda t: t.replace("r001 12 100", "r001 12 1e9", 1), ("1e+09 Hz is outside 50-10000 Hz",)),
     (lambda t: t.replace("r001 12 100", "r001 12 inf", 1), ("sampling rate 'inf' is not a number",)),
     (lambda t: t.replace("r001 12 100", "r001 12 0.01", 1), ("0.01 Hz is outside 50-10000 Hz",))],
)  # fmt: skip
def test_malformed_header_is_422_and_the_connection_serves_the_next(server, client, record, edit, words):
    refused = client.post("/predict", files=_edited(record, edit))
    assert_refused(server, refused, 422, "r001.hea", *words)
    served = client.post("/predict", files=files(*record))
    assert served.status_code == 200 and client_port(served) == client_port(
        refused
    )  # one keep-alive connection


def test_flat_record_refused_flat_lead_warned(server, client, work):
    leads = ",".join(server.health()["leads"])
    np.save(work / "flat.npy", np.zeros((12, 1000), dtype=np.float32))
    response = client.post("/predict", files=files(work / "flat.npy"), data={"fs": "100", "leads": leads})
    assert_refused(server, response, 422, "flat.npy", "no ECG to classify")
    x = np.random.default_rng(3).normal(0, 0.3, (12, 1000)).astype(np.float32)
    x[0] = 0.0
    np.save(work / "flat_i.npy", x)
    response = client.post("/predict", files=files(work / "flat_i.npy"), data={"fs": "100", "leads": leads})
    assert response.status_code == 200 and response.json()["predictions"][0]["warnings"][0].startswith(
        "flat lead(s) I "
    )


def test_rate_outside_the_limits_is_refused(server, client, work):
    np.save(work / "rate.npy", np.random.default_rng(4).normal(0, 0.3, (12, 1000)).astype(np.float32))
    response = client.post("/predict", files=files(work / "rate.npy"), data={"fs": "0.001", "leads": "I"})
    assert_refused(server, response, 400, "0.001 Hz is outside 50-10000 Hz", "ECGLAB_MIN_FS")


def test_stalled_body_is_408(server):
    port = int(server.url.rsplit(":", 1)[1])
    head = ("POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())  # ...and then nothing: the server gives up after --body-timeout 2
        answer = b"".join(iter(lambda: sock.recv(65536), b"")).decode()  # until the server closes
    assert answer.startswith("HTTP/1.1 408") and "the upload stalled: nothing arrived for 2 s" in answer
    assert server.health()["status"] == "ok" and server.leftovers() == []


def test_foreign_host_and_cross_origin_posts_are_refused(server, client, record):
    foreign = client.get("/health", headers={"Host": "rebound.example:8000"})
    assert_refused(server, foreign, 400, "'rebound.example'", "--allow-host")
    cross = client.post("/predict", files=files(*record), headers={"Origin": "http://evil.example"})
    assert_refused(server, cross, 403, "cross-origin", "evil.example")
    other_port = client.post("/predict", files=files(*record), headers={"Origin": "http://127.0.0.1:1"})
    assert_refused(server, other_port, 403, "cross-origin")
    same = client.post("/predict", files=files(*record), headers={"Origin": server.url})
    assert same.status_code == 200, same.text
    assert "frame-ancestors 'none'" in client.get("/").headers["content-security-policy"]


def test_load_with_bad_uploads_interleaved_drops_nothing(server, record):
    command = [sys.executable, str(REPO / "benchmarks" / "serve_load.py"), "--url", server.url, "--requests", "40",
               "--concurrency", "2", "--predict-every", "2", "--bad-every", "2", *map(str, record)]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report
    assert report["ok"] == 40 and report["bad_uploads"] == 10
    assert report["server_errors"] == 0 and report["dropped"] == 0
    assert server.leftovers() == []


def test_temp_folder_is_empty_at_the_end(server):
    assert server.leftovers() == []
    assert server.proc.poll() is None  # still serving after every refusal above


def test_serve_without_a_model_fails_clearly(tmp_path):
    proc = run_cli("serve", "--model", str(tmp_path / "missing"), "--port", "0", check=False, timeout=120)
    assert proc.returncode == 2 and "missing" in proc.stderr and "checkpoint" in proc.stderr, proc.stderr


def test_a_token_guards_everything_but_health_and_the_page(work, checkpoint, record):
    token = "s3cret-token"
    folder = work / "token"
    with running_server(checkpoint, folder, "--host", "0.0.0.0", env={"ECGLAB_TOKEN": token}) as server:
        assert server.health()["token_required"] is True
        with httpx.Client(base_url=server.url, timeout=120) as client:
            assert client.get("/").status_code == 200 and client.get("/static/app.js").status_code == 200
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
                refused = client.post("/predict", files=files(*record), headers=headers)
                assert_refused(server, refused, 401, "Authorization: Bearer")
                assert refused.headers["www-authenticate"] == "Bearer"
            assert client.get("/openapi.json").status_code == 401
            auth = {"Authorization": f"Bearer {token}"}
            assert client.get("/openapi.json", headers=auth).status_code == 200
            answer = client.post("/predict", files=files(*record), headers=auth)
            assert answer.status_code == 200 and answer.json()["predictions"][0]["record"] == "r001.hea"
    assert "WITHOUT AN ACCESS TOKEN" not in server.log.read_text()


def test_every_interface_without_a_token_warns_loudly(work, checkpoint, server):
    with running_server(checkpoint, work / "open", "--host", "0.0.0.0") as open_server:
        assert open_server.health()["token_required"] is False
    assert "WARNING: serving on 0.0.0.0 WITHOUT AN ACCESS TOKEN" in open_server.log.read_text()
    assert "WITHOUT AN ACCESS TOKEN" not in server.log.read_text()  # loopback only: no warning


def test_serve_without_its_extra_names_the_install_command():
    code = "import sys; sys.modules['fastapi'] = None\nfrom ecglab.cli.main import app\napp(['serve'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "ecglab serve needs ecglab's 'serve' extra (fastapi" in proc.stderr
    assert "pip install 'ecglab[serve]'" in proc.stderr
