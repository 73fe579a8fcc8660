"""The HTTP server: upload an ECG, get the model's probabilities and a Grad-CAM figure; one web page.

`GET /health` names the model and its classes, `POST /predict` scores uploaded records, `POST
/explain` scores one record and draws it on ECG paper with the relevance shaded, `GET /` is the page
and `GET /openapi.json` the schema. Each request's files live in a temporary folder removed when the
request ends; the server opens no other path a client could name. The network runs in FastAPI's
thread pool, so `/health` answers while a record is being scored.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from ecglab.data.errors import RecordError
from ecglab.serve.service import Service, encode
from ecglab.serve.uploads import SUFFIXES, Upload, UploadError, receive

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
STATIC = Path(__file__).resolve().parent / "static"
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
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
    max_upload_bytes: int


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


def _body_schema(extra: dict, images: bool = False) -> dict:
    """The multipart request body for the schema (the server streams it itself, so FastAPI can't infer it)."""
    files = {"type": "array", "items": {"type": "string", "format": "binary"},
             "description": f"one record: a WFDB .hea with its .dat or .mat, or one of {', '.join(SUFFIXES)}"}  # fmt: skip
    fields = {
        "fs": {"type": "number", "description": "sampling rate, Hz, for .npy/.csv"},
        "leads": {"type": "string", "description": "lead names, e.g. I,II,V1, for .npy/.csv"},
        "units": {"type": "string", "description": "mV or uV, for .npy/.csv"},
    }
    schema = {"type": "object", "required": ["files"], "properties": {"files": files, **fields, **extra}}
    errors = {
        str(code): {"model": Problem, "description": text}
        for code, text in ((400, "bad request"), (413, "upload too large"), (415, "unsupported file type"),
                           (422, "the record cannot be read or scored"))
    }  # fmt: skip
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
    device: str = "cpu",
) -> FastAPI:
    """The app for a checkpoint folder or shipped model name (None: the default model), loaded now on `device`."""
    import ecglab

    service = service or Service(model, device)
    app = FastAPI(
        title="ecglab",
        version=ecglab.__version__,
        summary=f"ECG classification with {service.name}",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; the page and the schema don't
        redoc_url=None,
    )
    app.state.service = service

    @app.get("/health", response_model=Health)
    def health() -> dict:
        """The model's name, classes, leads and rate, and the upload limit."""
        return service.health() | {"max_upload_bytes": max_upload_bytes}

    @app.post("/predict", response_model=Predictions, **_body_schema({}))
    async def predict(request: Request):
        """Class probabilities and decisions for every uploaded record."""
        return await _with_upload(request, max_upload_bytes, RECORD_FIELDS, service.predict)

    extra = {"class": {"type": "string", "description": "class to explain (default: the top one)"}}

    @app.post("/explain", response_model=Explanation, **_body_schema(extra, images=True))
    async def explain(
        request: Request,
        format: Literal["json", "png", "svg"] = Query("json", description="json (PNG as base64), png or svg"),
        dpi: int = Query(100, ge=50, le=300, description="PNG resolution"),
    ):
        """One record's prediction and its Grad-CAM figure on ECG paper, for `class` or the top class."""

        def work(upload: Upload) -> dict:
            return service.explain(
                upload, upload.fields.get("class"), "svg" if format == "svg" else "png", dpi
            )

        result = await _with_upload(request, max_upload_bytes, (*RECORD_FIELDS, "class"), work)
        if isinstance(result, Response):
            return result
        if format == "json":
            return encode(result)
        return Response(result["image"], media_type=result["media_type"])

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in PAGE_FILES:
            return JSONResponse({"detail": f"no page file {name!r}"}, status_code=404)
        return FileResponse(STATIC / name, media_type=PAGE_FILES[name], headers=PAGE_HEADERS)

    return app


async def _with_upload(
    request: Request, max_bytes: int, fields: tuple[str, ...], work: Callable[[Upload], dict]
):
    """Receive the upload into a fresh temporary folder, run `work` in the thread pool, remove the folder.

    Refusals become JSON `{"detail": message}` with a 4xx status; messages name files as uploaded.
    """
    with tempfile.TemporaryDirectory(prefix="ecglab-serve-") as tmp:
        upload = Upload(Path(tmp))
        try:
            upload = await receive(request, upload.folder, max_bytes, fields)
            return await run_in_threadpool(work, upload)
        except UploadError as exc:
            if exc.status == 413:
                await _drain(request, max_bytes)
            return _problem(exc.status, exc.message)
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


def _problem(status: int, message: str) -> JSONResponse:
    log.info("refused (%d): %s", status, message)
    return JSONResponse({"detail": message}, status_code=status)
