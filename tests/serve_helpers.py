"""`ecglab serve` in a subprocess on a free loopback port, for the API and browser tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

STARTUP_S = 180.0  # importing torch on a busy two-core machine can take a while


@dataclass
class Server:
    url: str
    tmp: Path  # the server's TMPDIR: every request's folder lives (briefly) here
    log: Path
    proc: subprocess.Popen

    def health(self, timeout: float = 10.0) -> dict:
        with urllib.request.urlopen(f"{self.url}/health", timeout=timeout) as response:
            assert response.status == 200
            return json.loads(response.read())

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.tmp.iterdir())


def client_port(response) -> int:
    """The client's port of the connection that carried an httpx response: the same port, the same connection."""
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(model: Path, folder: Path, *args: str, env: dict | None = None):
    """Start `python -m ecglab serve --model MODEL ARGS` with TMPDIR in `folder` (and `env`); stop it afterwards."""
    tmp, log_path = folder / "server-tmp", folder / "server.log"
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp), "MPLCONFIGDIR": str(folder / "mplconfig"), **(env or {})}
    command = [sys.executable, "-m", "ecglab", "serve", "--model", str(model), "--port", str(port), *args]
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}", tmp, log_path, proc)
    try:
        _wait_until_up(server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"ecglab serve exited {server.proc.returncode}:\n{server.log.read_text()}")
        try:
            server.health(timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"ecglab serve did not answer /health in {STARTUP_S:g} s:\n{server.log.read_text()}")


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [  # no background traffic: the test network is closed, and refused connections flood it
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 120_000


@contextlib.contextmanager
def chromium():
    """Debian's headless Chromium driven by Playwright, for the page tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
