"""Test helpers shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys

def run_cli(*args: str, env: dict | None = None, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m ecglab ARGS` in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "ecglab", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ecglab {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
