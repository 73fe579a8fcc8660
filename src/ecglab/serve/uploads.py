"""Receiving uploaded ECG files: a streamed multipart body, size-limited, saved into one request's folder.

The body is parsed as it arrives, so a request over the limit is refused (413) once the limit is
passed, without reading the rest. A file name is kept only if it is a plain name (no folders, no
`..`) with a suffix ecglab reads; it is written inside the request's own temporary folder and nowhere
else. A WFDB header names its signal files, and those names must be files uploaded with it, so no
header can make the server open a path of the client's choosing.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from ecglab.data.errors import RecordError
from ecglab.infer.files import SUFFIXES

MAX_FILES = 16
DEFAULT_BODY_TIMEOUT_S = 15.0
MAX_FIELD_BYTES = 1024
MAX_NAME_CHARS = 200
MB = 1024 * 1024
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+=-]*$")


class UploadError(Exception):
    """A request the server refuses: an HTTP status and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Upload:
    """The files of one request (plain name -> path in `folder`) and its form fields."""

    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    def public(self, text: str) -> str:
        """`text` with the server's folder taken out, so messages name files as the client named them."""
        return text.replace(f"{self.folder}/", "").replace(str(self.folder), "")


def safe_name(name: str) -> str:
    """The upload's file name if it is a plain name with a readable suffix; an UploadError otherwise."""
    if not name:
        raise UploadError(400, "a file part has no file name; send each file with its name")
    shown = name[:MAX_NAME_CHARS]
    if "/" in name or "\\" in name or ".." in name:
        raise UploadError(
            400, f"{shown!r}: file names must be plain names without folders or '..'; rename the file"
        )
    if len(name) > MAX_NAME_CHARS or not _SAFE_NAME.match(name):
        raise UploadError(
            400,
            f"{shown!r}: use a name of at most {MAX_NAME_CHARS} letters, digits, spaces and ._+=- "
            "that starts with a letter or digit",
        )
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise UploadError(
            415,
            f"{name}: unsupported file type {suffix or '(none)'!r}; upload {', '.join(SUFFIXES)} "
            "(a WFDB record as its .hea with its .dat or .mat)",
        )
    return name


def _boundary(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadError(
            415,
            f"request body is {kind.decode('latin-1') or 'missing'!s}; send the ECG files as "
            "multipart/form-data (field 'files')",
        )
    return options[b"boundary"]


class _Receiver:
    """Callbacks of the streaming parser: headers of each part, then its bytes to a file or a field."""

    def __init__(self, upload: Upload, allowed_fields: tuple[str, ...]):
        self.upload, self.allowed = upload, allowed_fields
        self.header_name, self.header_value, self.headers = b"", b"", {}
        self.out, self.field, self.value, self.ended = None, None, bytearray(), False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.part_begin, "on_header_field": self.header_field,
            "on_header_value": self.header_val, "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
            "on_part_end": self.part_end, "on_end": self.end,
        }  # fmt: skip

    def part_begin(self) -> None:
        self.headers, self.field, self.value = {}, None, bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def header_val(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name, self.header_value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            if name == "files":
                raise UploadError(
                    400, "a part of the field 'files' has no file name; send each file with its name"
                )
            if name not in self.allowed:
                raise UploadError(400, f"unknown form field {name!r}; this endpoint takes {self._known()}")
            if name in self.upload.fields:
                raise UploadError(400, f"form field {name!r} given twice")
            self.field = name
            return
        filename = safe_name(filename.decode("utf-8", "replace"))
        if filename in self.upload.files:
            raise UploadError(400, f"{filename}: uploaded twice; send each file once")
        if len(self.upload.files) >= MAX_FILES:
            raise UploadError(400, f"more than {MAX_FILES} files in one request; send fewer")
        path = self.upload.folder / filename
        self.upload.files[filename] = path
        self.out = path.open("xb")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None:
            self.out.write(data[start:end])
        elif self.field is not None:
            self.value += data[start:end]
            if len(self.value) > MAX_FIELD_BYTES:
                raise UploadError(400, f"form field {self.field!r} is longer than {MAX_FIELD_BYTES} bytes")

    def part_end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        elif self.field is not None:
            self.upload.fields[self.field] = self.value.decode("utf-8", "replace").strip()
            self.field = None

    def end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self.out is not None:
            self.out.close()

    def _known(self) -> str:
        return ", ".join(["files", *self.allowed])


async def receive(
    request, folder: Path, max_bytes: int, fields: tuple[str, ...] = (),
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
) -> Upload:  # fmt: skip
    """Stream the request's multipart body into `folder`; 413 as soon as it passes `max_bytes`.

    A body that stalls, nothing arriving for `body_timeout` seconds, is a 408.
    """
    boundary = _boundary(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise UploadError(413, _too_large(int(declared), max_bytes))
    upload = Upload(folder)
    receiver = _Receiver(upload, fields)
    parser = MultipartParser(boundary, receiver.callbacks())
    total = 0
    try:
        async for chunk in _chunks(request, body_timeout):
            total += len(chunk)
            if total > max_bytes:
                raise UploadError(413, _too_large(None, max_bytes))
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise UploadError(
            400, f"malformed multipart body ({exc}); send the files as multipart/form-data"
        ) from None
    finally:
        receiver.close()
    if not receiver.ended:
        raise UploadError(400, "the multipart body ended early; send the whole request")
    if not upload.files:
        raise UploadError(
            400, f"no file uploaded; send one ECG record in the field 'files' ({', '.join(SUFFIXES)})"
        )
    return upload


async def _chunks(request, timeout: float):
    """The request body's chunks; an UploadError (408) when the next one takes over `timeout` seconds."""
    stream = request.stream().__aiter__()
    while True:
        try:
            yield await asyncio.wait_for(stream.__anext__(), timeout)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadError(
                408, f"the upload stalled: nothing arrived for {timeout:g} s; send the whole request at once"
            ) from None


def _too_large(size: int | None, max_bytes: int) -> str:
    what = f"{size / MB:.1f} MB, over" if size is not None else "over"
    return (
        f"upload too large: {what} the limit of {max_bytes / MB:.1f} MB per request; "
        "send a shorter record or start the server with a larger --max-upload-mb"
    )


def records(upload: Upload) -> list[Path]:
    """The records among the uploaded files: each WFDB header with its signal files, or a file alone.

    Every signal file a header names must be one of the uploaded files; a `.dat` needs its header.
    """
    from ecglab.data.wfdb_io import read_header

    used, found = set(), []
    for name, path in upload.files.items():
        if not name.lower().endswith(".hea"):
            continue
        header = read_header(path)
        lines = [ln for ln in path.read_text(encoding="latin-1").splitlines() if ln.strip()]
        record_line = next((ln.split() for ln in lines if not ln.lstrip().startswith("#")), [""])
        if "/" in record_line[0]:
            raise RecordError(name, "is a multi-segment WFDB record; upload a single-segment record")
        for signal in header.signals:
            if signal.file not in upload.files or signal.file == name:
                raise RecordError(
                    name,
                    f"names the signal file {signal.file!r}, which was not uploaded with it; "
                    "upload the header and its signal file together",
                )
            used.add(signal.file)
        used.add(name)
        found.append(path)
    for name, path in upload.files.items():
        if name in used:
            continue
        if name.lower().endswith(".dat"):
            raise RecordError(
                name, f"a .dat file holds only samples; upload its header {Path(name).stem}.hea with it"
            )
        found.append(path)
    return found
