"""Fetch a public ECG release from its publisher: resumable, atomic and verified.

Each dataset has a row in SOURCES: the publisher's root URL and the files under it. `base_url`
replaces that root, so any mirror with the publisher's layout works (the tests use a local one).

- PhysioNet publishes `SHA256SUMS.txt` (`<sha256> <relative path>` per line) at the root of every
  project version. It is saved in `dest` (a published version never changes, so a second run
  needs no request) and every file is verified against it.
- figshare (Chapman-Shaoxing) publishes no SHA-256, and we do not know its MD5s for certain, so
  those files are checked for size only (the server's Content-Length), not for content.

A file goes to `<name>.part`, continues with an HTTP Range request after an interruption, is
verified, then renamed; so a file at its final path is complete, and a `.part` is what to resume.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import os
import threading
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from ecglab import __version__

MANIFEST = "SHA256SUMS.txt"
CHUNK = 1 << 20
BIG_FILE = 8 << 20  # files above this get their own bytes bar
TIMEOUT = 60


@dataclass(frozen=True)
class Source:
    """Where a release lives and what to fetch from it.

    `listed`: fetch every manifest entry under this prefix ("" for all). `files`: fixed
    (remote path, local path) pairs instead. `unzip`: local archives to extract into `dest`.
    """

    title: str
    root: str
    manifest: str | None = MANIFEST
    listed: str | None = None
    files: tuple[tuple[str, str], ...] = ()
    unzip: tuple[str, ...] = ()


SOURCES = {
    "ptbxl": Source("PTB-XL 1.0.3 (PhysioNet)", "https://physionet.org/files/ptb-xl/1.0.3/", listed=""),
    # CPSC 2018 as converted for the CinC 2020 challenge; kept at the publisher's sub-path,
    # dest/training/cpsc_2018/g1..g7/A*.{hea,mat}, which the CPSC 2018 reader finds recursively.
    "cpsc2018": Source(
        "CPSC 2018 via the CinC 2020 training set 1.0.2 (PhysioNet)",
        "https://physionet.org/files/challenge-2020/1.0.2/",
        listed="training/cpsc_2018/",
    ),
    # The zip holds training2017/; the relabelled reference is put beside its records.
    "cinc2017": Source(
        "CinC 2017 1.0.0 (PhysioNet)",
        "https://physionet.org/files/challenge-2017/1.0.0/",
        files=(
            ("training2017.zip", "training2017.zip"),
            ("REFERENCE-v3.csv", "training2017/REFERENCE-v3.csv"),
        ),
        unzip=("training2017.zip",),
    ),
    # figshare collection 4560497 (doi:10.6084/m9.figshare.c.4560497); a mirror serves the file ids.
    "chapman": Source(
        "Chapman-Shaoxing (figshare)",
        "https://figshare.com/ndownloader/files/",
        manifest=None,
        files=(
            ("15653771", "Diagnostics.xlsx"),
            ("15651296", "RhythmNames.xlsx"),
            ("15651293", "ConditionNames.xlsx"),
            ("15653762", "AttributesDictionary.xlsx"),
            ("15651326", "ECGData.zip"),
            ("15652862", "ECGDataDenoised.zip"),
        ),
        unzip=("ECGData.zip", "ECGDataDenoised.zip"),
    ),
}

HTTP_HINT = "run again later, or check that --base-url (or $ECGLAB_MIRROR) mirrors the publisher's layout"
MIRROR_HINT = (
    "check the connection and run again to resume, or use --base-url (or $ECGLAB_MIRROR) for a mirror"
)


class DownloadError(RuntimeError):
    """A file that could not be fetched or verified: names the URL or file, the problem and the fix."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status, where the server answered with an error


class ChecksumError(DownloadError):
    pass


@dataclass(frozen=True)
class _Item:
    url: str
    path: Path
    sha256: str | None


def download(name: str, dest: str | Path, *, base_url: str | None = None, workers: int = 4) -> list[Path]:
    """Fetch dataset `name` into `dest`, resuming what is there; returns the files written this run.

    Files already present are skipped (re-hashed where a checksum is published), so a second
    run downloads nothing. `base_url` replaces the publisher's root URL with a mirror's.
    """
    source = _source(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = (base_url or source.root).rstrip("/") + "/"
    console = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)
    sums = _manifest(source, root, dest)
    items = _items(source, root, dest, sums)
    console.print(f"{name}: {source.title} from {root} into {dest}")
    unverified = [item.path.name for item in items if item.sha256 is None]
    if unverified:
        console.print(
            f"{name}: no published SHA-256 for {', '.join(unverified)}; checking sizes only, not contents"
        )
    written = _fetch_all(name, items, workers, console)
    for archive in source.unzip:
        written += _unzip(dest / archive, dest, console)
    return written


def _source(name: str) -> Source:
    if name not in SOURCES:
        close = difflib.get_close_matches(name.lower(), SOURCES, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown dataset {name!r}; {hint}choose one of {', '.join(SOURCES)}")
    return SOURCES[name]


def _manifest(source: Source, root: str, dest: Path) -> dict[str, str] | None:
    """The publisher's checksums by relative path, fetched once into `dest`; None where unpublished.

    Only a dataset that is a fixed list of files can do without: a 404 there means sizes only.
    """
    if source.manifest is None:
        return None
    path = dest / source.manifest
    if not path.exists():
        try:
            _fetch(_Item(root + source.manifest, path, None))
        except DownloadError as err:
            if source.listed is not None or err.status != 404:
                raise
            return None
    return parse_manifest(path)


def parse_manifest(path: Path) -> dict[str, str]:
    """`{relative path: sha256}` from a `sha256sum`-style file (`<hash> <path>` per line)."""
    sums = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.strip().partition(" ")
        rel = rel.strip().lstrip("*")
        if len(digest) != 64 or not rel:
            raise DownloadError(
                f"{path}:{n}: expected '<sha256> <path>', got {line!r}; delete it and run again"
            )
        sums[rel] = digest.lower()
    return sums


def _items(source: Source, root: str, dest: Path, sums: dict[str, str] | None) -> list[_Item]:
    """What to fetch: every manifest entry under `listed`, or the fixed files."""
    if source.listed is not None:
        pairs = [(rel, rel) for rel in sums if rel.startswith(source.listed)]
        if not pairs:
            raise DownloadError(
                f"{root}{source.manifest}: lists no files under {source.listed!r}; is it a mirror?"
            )
    else:
        pairs = list(source.files)
    items = []
    for remote, local in pairs:
        parts = PurePosixPath(local).parts
        if PurePosixPath(local).is_absolute() or ".." in parts:
            raise DownloadError(
                f"{root}{source.manifest}: unsafe path {local!r}; refusing to write outside {dest}"
            )
        digest = sums.get(remote) if sums else None
        items.append(_Item(root + quote(remote), dest.joinpath(*parts), digest))
    return items


def _fetch_all(name: str, items: list[_Item], workers: int, console: Console) -> list[Path]:
    """Fetch `items` on a few threads with one progress display; stops at the first error."""
    stop = threading.Event()
    with _progress(console) as progress, ThreadPoolExecutor(workers) as pool:
        meter = _Meter(progress, name, len(items))

        def one(item: _Item) -> bool:
            fetched = _fetch(item, meter=meter, stop=stop)
            meter.file_done()
            return fetched

        futures = {pool.submit(one, item): item for item in items}
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()
        finally:
            stop.set()
            pool.shutdown(cancel_futures=True)
    return [futures[f].path for f in futures if f.result()]


def _fetch(item: _Item, *, meter: _Meter | None = None, stop: threading.Event | None = None) -> bool:
    """Download one file through `<path>.part`; False when it was already complete."""
    if item.path.exists():
        if item.sha256 is None or _sha256(item.path) == item.sha256:
            return False
        item.path.unlink()  # present but differs from the published checksum: fetch it again
    part = item.path.with_name(item.path.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    resp = _open(item.url, offset)
    if resp is None:  # 416: the part is as long as the file or longer, so start over
        part.unlink()
        offset, resp = 0, _open(item.url, 0)
    with resp:
        offset, total = _resume_point(resp, item.url, offset)
        _copy(resp, part, item, offset, total, meter, stop)
    if item.sha256 is not None:
        got = _sha256(part)
        if got != item.sha256:
            part.unlink()
            raise ChecksumError(
                f"{item.path}: SHA-256 mismatch, expected {item.sha256} (publisher's {MANIFEST}), "
                f"got {got} from {item.url}; the bad download was deleted, run again (or try --base-url)"
            )
    os.replace(part, item.path)
    return True


def _open(url: str, offset: int) -> http.client.HTTPResponse | None:
    """The response from `offset` on (a Range request when > 0); None for 416 (range not satisfiable)."""
    headers = {"User-Agent": f"ecglab/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}; {HTTP_HINT}", status=err.code) from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as err:
        raise DownloadError(f"{url}: {getattr(err, 'reason', err)}; {MIRROR_HINT}") from None


def _resume_point(resp, url: str, offset: int) -> tuple[int, int | None]:
    """(where the body starts, the file's full size or None): 0 when the server ignored Range."""
    if resp.status != 206:
        length = resp.headers.get("Content-Length")
        return 0, int(length) if length is not None else None
    content_range = resp.headers.get("Content-Range", "")  # "bytes 100-999/1000"
    start = content_range.removeprefix("bytes ").partition("-")[0]
    total = content_range.rpartition("/")[2]
    if not start.isdigit() or int(start) != offset:
        raise DownloadError(f"{url}: asked for bytes from {offset}, got Content-Range {content_range!r}")
    return offset, int(total) if total.isdigit() else None


def _copy(resp, part: Path, item: _Item, offset: int, total: int | None, meter, stop) -> None:
    """Stream the body into `part` (appending at `offset`), then check its size."""
    bar = meter.open(item.path.name, total, offset) if meter is not None else None
    try:
        with open(part, "ab" if offset else "wb") as f:
            while chunk := resp.read(CHUNK):
                f.write(chunk)
                if meter is not None:
                    meter.add(bar, len(chunk))
                if stop is not None and stop.is_set():
                    raise DownloadError(f"{item.url}: stopped; run again to resume from {part}")
    except (http.client.HTTPException, ConnectionError, TimeoutError) as err:
        raise DownloadError(f"{item.url}: {err or type(err).__name__}; {MIRROR_HINT}") from None
    finally:
        if bar is not None:
            meter.close(bar)
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"{item.url}: connection closed after {size} of {total} bytes; {MIRROR_HINT}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _unzip(archive: Path, dest: Path, console: Console) -> list[Path]:
    """Extract `archive` into `dest` (or `dest/<stem>/` when it has no top folder of that name).

    Members already extracted with the right size are left alone, so a rerun writes nothing.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise DownloadError(f"{archive}: not a valid zip archive; delete it and run again") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        stem = archive.stem
        target = dest if all(m.filename.startswith(f"{stem}/") for m in members) else dest / stem
        todo = [m for m in members if not _extracted(target / m.filename, m.file_size)]
        if todo:
            console.print(f"extracting {len(todo)} files from {archive.name} into {target}")
        for m in todo:
            zf.extract(m, target)
    return [target / m.filename for m in todo]


def _extracted(path: Path, size: int) -> bool:
    return path.is_file() and path.stat().st_size == size


class _Meter:
    """Thread-safe progress: one row counting files and bytes, plus a bytes row per big file."""

    def __init__(self, progress: Progress, name: str, n_files: int):
        self.progress, self.nbytes, self.lock = progress, 0, threading.Lock()
        self.row = progress.add_task(name, total=n_files, nbytes=0)

    def file_done(self) -> None:
        self.progress.advance(self.row)

    def open(self, name: str, total: int | None, done: int):
        return (
            self.progress.add_task(name, total=total, completed=done) if total and total > BIG_FILE else None
        )

    def add(self, bar, n: int) -> None:
        with self.lock:
            self.nbytes += n
            self.progress.update(self.row, nbytes=self.nbytes)
        if bar is not None:
            self.progress.advance(bar, n)

    def close(self, bar) -> None:
        self.progress.remove_task(bar)


class _AmountColumn(ProgressColumn):
    """`12/87,000 files, 3.4 MB` for the dataset row, `1.2/2.0 GB 5.1 MB/s` for a big file."""

    def __init__(self):
        super().__init__()
        self._bytes, self._speed = DownloadColumn(), TransferSpeedColumn()

    def render(self, task) -> Text:
        if "nbytes" in task.fields:
            return Text(
                f"{int(task.completed):,}/{int(task.total):,} files, {decimal(task.fields['nbytes'])}"
            )
        return Text.assemble(self._bytes.render(task), " ", self._speed.render(task))


def _progress(console: Console) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), _AmountColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console, disable=not console.is_terminal)
