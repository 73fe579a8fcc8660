"""Load test for `ecglab serve`: many requests over a few kept-alive connections, every answer counted.

    python benchmarks/serve_load.py --url http://127.0.0.1:8000 --requests 300 --concurrency 4 \
        --bad-every 2 00001_lr.hea 00001_lr.dat

Every `--predict-every`-th request posts the files to /predict, the others GET /health; with
`--bad-every N`, every N-th of those posts is a bad upload instead (a header with a gain of `e`,
a garbage `.npy`, a header naming a file outside its folder, a `.txt`), which must get a 4xx. Each
worker keeps one HTTP/1.1 connection open, so a server that drops a connection after an error
shows up as `dropped`. Prints one JSON object (counts by status, 5xx, dropped connections,
failures, latency percentiles, requests per second) and exits 1 unless every good request got a
200 and every bad one a 4xx. Standard library only, so it runs from any Python beside the server.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body with each (name, bytes) in the field `files`, and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts += [head.encode(), data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def bad_uploads(paths: list[Path]) -> list[tuple[bytes, str]]:
    """Bodies the server must refuse with a 4xx: broken variants of the record, and files that are no ECG."""
    files = [(p.name, p.read_bytes()) for p in paths]
    bad = [[("noise.npy", b"\x93NUMPY" + bytes(200))], [("notes.txt", b"not an ECG")]]
    header = next(((n, d.decode("latin-1")) for n, d in files if n.endswith(".hea")), None)
    if header is not None:
        name, text = header
        lines = text.splitlines()
        tokens = lines[1].split()
        others = [f for f in files if f[0] != name]
        for column, value in ((2, "e"), (0, "../../etc/passwd")):
            broken = [*tokens[:column], value, *tokens[column + 1 :]]
            edited = "\n".join([lines[0], " ".join(broken), *lines[2:]]) + "\n"
            bad.append([(name, edited.encode("latin-1")), *others])
    return [multipart(b) for b in bad]


class Worker:
    """One kept-alive connection; a request on a connection the server closed counts as dropped."""

    def __init__(self, url: str, timeout: float):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname, parts.port or 80, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict
    ) -> tuple[int | str, dict | None]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            payload = response.read()
            if response.getheader("connection", "").lower() == "close":
                self.close()
        except Exception as exc:  # reset, refused, timed out: the connection is lost
            self.close()
            return f"dropped: {type(exc).__name__}: {exc}", None
        try:
            return response.status, json.loads(payload)
        except ValueError:
            return response.status, None  # not JSON: counted by its status, with an unexpected body

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def one(worker: Worker, kind: str, body: bytes, content_type: str) -> tuple[str, int | str, float]:
    """(kind, HTTP status or what went wrong, seconds) of one request; kind is health, predict or bad."""
    start = time.perf_counter()
    if kind == "health":
        status, payload = worker.request("GET", "/health", None, {})
        ok = payload is not None and payload.get("status") == "ok"
    else:
        status, payload = worker.request("POST", "/predict", body, {"Content-Type": content_type})
        ok = payload is not None and (
            "predictions" in payload if status == 200 else isinstance(payload.get("detail"), str)
        )
    if isinstance(status, int) and not ok:
        status = f"{status} with an unexpected body"
    return kind, status, time.perf_counter() - start


def percentiles(seconds: list[float]) -> dict:
    if not seconds:
        return {}
    ordered = sorted(seconds)
    pick = lambda q: round(1000 * ordered[min(int(q * len(ordered)), len(ordered) - 1)], 1)  # noqa: E731
    return {"n": len(ordered), "p50_ms": pick(0.5), "p95_ms": pick(0.95), "max_ms": pick(1.0)}


def plan(requests: int, predict_every: int, bad_every: int) -> list[str]:
    """The kind of each request: every `predict_every`-th a post, every `bad_every`-th post a bad one."""
    kinds, posts = [], 0
    for i in range(requests):
        if i % predict_every:
            kinds.append("health")
            continue
        posts += 1
        kinds.append("bad" if bad_every and posts % bad_every == 0 else "predict")
    return kinds


def run(
    url: str, paths: list[Path], requests: int, concurrency: int, predict_every: int, timeout: float,
    bad_every: int = 0,
) -> dict:  # fmt: skip
    good = multipart([(p.name, p.read_bytes()) for p in paths])
    bad = bad_uploads(paths)
    kinds = plan(requests, predict_every, bad_every)
    bad_turn = itertools.count()
    bodies = [
        bad[next(bad_turn) % len(bad)] if kind == "bad" else good for kind in kinds
    ]  # each bad kind in turn
    workers = [Worker(url, timeout) for _ in range(concurrency)]
    spare, local = list(workers), threading.local()

    def send(kind: str, body: tuple[bytes, str]):
        if not hasattr(local, "worker"):
            local.worker = spare.pop()
        return one(local.worker, kind, *body)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(send, kinds, bodies))
    seconds = time.perf_counter() - start
    for worker in workers:
        worker.close()
    statuses = Counter(f"{k}:{s}" if k == "bad" else str(s) for k, s, _ in results)
    expected = [s == 200 if k != "bad" else isinstance(s, int) and 400 <= s < 500 for k, s, _ in results]
    return {
        "requests": requests,
        "answered": len(results),
        "ok": sum(expected),
        "bad_uploads": kinds.count("bad"),
        "server_errors": sum(str(s).startswith("5") for _, s, _ in results),
        "dropped": sum(str(s).startswith("dropped") for _, s, _ in results),
        "statuses": dict(statuses),
        "failures": [f"{k}: {s}" for (k, s, _), good in zip(results, expected, strict=True) if not good][:10],
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "requests_per_s": round(len(results) / seconds, 1),
        "latency": {
            kind: percentiles([t for k, s, t in results if k == kind and s == 200])
            for kind in ("predict", "health")
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="one record to post, e.g. a .hea and its .dat")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--predict-every", type=int, default=3, help="every n-th request is a /predict")
    parser.add_argument("--bad-every", type=int, default=0, help="every n-th post is a bad upload (0: none)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args(argv)
    report = run(
        args.url.rstrip("/"), args.files, args.requests, args.concurrency, args.predict_every, args.timeout,
        args.bad_every,
    )  # fmt: skip
    print(json.dumps(report))
    return 0 if report["ok"] == args.requests else 1


if __name__ == "__main__":
    sys.exit(main())
