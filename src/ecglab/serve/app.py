"""The HTTP server: upload an ECG, get the model's probabilities and a Grad-CAM figure; one web page.

`GET /health` names the model and its classes, `POST /predict` scores uploaded records, `POST
/explain` scores one record and draws it on ECG paper with the relevance shaded, `GET /` is the page
and `GET /openapi.json` the schema. `GET /local` is the page that scores records inside the browser
with ONNX Runtime Web (it alone may compile WebAssembly); it fetches `/models` and each model's ONNX
file, never a prediction endpoint. With `static_only` the app serves only that page and its files.
Each request's files live in a temporary folder removed when the request ends; the server opens no
other path a client could name. The network runs in FastAPI's thread pool, so `/health` answers
while a record is being scored. `gate.Gate` checks the Host and Origin of every request first;
every refusal, the schema's own validation included, is JSON `{"detail": message}` as the schema
says.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from ecglab.data.errors import RecordError
from ecglab.extras import MissingExtra
from ecglab.infer.limits import DPI_RANGE
from ecglab.serve.gate import LOOPBACK_HOSTS, Gate
from ecglab.serve.page_models import VENDOR_FILES, PageModels, runtime_missing, vendor_path
from ecglab.serve.service import DEFAULT_REQUEST_TIMEOUT_S, Service, encode
from ecglab.serve.uploads import DEFAULT_BODY_TIMEOUT_S, MAX_FILES, SUFFIXES, Upload, UploadError, receive

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
STATIC = Path(__file__).resolve().parent / "static"
LOCAL_MODULES = ("local.js", "errors.js", "leads.js", "wfdb.js", "csv.js", "quality.js", "records.js",
                 "resample.js", "pipeline.js", "runtime.js")  # fmt: skip
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"} | dict.fromkeys(
    LOCAL_MODULES, "text/javascript"
)
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
# The in-browser page alone may compile WebAssembly (ONNX Runtime Web); scripts stay this server's own.
LOCAL_HEADERS = PAGE_HEADERS | {"Content-Security-Policy": CSP + "; script-src 'self' 'wasm-unsafe-eval'"}
REFUSALS = {
    400: "bad request (a form field, the multipart body, or the Host header)",
    401: "the server's access token is missing or wrong (`Authorization: Bearer <token>`)",
    403: "a cross-origin request",
    408: "the upload stalled",
    413: "upload too large",
    415: "unsupported file type or body",
    422: "the record cannot be read or scored, or a query parameter is invalid",
    500: "an internal error (no details are sent)",
    503: "the model is busy or the request ran past its time",
}
RECORD_FIELDS = ("fs", "leads", "units")
log = logging.getLogger("ecglab.serve")


class Health(BaseModel):
    status: str
    model: str
    version: str
    classes: list[str]
    multilabel: bool
    thresholds: list[float] | None
    leads: list[str]
    fs: float
    window_seconds: float
    single_lead_model: str | None  # the model one-lead uploads get (None: every upload gets `model`)
    max_upload_bytes: int
    token_required: bool


class RecordPrediction(BaseModel):
    record: str
    model: str
    probabilities: dict[str, float]
    labels: list[str]
    windows: int
    warnings: list[str]


class Predictions(BaseModel):
    model: str
    predictions: list[RecordPrediction]


class Explanation(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    prediction: RecordPrediction
    class_name: str = Field(alias="class")
    probability: float
    method: str
    media_type: str
    image: str = Field(description="the figure, base64")


class Problem(BaseModel):
    detail: str


REFUSALS_400 = {"model": Problem, "description": REFUSALS[400]}


def _body_schema(extra: dict, images: bool = False) -> dict:
    """The multipart request body for the schema (the server streams it itself, so FastAPI can't infer it)."""
    files = {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1, "maxItems": MAX_FILES,
             "description": f"one record: a WFDB .hea with its .dat or .mat, or one of {', '.join(SUFFIXES)}; "
                            "each part's file name must end in one of these suffixes"}  # fmt: skip
    fields = {
        "fs": {"type": "number", "exclusiveMinimum": 0, "description": "sampling rate, Hz, for .npy/.csv"},
        "leads": {"type": "string", "description": "lead names, e.g. I,II,V1, for .npy/.csv"},
        "units": {"type": "string", "description": "mV or uV, for .npy/.csv"},
    }
    schema = {"type": "object", "required": ["files"], "properties": {"files": files, **fields, **extra}}
    errors = {str(code): {"model": Problem, "description": text} for code, text in REFUSALS.items()}
    if images:  # ?format=png or svg answers with the figure alone
        errors[200] = {"content": {media: {"schema": {"type": "string", "format": "binary"}}
                                   for media in ("image/png", "image/svg+xml")}}  # fmt: skip
    return {
        "openapi_extra": {
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
        },
        "responses": errors,
    }


def create_app(
    model: str | Path | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    service: Service | None = None,
    hosts: Iterable[str] = LOOPBACK_HOSTS,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    device: str = "cpu",
    token: str | None = None,
    static_only: bool = False,
) -> FastAPI:
    """The app for a checkpoint folder or shipped model name (None: the default model), loaded now
    on `device`. It answers only to the Host names in `hosts` (see `gate.allowed_hosts`), and with
    a `token` only to requests that carry it (see `gate.Gate`). `static_only` serves the in-browser
    page and the model files alone: no model is loaded and nothing is scored on the server.
    """
    import ecglab
    from ecglab.infer import resolve_model

    if static_only:
        app = _base_app("the in-browser ECG classification page", hosts, token)
        app.state.service = None
        _add_local_page(app, PageModels(None if model is None else resolve_model(str(model))), home=True)

        @app.get("/health", include_in_schema=False)
        def static_health() -> dict:
            return {
                "status": "ok",
                "static_only": True,
                "version": ecglab.__version__,
                "token_required": bool(token),
            }

        return app
    service = service or Service(model, request_timeout_s, device)
    app = _base_app(f"ECG classification with {service.name}", hosts, token)
    app.state.service = service
    _add_local_page(app, PageModels((service.folder, service.name)), home=False)

    @app.get("/health", response_model=Health, responses={400: REFUSALS_400})
    def health() -> dict:
        """The model's name, classes, leads and rate, and the upload limit."""
        return service.health() | {"max_upload_bytes": max_upload_bytes, "token_required": bool(token)}

    @app.post("/predict", response_model=Predictions, **_body_schema({}))
    async def predict(request: Request):
        """Class probabilities and decisions for every uploaded record."""
        return await _with_upload(request, (max_upload_bytes, body_timeout_s), RECORD_FIELDS, service.predict)

    extra = {"class": {"type": "string", "description": "class to explain (default: the top one)"}}

    @app.post("/explain", response_model=Explanation, **_body_schema(extra, images=True))
    async def explain(
        request: Request,
        format: Literal["json", "png", "svg"] = Query("json", description="json (PNG as base64), png or svg"),
        dpi: int = Query(100, ge=DPI_RANGE[0], le=DPI_RANGE[1], description="PNG resolution"),
    ):
        """One record's prediction and its Grad-CAM figure on ECG paper, for `class` or the top class."""

        def work(upload: Upload) -> dict:
            return service.explain(
                upload, upload.fields.get("class"), "svg" if format == "svg" else "png", dpi
            )

        result = await _with_upload(
            request, (max_upload_bytes, body_timeout_s), (*RECORD_FIELDS, "class"), work
        )
        if isinstance(result, Response):
            return result
        if format == "json":
            return encode(result)
        return Response(result["image"], media_type=result["media_type"])

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    return app


def _base_app(summary: str, hosts: Iterable[str], token: str | None) -> FastAPI:
    """FastAPI with the Gate in front and every validation refusal as `{"detail": message}`."""
    import ecglab

    app = FastAPI(
        title="ecglab",
        version=ecglab.__version__,
        summary=summary,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; the page and the schema don't
        redoc_url=None,
    )
    app.add_middleware(Gate, hosts=hosts, token=token)
    app.add_exception_handler(RequestValidationError, _invalid)
    return app


def _add_local_page(app: FastAPI, models: PageModels, home: bool) -> None:
    """The in-browser page at /local (and at / when `home`), its files, ONNX Runtime Web and the models."""

    def local_page() -> FileResponse:
        return FileResponse(STATIC / "local.html", media_type="text/html", headers=LOCAL_HEADERS)

    app.get("/local", include_in_schema=False)(local_page)
    if home:
        app.get("/", include_in_schema=False)(local_page)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in PAGE_FILES:
            return JSONResponse({"detail": f"no page file {name!r}"}, status_code=404)
        return FileResponse(STATIC / name, media_type=PAGE_FILES[name], headers=PAGE_HEADERS)

    @app.get("/static/vendor/{name}", include_in_schema=False)
    def vendor(name: str) -> Response:
        if name not in VENDOR_FILES:
            return JSONResponse({"detail": f"no runtime file {name!r}"}, status_code=404)
        missing = runtime_missing()
        if missing:
            return JSONResponse({"detail": missing}, status_code=404)
        return FileResponse(vendor_path(name), media_type=VENDOR_FILES[name], headers=PAGE_HEADERS)

    @app.get("/models", include_in_schema=False)
    def catalog() -> dict:
        return models.catalog()

    @app.get("/models/{name}/model.onnx", include_in_schema=False)
    async def onnx(name: str) -> Response:
        try:
            path = await run_in_threadpool(models.onnx, name)
        except (ValueError, MissingExtra) as exc:  # the export failed or needs ecglab[onnx]; it says which
            return _problem(500, f"model {name}: {exc}")
        if path is None:
            return JSONResponse({"detail": f"no model {name!r}; GET /models lists them"}, status_code=404)
        return FileResponse(
            path, media_type="application/octet-stream", headers={"Cache-Control": "no-cache"}
        )


async def _with_upload(
    request: Request, limits: tuple[int, float], fields: tuple[str, ...], work: Callable[[Upload], dict]
):
    """Receive the upload into a fresh temporary folder, run `work` in the thread pool, remove the folder.

    `limits` are the largest body in bytes and the seconds it may stall. Refusals become JSON
    `{"detail": message}` with a 4xx (or 503) status; messages name files as uploaded.
    """
    max_bytes, body_timeout = limits
    with tempfile.TemporaryDirectory(prefix="ecglab-serve-") as tmp:
        upload = Upload(Path(tmp))
        try:
            upload = await receive(request, upload.folder, max_bytes, fields, body_timeout)
            return await run_in_threadpool(work, upload)
        except UploadError as exc:
            if exc.status == 413:
                await _drain(request, max_bytes)
            return _problem(exc.status, upload.public(exc.message), close=exc.status == 408)
        except RecordError as exc:  # unreadable file, missing leads, too short: the record, not the request
            return _problem(422, upload.public(str(exc)))
        except ClientDisconnect:
            return _problem(400, "the client closed the connection before the upload ended")


async def _drain(request: Request, max_bytes: int) -> None:
    """Read and drop what the client is still sending (up to another `max_bytes`), so it gets the 413.

    A server that answers and closes while the client still writes resets the connection, and many
    clients then report a broken connection instead of the answer.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > 2 * max_bytes:
        return
    dropped = 0
    try:
        async for chunk in request.stream():
            dropped += len(chunk)
            if dropped > max_bytes:
                return
    except (ClientDisconnect, RuntimeError):  # RuntimeError: the stream was already consumed
        return


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own validation (a query parameter out of range) as `{"detail": message}`, like every refusal."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in error['loc'][1:]) or error['loc'][0]}: {error['msg']}"
        for error in exc.errors()
    )
    return _problem(422, f"{problems}; the schema at /openapi.json gives each parameter's range")


def _problem(status: int, message: str, close: bool = False) -> JSONResponse:
    log.info("refused (%d): %s", status, message)
    headers = {"Connection": "close"} if close else None  # a stalled body is never read to its end
    return JSONResponse({"detail": message}, status_code=status, headers=headers)
