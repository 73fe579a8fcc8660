"""The model behind the server: loaded once, used by one request at a time.

Grad-CAM hooks the network's last stage, and a hook fires for every forward pass, so a prediction
running beside an explanation would feed it the wrong activations; one lock keeps the network's
uses apart. Reading files and encoding images happen outside it. A request may wait for the lock
and use the network for at most `request_timeout_s` in all; past it, the answer is a 503 and the
network is free again after the batch it was running.
"""

from __future__ import annotations

import base64
import contextlib
import math
import threading
import time
from pathlib import Path

import ecglab
from ecglab.data.errors import RecordError
from ecglab.infer import default_model, resolve_model
from ecglab.infer.files import UNITS, Recording, as_record_error, parse_leads, read_ecg
from ecglab.infer.limits import Limits
from ecglab.serve.uploads import Upload, UploadError, records

IMAGE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
DEFAULT_DPI = 100
DEFAULT_REQUEST_TIMEOUT_S = 30.0
MAX_EXPLAIN_S = 120.0  # Grad-CAM runs every window of a record at once; the figure shows 10 s of it


class Service:
    """A checkpoint's network and predictor, with a lock around the network."""

    def __init__(
        self,
        model: str | Path | None = None,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        device: str = "cpu",
    ):
        from ecglab.infer.predictor import Predictor

        folder, name = resolve_model(None if model is None else str(model))
        self.name = Path(name).name or name  # a folder's name, not where it sits on the server
        self.folder = Path(folder)
        self.predictor = Predictor.from_checkpoint(folder, name=self.name, device=device)
        self.single_lead = None  # without --model, one-lead uploads get the shipped single-lead model
        one_lead, one_lead_name, _ = default_model(1) if model is None else (None, None, None)
        if one_lead_name not in (None, self.name):
            self.single_lead = Predictor.from_checkpoint(one_lead, name=one_lead_name, device=device)
        self.limits = Limits.from_env()
        self.timeout_s = request_timeout_s
        self.lock = threading.Lock()
        self.plot_lock = threading.Lock()  # matplotlib shares its cached fonts between figures

    def health(self) -> dict:
        p = self.predictor
        return {
            "status": "ok", "model": self.name, "version": ecglab.__version__, "classes": p.classes,
            "multilabel": p.multilabel, "thresholds": p.thresholds, "leads": p.lead_names, "fs": p.fs,
            "window_seconds": p.window_samples / p.fs,
            "single_lead_model": self.single_lead.name if self.single_lead else None,
        }  # fmt: skip

    def predictor_for(self, rec: Recording):
        """The model for one record: the single-lead one for a one-lead record when loaded
        (`ecglab.infer.default_model` decides), else the server's model."""
        return self.single_lead if self.single_lead and len(rec.lead_names) == 1 else self.predictor

    @contextlib.contextmanager
    def network(self, deadline: float):
        """Hold the network until the block ends; a 503 when it stays busy past `deadline` or the block overruns it."""
        if not self.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise UploadError(
                503, f"the model is busy with other requests (waited {self.timeout_s:g} s); try again"
            )
        try:
            yield
        except TimeoutError:
            raise UploadError(
                503,
                f"scoring took longer than this server allows ({self.timeout_s:g} s per request); "
                "send a shorter record or try again when the server is less busy",
            ) from None
        finally:
            self.lock.release()

    def read(self, upload: Upload, paths: list[Path] | None = None) -> list[tuple[str, Recording]]:
        """(file name, recording) of every uploaded record, read with the request's fs/leads/units."""
        fs, leads, units = _options(upload.fields, self.limits)
        found = []
        for path in records(upload) if paths is None else paths:
            try:
                found.append((path.name, read_ecg(path, fs=fs, leads=leads, units=units, limits=self.limits)))
            except Exception as exc:  # a corrupt file can make a third-party reader raise anything
                raise as_record_error(path.name, exc) from None
        return found

    def predict(self, upload: Upload) -> dict:
        deadline = time.monotonic() + self.timeout_s
        found = []
        for name, rec in self.read(upload):
            with self.network(deadline):
                result = self.predictor_for(rec).predict(rec, name, deadline)
            found.append(result.to_json() | {"windows": result.windows})
        return {"model": self.name, "predictions": found}

    def explain(self, upload: Upload, class_name: str | None, image: str, dpi: int = DEFAULT_DPI) -> dict:
        """One record's prediction and its Grad-CAM figure (bytes of a PNG or SVG) for one class."""
        from ecglab.explain.pipeline import check_class, explain_record
        from ecglab.explain.plot import save_figure

        paths = records(upload)
        if len(paths) != 1:
            names = ", ".join(path.name for path in paths)
            raise UploadError(400, f"explain takes one record, got {len(paths)} ({names}); upload one")
        ((name, rec),) = self.read(upload, paths)
        seconds = rec.x.shape[-1] / rec.fs
        if seconds > MAX_EXPLAIN_S:
            raise RecordError(
                name,
                f"{seconds:.0f} s long; explain draws records up to {MAX_EXPLAIN_S:g} s, so upload an excerpt "
                "(predict takes the whole record)",
            )
        predictor = self.predictor_for(rec)
        try:
            check_class(predictor, class_name or None)
        except ValueError as exc:
            raise UploadError(422, str(exc)) from None
        done = explain_record(predictor, rec, name, class_name or None,
                              network=self.network(time.monotonic() + self.timeout_s), drawing=self.plot_lock)  # fmt: skip
        with self.plot_lock:
            (path,) = save_figure(done.figure, upload.folder / f"explain.{image}", dpi)
        prediction = done.prediction.to_json() | {"windows": done.prediction.windows}
        return {"prediction": prediction, "class": done.target, "probability": done.probability,
                "method": done.method, "media_type": IMAGE_TYPES[image], "image": path.read_bytes()}  # fmt: skip


def encode(result: dict) -> dict:
    """The explain result as JSON: the image as base64."""
    return result | {"image": base64.b64encode(result["image"]).decode("ascii")}


def _options(fields: dict[str, str], limits: Limits) -> tuple[float | None, list[str] | None, str | None]:
    fs = fields.get("fs") or None
    if fs is not None:
        try:
            fs = float(fs)
        except ValueError:
            fs = math.nan
        if not (math.isfinite(fs) and fs > 0):
            raise UploadError(400, f"fs={fields['fs']!r} is not a sampling rate; give it in Hz, e.g. 500")
        try:
            limits.check_rate("fs", fs)
        except RecordError as exc:
            raise UploadError(400, str(exc)) from None
    units = fields.get("units") or None
    if units is not None and units.lower() not in UNITS:
        raise UploadError(400, f"units={units!r} unknown; use mV or uV")
    return fs, parse_leads(fields.get("leads")), units
