"""Channels-last against plain 1-D layers: per convolution shape, and per model's training step.

`ecglab.models.layers.conv` runs Conv1d, BatchNorm1d and 1-D pooling as (1, k) 2-D ops on
channels-last memory. This measures what that buys on this machine, in one run, so the two
layouts share its state: forward plus backward of single convolutions at shapes taken from the
model zoo (the channels-last layer given channels-last input, as inside a network), and
training samples/s of whole models (forward, loss, backward, AdamW; batch 64,
12 x 1000) with their layers swapped back to the torch.nn classes, which hold the same
parameters. Both sides of a model comparison run alternately; the best of the repeats counts.

    .venv/bin/python benchmarks/conv_layout.py --models 'resnet1d*,inception1d' --repeats 3 --out layout.md
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
from speed import markdown_table  # benchmarks/speed.py, beside this script

from ecglab.models import create_model, list_models
from ecglab.models.layers import conv as layers
from ecglab.models.profile import measure_training

# (where in the zoo, in_chans, out_chans, kernel, length, groups) at batch 64
LAYER_SHAPES = (
    ("resnet stem", 12, 64, 7, 1000, 1),
    ("resnet stage 2", 128, 128, 3, 250, 1),
    ("resnet stage 4", 512, 512, 3, 63, 1),
    ("inception1d k39", 32, 32, 39, 1000, 1),
    ("inception1d bottleneck", 128, 32, 1, 1000, 1),
    ("mobilenetv2 depthwise", 144, 144, 3, 250, 144),
    ("xresnet1d k5", 128, 128, 5, 125, 1),
)

_SWAPS = (layers.Conv1d, layers.BatchNorm1d, layers.MaxPool1d, layers.AvgPool1d)


def as_torch_layers(model: nn.Module) -> nn.Module:
    """The same model with its channels-last 1-D layers swapped for their torch.nn parents (in place)."""
    for module in model.modules():
        for cls in _SWAPS:
            if type(module) is cls:
                module.__class__ = cls.__mro__[1]
    return model


def _seconds(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def layer_rows(batch: int) -> list[dict]:
    rows = []
    for where, cin, cout, k, length, groups in LAYER_SHAPES:
        times = {}
        for name, cls in (("torch", nn.Conv1d), ("channels_last", layers.Conv1d)):
            conv = cls(cin, cout, k, padding=(k - 1) // 2, groups=groups, bias=False)
            x = torch.randn(batch, cin, length)
            if cls is layers.Conv1d:  # inside a network its input is already channels-last
                x = x.transpose(1, 2).contiguous().transpose(1, 2)
            x.requires_grad_()

            def step(conv=conv, x=x):
                y = conv(x)
                y.backward(torch.ones_like(y))

            times[name] = _seconds(step)
        rows.append(
            {
                "layer": f"{where}: {cin}->{cout}, k {k}, L {length}"
                + (f", groups {groups}" if groups > 1 else ""),
                "torch_ms": round(1000 * times["torch"], 1),
                "channels_last_ms": round(1000 * times["channels_last"], 1),
                "speedup": round(times["torch"] / times["channels_last"], 2),
            }
        )
        print(rows[-1], flush=True)
    return rows


def model_rows(names: list[str], batch: int, repeats: int) -> list[dict]:
    rows = []
    for name in names:
        plain, fast = as_torch_layers(create_model(name, num_classes=9)), create_model(name, num_classes=9)
        rates = {"torch": [], "channels_last": []}
        for _ in range(repeats):
            rates["torch"].append(measure_training(plain, batch, (12, 1000), warmup=1, steps=3))
            rates["channels_last"].append(measure_training(fast, batch, (12, 1000), warmup=1, steps=3))
        best = {k: max(v) for k, v in rates.items()}
        rows.append(
            {
                "model": name,
                "torch_samples_per_s": round(best["torch"], 1),
                "channels_last_samples_per_s": round(best["channels_last"], 1),
                "speedup": round(best["channels_last"] / best["torch"], 2),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default="resnet1d18,resnet1d34,resnet1d_wang,fcn_wang,inception1d,xresnet1d101,mobilenetv2_1d",
        help="shell-style patterns of model names, comma-separated ('' for layers only)",
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternating measurements per model and layout"
    )
    parser.add_argument("--out", help="write both tables to FILE.md")
    args = parser.parse_args(argv)
    names = sorted({n for pattern in args.models.split(",") if pattern for n in list_models(pattern)})
    header = f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}"
    print(header, flush=True)
    tables = [markdown_table(layer_rows(args.batch))]
    if names:
        tables.append(markdown_table(model_rows(names, args.batch, args.repeats)))
    if args.out:
        with open(args.out, "w") as f:
            f.write(header + "\n\n" + "\n".join(tables))


if __name__ == "__main__":
    main()
