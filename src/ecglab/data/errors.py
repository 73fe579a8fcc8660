"""The one error type for a record that cannot be used."""

from __future__ import annotations

from pathlib import Path


class RecordError(ValueError):
    """A record that cannot be read or used: names the file and the problem.

    `prepare` catches it, skips the record and lists the reason; everything else raises it.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
