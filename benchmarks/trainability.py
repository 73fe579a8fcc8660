"""Does a model fit the training set at all? Training loss against the label prior, step by step.

    python benchmarks/trainability.py inceptionformer_tiny [--kwargs '{"norm": "layer"}']
        [--dataset ptbxl] [--root DIR] [--task rhythm] [--steps 400]

Trains on random 2.5 s crops of the training folds (batch 64, AdamW 1e-3, one thread, seed 0, no
validation) and prints the mean training loss of every 50 steps beside the loss of predicting each
class's training frequency (the label prior). A model that stays at the prior has learnt nothing;
this is how InceptionFormer's LayerNorm stall on PTB-XL rhythm was found (docs/inceptionformer.md).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from ecglab.data import get_reader
from ecglab.data.cache import PrepareSettings, default_cache_dir, prepare
from ecglab.data.dataset import WindowDataset
from ecglab.models import create_model


def prior_loss(y: np.ndarray) -> float:
    """Mean binary cross-entropy of predicting each class's frequency."""
    p = np.clip(y.mean(axis=0), 1e-7, 1 - 1e-7)
    return float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--kwargs", default="{}", help="model constructor arguments, as JSON")
    parser.add_argument("--dataset", default="ptbxl")
    parser.add_argument("--root", default=None, help="the dataset folder (default: $ECGLAB_DATA/<dataset>)")
    parser.add_argument("--task", default="rhythm")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=2.5)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    reader = get_reader(args.dataset, args.root, 100.0)
    task = reader.task(args.task)
    if not task.multilabel:
        raise SystemExit(
            f"{args.dataset}/{task.name} is single-label; this probe compares BCE with the prior"
        )
    settings = PrepareSettings(100.0, 10.0, "none", 9, 10)
    cache = default_cache_dir(args.dataset, settings)
    prepare(reader, cache, settings)
    train = WindowDataset(cache, "train", task, seconds=args.seconds, mode="random", norm="zscore", seed=0)
    loader = DataLoader(train, batch_size=64, shuffle=True, drop_last=True)
    model = create_model(args.model, task.num_classes, len(reader.lead_names), **json.loads(args.kwargs))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    print(
        f"{args.model} {args.kwargs} on {args.dataset}/{task.name}: label-prior loss {prior_loss(train.y):.4f}"
    )
    losses, started = [], time.perf_counter()
    model.train()
    while len(losses) < args.steps:
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if len(losses) % 50 == 0:
                elapsed = time.perf_counter() - started
                print(
                    f"step {len(losses)}: train loss {np.mean(losses[-50:]):.4f} ({elapsed:.0f} s)",
                    flush=True,
                )
            if len(losses) == args.steps:
                break


if __name__ == "__main__":
    main()
