"""What every request passes before the app sees it: an allowed Host, a same-origin POST, no leaked traceback.

- Host: a page on another site can point its own DNS name at 127.0.0.1 (DNS rebinding) and then
  read this server's answers as same-origin; answering only to known Host names stops that. The
  loopback names are always allowed, `--host` and `--allow-host` add more.
- Origin: a browser names the page behind a POST in `Origin` (and `Sec-Fetch-Site`); a POST whose
  origin is not this server's own scheme-less host:port is refused, so another site (another port
  on this machine included) cannot make a visitor's browser upload to this server. Clients that
  are not browsers send no Origin and pass.
- Token: with `--token` (or `ECGLAB_TOKEN`), every request but the health check and the page's own
  files must carry `Authorization: Bearer <token>`, compared in constant time; else a 401. The
  page holds no data, and it asks for the token and sends it with each upload.
- Any exception the app lets through becomes a 500 with a JSON body and no traceback (the log has
  it), and the connection stays open for the client's next request.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # listen addresses, not names a client would use
OPEN_PATHS = ("/health", "/", "/local")  # and the page's files under /static/: no token needed
log = logging.getLogger("ecglab.serve")


def host_name(host: str) -> str:
    """`example.org:8000` -> `example.org`, `[::1]:8000` -> `::1`, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the server to this machine."""
    name = host_name(host)
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:  # a name other than localhost may resolve anywhere
        return False


def allowed_hosts(listen: str | None = None, extra: Iterable[str] = ()) -> frozenset[str]:
    """The Host names served: loopback, the address listened on (unless a wildcard) and `extra`."""
    names = {*LOOPBACK_HOSTS, *(host_name(h) for h in extra)}
    if listen is not None and listen not in WILDCARD_HOSTS:
        names.add(host_name(listen))
    return frozenset(names)


class Gate:
    """ASGI middleware: Host allow-list, same-origin POSTs, the bearer token, and a JSON 500 for anything unexpected."""

    def __init__(self, app, hosts: Iterable[str] = LOOPBACK_HOSTS, token: str | None = None):
        self.app = app
        self.hosts = frozenset(host_name(h) for h in hosts)
        self.token = token.encode() if token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        refusal = self.refusal(scope["method"], headers) or self.unauthorized(scope["path"], headers)
        if refusal is not None:
            log.info("refused (%d): %s", *refusal)
            extra = {"WWW-Authenticate": "Bearer"} if refusal[0] == 401 else {}
            return await _json(refusal[0], refusal[1], close=True, headers=extra)(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("error while answering %s %s", scope["method"], scope.get("path"))
            if started:
                raise  # half an answer is out; only closing the connection can end it
            message = "internal error while answering this request; the server's log has the details"
            await _json(500, message)(scope, receive, send)

    def refusal(self, method: str, headers: Headers) -> tuple[int, str] | None:
        """(status, message) when the request must be refused, else None."""
        host = host_name(headers.get("host", ""))
        if host not in self.hosts:
            return 400, (
                f"this server does not answer to the Host {host or '(none)'!r}; "
                "start it with --allow-host NAME to serve that name"
            )
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            return None
        origin = headers.get("origin")
        same = origin is None or urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
        if not same or headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return (
                403,
                f"cross-origin request from {origin or 'another site'} refused; use this server's own page",
            )
        return None

    def unauthorized(self, path: str, headers: Headers) -> tuple[int, str] | None:
        """(401, message) when a token is set and the request lacks it, else None."""
        if self.token is None or path in OPEN_PATHS or path.startswith("/static/"):
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token):
            return None
        return 401, "this server needs its access token: send the header `Authorization: Bearer <token>`"


def _json(status: int, message: str, close: bool = False, headers: dict | None = None) -> JSONResponse:
    headers = {**(headers or {}), **({"Connection": "close"} if close else {})}
    return JSONResponse({"detail": message}, status_code=status, headers=headers)
