"""Training speed of the model zoo on this machine, against its float32 matrix-multiply peak.

For each model: samples/s of a training step (forward, loss, backward, AdamW step) on a batch of
12 x 1000 inputs, the GFLOP/s that achieves (3 x 2 x MACs per sample: forward, and backward
at about twice the forward) and its share of the peak measured in the same run.

`roofline_share` is the most that share could be on this machine if every op of the step ran at
the roofline, max(FLOPs / peak, bytes / memory bandwidth), one op after another (see
`ecglab.models.profile.training_roofline`); `of_roofline` is the measured share over it. A model
whose roofline share is below a target cannot reach it without fusing ops (BN, activations,
depthwise convolutions and the optimizer stream memory and do few FLOPs).

`product_time_share` is the part of the step (under the profiler) spent in matrix-product kernels
(convolution, linear, attention, RNN) and `product_kernel_share` the share of the peak those kernels
achieve (`ecglab.models.profile.training_time_split`). A model's share of the peak is at most
about their product, which says whether the kernels or the ops around them hold it back.

`--device cuda --precision bf16` times the step under bf16 autocast on the GPU against the bf16
matmul peak measured in the same run (the goal: InceptionFormer at 30% or more of it). The roofline
and the time split are CPU float32 analyses; on other devices and precisions they are left blank.

    .venv/bin/python benchmarks/speed.py --models 'resnet1d*' --steps 5 --out speed.md
    .venv/bin/python benchmarks/speed.py --device cuda --precision bf16 --out speed_cuda_bf16.md
"""

from __future__ import annotations

import argparse
import csv
import platform

import torch

from ecglab.models import create_model, list_models
from ecglab.models.profile import (
    count_macs,
    matmul_peak_gflops,
    measure_training,
    memory_bandwidth_gbs,
    training_roofline,
    training_time_split,
)

COLUMNS = [
    "model",
    "params_M",
    "macs_M",
    "train_samples_per_s",
    "gflops",
    "share_of_peak",
    "roofline_share",
    "of_roofline",
    "product_time_share",
    "product_kernel_share",
]


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def pick_device(name: str, precision: str) -> torch.device:
    """The training loop's device resolver and precision check, as a command-line error."""
    from ecglab.devices import resolve_device
    from ecglab.train.epoch import check_precision

    try:
        device = resolve_device(name)
        check_precision(device, precision)
    except ValueError as exc:
        raise SystemExit(f"--device {name} --precision {precision}: {exc}") from None
    return device


def bench(name: str, batch: int, steps: int, samples: int, peak: float, device="cpu", amp_dtype=None) -> dict:
    model = create_model(name, num_classes=9)
    macs = count_macs(model, (1, 12, samples))["macs"]
    rate = measure_training(
        model, batch, (12, samples), warmup=2, steps=steps, device=device, amp_dtype=amp_dtype
    )
    gflops = 6 * macs * rate / 1e9
    return {
        "model": name,
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "macs_M": round(macs / 1e6, 1),
        "train_samples_per_s": round(rate, 1),
        "gflops": round(gflops, 1),
        "share_of_peak": round(gflops / peak, 2),
    }


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A markdown table of `rows`, of `columns` (default: the first row's keys) in that order."""
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]) + "\n"


def to_markdown(rows: list[dict], peaks: str, header: str) -> str:
    return f"{header}\n\n{peaks}\n\n" + markdown_table(rows, COLUMNS)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="*", help="shell-style patterns of model names, comma-separated")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--steps", type=int, default=5, help="timed training steps per model (after 2 warm-up steps)"
    )
    parser.add_argument("--samples", type=int, default=1000, help="input length")
    parser.add_argument("--out", help="write the table to FILE.md or FILE.csv")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS), help="autocast precision")
    args = parser.parse_args(argv)
    device = pick_device(args.device, args.precision)
    amp_dtype = None if args.precision == "fp32" else PRECISIONS[args.precision]
    dtype_name = DTYPE_NAMES[args.precision]

    names = sorted({name for pattern in args.models.split(",") for name in list_models(pattern)})
    if not names:
        parser.error(f"no model matches {args.models!r}")
    peak = matmul_peak_gflops(device=device, dtype=PRECISIONS[args.precision])
    bandwidth = memory_bandwidth_gbs()
    header = (
        f"torch {torch.__version__}, {_device_label(device)}, {args.precision}, "
        f"batch {args.batch}, 12 x {args.samples}"
    )
    peaks = f"{dtype_name} matmul peak: {peak:.1f} GFLOP/s, CPU memory bandwidth {bandwidth:.1f} GB/s"
    print(header, f"\n{peaks}", flush=True)
    rows = []
    for name in names:
        rows.append(bench(name, args.batch, args.steps, args.samples, peak, device, amp_dtype))
        print("  ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    peak_after = matmul_peak_gflops(device=device, dtype=PRECISIONS[args.precision])
    print(f"{dtype_name} matmul peak after the run: {peak_after:.1f} GFLOP/s")
    peak = max(peak, peak_after)  # the shares are of the higher reading, so never flattered by a cold start
    for row in rows:
        row["share_of_peak"] = round(row["gflops"] / peak, 2)
    if device.type == "cpu" and amp_dtype is None:
        add_cpu_analyses(rows, args.batch, args.samples, peak, bandwidth)
    peaks = f"{dtype_name} matmul peak: {peak:.1f} GFLOP/s, CPU memory bandwidth {bandwidth:.1f} GB/s"
    write_table(args.out, rows, peaks, header)


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    return f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"


def add_cpu_analyses(rows: list[dict], batch: int, samples: int, peak: float, bandwidth: float) -> None:
    """The roofline bound and the time split of each model's step (CPU float32: the profiler's view)."""
    for row in rows:  # bounds from the same (higher) peak the shares are of
        model = create_model(row["model"], num_classes=9)
        macs = round(row["macs_M"] * 1e6)
        roofline = training_roofline(model, batch, (12, samples), peak, bandwidth, macs)
        row["roofline_share"] = round(roofline["attainable_share"], 2)
        row["of_roofline"] = round(row["share_of_peak"] / roofline["attainable_share"], 2)
        row["top_ops"] = ", ".join(list(roofline["by_op"])[:3])
        split = training_time_split(
            model, batch, (12, samples), peak, product_flops=roofline["product_flops"]
        )
        row["product_time_share"] = round(split["product_time_share"], 2)
        row["product_kernel_share"] = round(split["product_kernel_share"], 2)
        others = ", ".join(
            f"{name.removeprefix('aten::')} {share:.0%}" for name, share in split["top_other_ops"]
        )
        print(f"{row['model']}: roofline share {row['roofline_share']}, measured/roofline {row['of_roofline']}, "
              f"bound mostly in {row['top_ops']}; {row['product_time_share']:.0%} of the step in product "
              f"kernels at {row['product_kernel_share']:.0%} of the peak; largest other ops: {others}", flush=True)  # fmt: skip


def write_table(out: str | None, rows: list[dict], peaks: str, header: str) -> None:
    if out and out.endswith(".csv"):
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore", restval="")
            writer.writeheader()
            writer.writerows(rows)
    elif out:
        with open(out, "w") as f:
            f.write(to_markdown([{c: r.get(c, "") for c in COLUMNS} for r in rows], peaks, header))


if __name__ == "__main__":
    main()
