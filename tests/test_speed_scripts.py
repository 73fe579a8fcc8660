"""The speed benchmarks run as a user runs them and write their tables."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

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
    # shares, not timings: one step is too short a measurement to bound by the roofline here
    share, roofline = float(row["share_of_peak"]), float(row["roofline_share"])
    assert share > 0 and 0 < roofline <= 1
    rounding = 0.01 + share * 0.005 / roofline**2  # the table rounds each column to 2 decimals
    assert float(row["of_roofline"]) == pytest.approx(share / roofline, abs=rounding)
    assert 0 < float(row["product_time_share"]) <= 1 and float(row["product_kernel_share"]) > 0


def test_speed_under_bf16_autocast_on_the_cpu_and_device_errors(tmp_path):
    out = tmp_path / "speed.csv"
    args = ("benchmarks/speed.py", "--models", "fcn_wang", "--batch", "4", "--steps", "1")
    proc = _run(*args, "--device", "cpu", "--precision", "bf16", "--out", str(out))
    assert "bf16" in proc.stdout and "bfloat16 matmul peak" in proc.stdout
    (row,) = list(csv.DictReader(out.open()))
    assert float(row["train_samples_per_s"]) > 0 and float(row["share_of_peak"]) > 0
    assert row["roofline_share"] == ""  # the roofline is a CPU float32 analysis
    for flags, message in ((("--precision", "fp16"), "fp16 is for GPUs (autocast with a gradient scaler); on the CPU use precision bf16"),
                           (("--device", "cuda:99"), "device 'cuda:99' does not exist on this machine; available: cpu"),
                           (("--device", "tpu"), "'tpu' is not one of auto, cpu, cuda, cuda:N or mps")):  # fmt: skip
        proc = subprocess.run([sys.executable, *args, *flags], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-500:]


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


@pytest.mark.data
def test_data_speed_reports_windows_per_second_for_each_worker_count():
    proc = _run("benchmarks/data_speed.py", "--dataset", "cpsc2018", "--windows", "48", "--batch", "8",
                "--workers", "0,2")  # fmt: skip
    for workers in (0, 2):
        line = next(x for x in proc.stdout.splitlines() if x.startswith(f"DataLoader, {workers} worker(s)"))
        assert float(line.rsplit(": ", 1)[1].split()[0].replace(",", "")) > 0
