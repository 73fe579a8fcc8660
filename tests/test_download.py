"""`ecglab data download` against a local mirror serving a few real files in the publisher's layout."""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from helpers import run_cli

PTBXL_FILES = [
    "ptbxl_database.csv",
    "scp_statements.csv",
    *(f"records100/00000/0000{i}_lr.{ext}" for i in (1, 2, 3) for ext in ("hea", "dat")),
]
CHAPMAN_IDS = {
    "Diagnostics.xlsx": "15653771",
    "RhythmNames.xlsx": "15651296",
    "ConditionNames.xlsx": "15651293",
    "AttributesDictionary.xlsx": "15653762",
}


class _Handler(BaseHTTPRequestHandler):
    """GET with `Range: bytes=N-` (206), unless the server ignores Range; logs every request."""

    def do_GET(self):
        server = self.server
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        server.requests.append((rel, self.headers.get("Range")))
        path = server.root / rel
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match and not server.ignore_range else 0
        if match and not server.ignore_range:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        self.wfile.write(body[: len(body) // 2] if rel in server.cut_short else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """A server over `tmp_path/site`; `.url`, `.root`, `.requests`, `.ignore_range`, `.cut_short`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.root = tmp_path / "site"
    server.root.mkdir()
    server.requests, server.ignore_range, server.cut_short = [], False, set()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_sums(site: Path, names) -> None:
    lines = [f"{_sha256(site / name)} {name}\n" for name in names]
    (site / "SHA256SUMS.txt").write_text("".join(lines))


@pytest.fixture
def ptbxl_site(mirror, ptbxl_root):
    for name in PTBXL_FILES:
        _copy(ptbxl_root / name, mirror.root / name)
    _write_sums(mirror.root, PTBXL_FILES)
    return mirror


def _download(name: str, dest: Path, url: str, check: bool = True):
    return run_cli("data", "download", name, "--dest", str(dest), "--base-url", url, check=check, timeout=60)


def _assert_same(site: Path, dest: Path, names) -> None:
    for name in names:
        assert (dest / name).read_bytes() == (site / name).read_bytes(), name
    assert not list(dest.rglob("*.part"))


@pytest.mark.data
def test_download_is_byte_identical_and_a_second_run_fetches_nothing(ptbxl_site, tmp_path):
    dest = tmp_path / "ptbxl"
    proc = _download("ptbxl", dest, ptbxl_site.url)
    _assert_same(ptbxl_site.root, dest, PTBXL_FILES)
    assert f"{len(PTBXL_FILES)} file(s) written" in proc.stdout

    ptbxl_site.requests.clear()
    proc = _download("ptbxl", dest, ptbxl_site.url)
    assert ptbxl_site.requests == []
    assert "up to date" in proc.stdout

    (dest / PTBXL_FILES[-1]).write_bytes(b"damaged")  # present but wrong: fetched again, alone
    _download("ptbxl", dest, ptbxl_site.url)
    assert ptbxl_site.requests == [(PTBXL_FILES[-1], None)]
    _assert_same(ptbxl_site.root, dest, PTBXL_FILES)


@pytest.mark.data
def test_a_part_file_resumes_with_a_range_request(ptbxl_site, tmp_path):
    dest = tmp_path / "ptbxl"
    data = (ptbxl_site.root / "ptbxl_database.csv").read_bytes()
    half = len(data) // 2
    dest.mkdir()
    (dest / "ptbxl_database.csv.part").write_bytes(data[:half])
    _download("ptbxl", dest, ptbxl_site.url)
    assert ("ptbxl_database.csv", f"bytes={half}-") in ptbxl_site.requests
    _assert_same(ptbxl_site.root, dest, PTBXL_FILES)


@pytest.mark.data
def test_a_server_that_ignores_range_restarts_the_file(ptbxl_site, tmp_path):
    dest = tmp_path / "ptbxl"
    dest.mkdir()
    (dest / "ptbxl_database.csv.part").write_bytes(b"x" * 1000)  # appending to this would corrupt the file
    ptbxl_site.ignore_range = True
    _download("ptbxl", dest, ptbxl_site.url)
    assert ("ptbxl_database.csv", "bytes=1000-") in ptbxl_site.requests
    _assert_same(ptbxl_site.root, dest, PTBXL_FILES)


@pytest.mark.data
def test_a_checksum_mismatch_names_the_file_and_both_hashes_and_keeps_nothing(ptbxl_site, tmp_path):
    bad = "records100/00000/00002_lr.dat"
    expected = _sha256(ptbxl_site.root / bad)
    served = ptbxl_site.root / bad
    served.write_bytes(served.read_bytes()[::-1])  # after SHA256SUMS.txt was written
    dest = tmp_path / "ptbxl"
    proc = _download("ptbxl", dest, ptbxl_site.url, check=False)
    assert proc.returncode != 0
    assert "00002_lr.dat" in proc.stderr and expected in proc.stderr and _sha256(served) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (dest / bad).exists() and not (dest / f"{bad}.part").exists()


@pytest.mark.data
def test_cinc2017_zip_is_extracted_into_training2017(mirror, cinc2017_root, tmp_path):
    records = [f"training2017/A0000{i}.{ext}" for i in (1, 2, 3) for ext in ("hea", "mat")]
    with zipfile.ZipFile(mirror.root / "training2017.zip", "w") as zf:
        for name in [*records, "training2017/REFERENCE.csv"]:
            zf.write(cinc2017_root / name, name)
    _copy(cinc2017_root / "training2017/REFERENCE-v3.csv", mirror.root / "REFERENCE-v3.csv")
    _write_sums(mirror.root, ["training2017.zip", "REFERENCE-v3.csv"])
    dest = tmp_path / "cinc2017"
    _download("cinc2017", dest, mirror.url)
    for name in [*records, "training2017/REFERENCE.csv", "training2017/REFERENCE-v3.csv"]:
        assert (dest / name).read_bytes() == (cinc2017_root / name).read_bytes(), name
    assert "up to date" in _download("cinc2017", dest, mirror.url).stdout


@pytest.mark.data
def test_chapman_checks_sizes_resumes_a_cut_transfer_and_extracts(mirror, chapman_root, tmp_path):
    for name, file_id in CHAPMAN_IDS.items():
        _copy(chapman_root / name, mirror.root / file_id)
    for file_id, folder in (("15651326", "ECGData"), ("15652862", "ECGDataDenoised")):
        with zipfile.ZipFile(mirror.root / file_id, "w") as zf:
            zf.writestr(f"{folder}/MUSE_20180111_155115_19000.csv", "I,II\n1,2\n")
    dest = tmp_path / "chapman"
    mirror.cut_short = {"15653771"}
    proc = _download("chapman", dest, mirror.url, check=False)
    assert proc.returncode != 0 and "connection closed after" in proc.stderr and "15653771" in proc.stderr
    assert "sizes only" in proc.stderr
    assert (dest / "Diagnostics.xlsx.part").stat().st_size == (
        chapman_root / "Diagnostics.xlsx"
    ).stat().st_size // 2

    mirror.cut_short = set()
    _download("chapman", dest, mirror.url)
    assert any(rel == "15653771" and rng for rel, rng in mirror.requests)
    _assert_same(chapman_root, dest, CHAPMAN_IDS)
    assert (dest / "ECGDataDenoised/MUSE_20180111_155115_19000.csv").read_text() == "I,II\n1,2\n"
    assert (dest / "ECGData/MUSE_20180111_155115_19000.csv").is_file()


def test_an_unknown_dataset_is_a_clear_error(tmp_path):
    proc = run_cli("data", "download", "ptb-xl", "--dest", str(tmp_path), check=False)
    assert proc.returncode != 0
    assert "unknown dataset 'ptb-xl'" in proc.stderr and "did you mean 'ptbxl'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unreachable_server_names_the_url_and_suggests_a_mirror(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    proc = _download("ptbxl", tmp_path / "ptbxl", url, check=False)
    assert proc.returncode != 0
    assert f"{url}SHA256SUMS.txt" in proc.stderr and "--base-url" in proc.stderr
    assert "Traceback" not in proc.stderr
