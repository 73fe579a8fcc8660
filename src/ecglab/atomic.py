"""Writing a file so that a reader sees the old file or the whole new one, never a torn one.

The content goes to a temporary name beside the target (`<name>.tmp`, or `<stem>.<pid>.tmp<suffix>`
when several processes may write the same file at once) and is renamed onto it in one step.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path, unique: bool = False) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` when the block succeeds.

    On an error the temporary file is removed and `path` is left as it was. `unique=True` adds the
    process id to the temporary name and keeps the suffix last, for files that other processes may be
    writing too and for writers that choose a format by the suffix.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}" if unique else f"{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def file_lock(path: str | Path, on_wait=None) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` for the block, so processes side by side (bench
    shards) take turns on `path` (POSIX `flock`; released when the process dies); `on_wait()` is
    called when another process holds it."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A fresh temporary folder beside `path` to fill; it replaces `path` when the block succeeds.

    The old folder (if any) is moved aside and removed only after the new one is in place, so a
    reader finds the old folder or the whole new one; on an error `path` is left as it was.
    """
    import shutil

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)
