"""The in-browser page's resampler (static/resample.js, run in node) against `preprocess.resample` (scipy)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ecglab.data.preprocess import resample

NODE = shutil.which("node") or "/usr/bin/node"
HARNESS = Path(__file__).parent / "js" / "resample_stdin.mjs"

pytestmark = pytest.mark.skipif(
    not Path(NODE).is_file(), reason=f"no node at {NODE}; apt-get install -y nodejs"
)


def page_resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    job = json.dumps({"leads": x.tolist(), "fs_in": fs_in, "fs_out": fs_out})
    done = subprocess.run(
        [NODE, str(HARNESS)], input=job, capture_output=True, text=True, timeout=120, check=True
    )
    return np.asarray(json.loads(done.stdout), dtype=np.float32)


@pytest.mark.parametrize(
    ("fs_in", "fs_out"),
    [(500, 100), (360, 100), (257, 100), (300, 100), (100, 500), (1000, 300), (128.5, 100)],
)
def test_page_resampler_equals_scipy(fs_in, fs_out):
    rng = np.random.default_rng(int(fs_in))
    n = int(fs_in * 7.3)  # not a whole number of output samples: the trim at the end is exercised too
    x = (rng.normal(size=(2, n)).cumsum(axis=1) * 0.05 + rng.normal(size=(2, 1))).astype(np.float32)
    expected = resample(x, fs_in, fs_out)
    got = page_resample(x, fs_in, fs_out)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_page_resampler_keeps_an_equal_rate():
    x = np.arange(20, dtype=np.float32).reshape(2, 10)
    np.testing.assert_array_equal(page_resample(x, 250, 250), x)
