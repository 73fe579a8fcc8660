"""Load test for `ecglab serve`: many requests from a few concurrent connections, every answer counted.

    python benchmarks/serve_load.py --url http://127.0.0.1:8000 --requests 300 --concurrency 4 \
        00001_lr.hea 00001_lr.dat

Every `--predict-every`-th request posts the files to /predict, the others GET /health. Prints one
JSON object (counts by status, failures, latency percentiles, requests per second) and exits 1 when
any request did not get a 200. Standard library only, so it runs from any Python beside the server.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def multipart(paths: list[Path]) -> tuple[bytes, str]:
    """A multipart/form-data body with each file in the field `files`, and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for path in paths:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts += [head.encode(), path.read_bytes(), b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def one(url: str, kind: str, body: bytes, content_type: str, timeout: float) -> tuple[str, int | str, float]:
    """(kind, HTTP status or error text, seconds) of one request."""
    if kind == "predict":
        request = urllib.request.Request(
            f"{url}/predict", data=body, headers={"Content-Type": content_type}, method="POST"
        )
    else:
        request = urllib.request.Request(f"{url}/health")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
            ok = "predictions" in payload if kind == "predict" else payload.get("status") == "ok"
            status = response.status if ok else f"{response.status} with an unexpected body"
    except urllib.error.HTTPError as exc:
        status = exc.code
    except Exception as exc:  # refused, reset, timed out: all count as lost
        status = f"{type(exc).__name__}: {exc}"
    return kind, status, time.perf_counter() - start


def percentiles(seconds: list[float]) -> dict:
    if not seconds:
        return {}
    ordered = sorted(seconds)
    pick = lambda q: round(1000 * ordered[min(int(q * len(ordered)), len(ordered) - 1)], 1)  # noqa: E731
    return {"n": len(ordered), "p50_ms": pick(0.5), "p95_ms": pick(0.95), "max_ms": pick(1.0)}


def run(
    url: str, paths: list[Path], requests: int, concurrency: int, predict_every: int, timeout: float
) -> dict:
    body, content_type = multipart(paths)
    kinds = ["predict" if i % predict_every == 0 else "health" for i in range(requests)]
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda k: one(url, k, body, content_type, timeout), kinds))
    seconds = time.perf_counter() - start
    statuses = Counter(str(status) for _, status, _ in results)
    return {
        "requests": requests,
        "answered": len(results),
        "ok": statuses.get("200", 0),
        "statuses": dict(statuses),
        "failures": [f"{k}: {s}" for k, s, _ in results if s != 200][:10],
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
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args(argv)
    report = run(
        args.url.rstrip("/"), args.files, args.requests, args.concurrency, args.predict_every, args.timeout
    )
    print(json.dumps(report))
    return 0 if report["ok"] == args.requests else 1


if __name__ == "__main__":
    sys.exit(main())
