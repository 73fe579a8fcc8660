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

    .venv/bin/python benchmarks/speed.py --models 'resnet1d*' --steps 5 --out speed.md
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


def bench(name: str, batch: int, steps: int, samples: int, peak: float) -> dict:
    model = create_model(name, num_classes=9)
    macs = count_macs(model, (1, 12, samples))["macs"]
    rate = measure_training(model, batch, (12, samples), warmup=2, steps=steps)
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


def to_markdown(rows: list[dict], peak: float, bandwidth: float, header: str) -> str:
    peaks = f"float32 matmul peak: {peak:.1f} GFLOP/s, memory bandwidth {bandwidth:.1f} GB/s"
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
    args = parser.parse_args(argv)

    names = sorted({name for pattern in args.models.split(",") for name in list_models(pattern)})
    if not names:
        parser.error(f"no model matches {args.models!r}")
    peak, bandwidth = matmul_peak_gflops(), memory_bandwidth_gbs()
    header = (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"batch {args.batch}, 12 x {args.samples}"
    )
    print(
        header,
        f"\nfloat32 matmul peak: {peak:.1f} GFLOP/s, memory bandwidth {bandwidth:.1f} GB/s",
        flush=True,
    )
    rows = []
    for name in names:
        rows.append(bench(name, args.batch, args.steps, args.samples, peak))
        print("  ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    peak_after = matmul_peak_gflops()
    print(f"float32 matmul peak after the run: {peak_after:.1f} GFLOP/s")
    peak = max(peak, peak_after)  # the shares are of the higher reading, so never flattered by a cold start
    for row in rows:  # bounds from the same (higher) peak the shares are of
        row["share_of_peak"] = round(row["gflops"] / peak, 2)
        model = create_model(row["model"], num_classes=9)
        macs = round(row["macs_M"] * 1e6)
        roofline = training_roofline(model, args.batch, (12, args.samples), peak, bandwidth, macs)
        row["roofline_share"] = round(roofline["attainable_share"], 2)
        row["of_roofline"] = round(row["share_of_peak"] / roofline["attainable_share"], 2)
        row["top_ops"] = ", ".join(list(roofline["by_op"])[:3])
        split = training_time_split(
            model, args.batch, (12, args.samples), peak, product_flops=roofline["product_flops"]
        )
        row["product_time_share"] = round(split["product_time_share"], 2)
        row["product_kernel_share"] = round(split["product_kernel_share"], 2)
        others = ", ".join(
            f"{name.removeprefix('aten::')} {share:.0%}" for name, share in split["top_other_ops"]
        )
        print(f"{row['model']}: roofline share {row['roofline_share']}, measured/roofline {row['of_roofline']}, "
              f"bound mostly in {row['top_ops']}; {row['product_time_share']:.0%} of the step in product "
              f"kernels at {row['product_kernel_share']:.0%} of the peak; largest other ops: {others}", flush=True)  # fmt: skip
    if args.out and args.out.endswith(".csv"):
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    elif args.out:
        with open(args.out, "w") as f:
            f.write(to_markdown(rows, peak, bandwidth, header))


if __name__ == "__main__":
    main()
