"""The speed benchmarks run as a user runs them and write their tables."""

import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_speed_table_has_shares_and_the_time_split(tmp_path):
    out = tmp_path / "speed.csv"
    proc = _run(
        "benchmarks/speed.py", "--models", "fcn_wang", "--batch", "4", "--steps", "1", "--out", str(out)
    )
    assert "float32 matmul peak" in proc.stdout and "of the step in product kernels" in proc.stdout
    (row,) = list(csv.DictReader(out.open()))
    assert row["model"] == "fcn_wang" and float(row["train_samples_per_s"]) > 0
    assert 0 < float(row["share_of_peak"]) <= float(row["roofline_share"]) * 1.5
    assert 0 < float(row["product_time_share"]) <= 1 and float(row["product_kernel_share"]) > 0


def test_conv_layout_compares_both_layouts(tmp_path):
    out = tmp_path / "layout.md"
    _run(
        "benchmarks/conv_layout.py",
        "--models",
        "resnet1d_wang",
        "--batch",
        "4",
        "--repeats",
        "1",
        "--out",
        str(out),
    )
    text = out.read_text()
    assert "| layer | torch_ms | channels_last_ms | speedup |" in text and "inception1d k39" in text
    model_row = next(line for line in text.splitlines() if line.startswith("| resnet1d_wang |"))
    assert all(float(cell) > 0 for cell in model_row.strip("| ").split(" | ")[1:])
