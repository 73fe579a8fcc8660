"""`fit`: one plain PyTorch training run, from a TrainConfig to a complete run folder."""

from __future__ import annotations

import csv
import json
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ecglab import __version__
from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.data import get_reader
from ecglab.data.cache import PrepareSettings, default_cache_dir, prepare
from ecglab.data.dataset import WindowDataset
from ecglab.models import create_model
from ecglab.models._output import split_output
from ecglab.train.augment import Augment
from ecglab.train.checkpoint import load_state, save_checkpoint, save_state
from ecglab.train.config import TrainConfig
from ecglab.train.distributed import World, close_world, init_world, mean_over_world

HISTORY_FIELDS = ["epoch", "train_loss", "val_loss", "val_macro_auc", "val_macro_f1", "lr", "seconds"]
DRY_RUN_STEPS = 3
DRY_RUN_RECORDS = 48


def train_one_epoch(model, loader, optimizer, loss_fn, max_steps=None, on_step=None) -> float:
    model.train()
    total, seen = 0.0, 0
    for step, (x, y) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        logits, aux_loss = split_output(model(x))
        loss = loss_fn(logits, y) if aux_loss is None else loss_fn(logits, y) + aux_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
        seen += len(x)
        if on_step:
            on_step()
    return total / max(seen, 1)


@torch.no_grad()
def predict_records(model, ds: WindowDataset, multilabel: bool, batch_size: int, aggregate: str = "mean",
                    max_records: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Window logits -> probabilities, combined per record; returns (probs, y_true, window_logits)."""
    model.eval()
    n_records = len(ds.y) if max_records is None else min(max_records, len(ds.y))
    items = np.flatnonzero(ds.record_index < n_records)
    logits = []
    for start in range(0, len(items), batch_size):
        x = torch.stack([ds[int(i)][0] for i in items[start : start + batch_size]])
        logits.append(model(x).float())
    logits = torch.cat(logits) if logits else torch.empty(0, ds.y.shape[1])
    probs = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
    owner = ds.record_index[items]
    out = np.zeros((n_records, ds.y.shape[1]), dtype=np.float32)
    if aggregate == "max":
        np.maximum.at(out, owner, probs.numpy())
    else:
        np.add.at(out, owner, probs.numpy())
        out /= np.bincount(owner, minlength=n_records)[:, None]
    return out, ds.y[:n_records], logits.numpy()


def record_loss(probs: np.ndarray, y: np.ndarray, multilabel: bool) -> float:
    """Cross-entropy of record-level probabilities (what validation monitors)."""
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    if multilabel:
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    return float(-(y * np.log(p)).sum(axis=1).mean())


def val_scores(y_true: np.ndarray, probs: np.ndarray, multilabel: bool) -> tuple[float, float]:
    """Macro AUC and macro F1 (at 0.5, or argmax for one-of-K) used to pick the best epoch."""
    from ecglab.evaluate.metrics import f1_score, roc_auc_score

    y_pred = probs >= 0.5 if multilabel else np.eye(probs.shape[1], dtype=bool)[probs.argmax(axis=1)]
    present = y_true.any(axis=0)  # a class absent from validation has no AUC: average the others
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = roc_auc_score(y_true[:, present], probs[:, present])
    return float(auc), float(f1_score(y_true[:, present], y_pred[:, present]))


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Run:
    """The run folder: resolved config, log, history, checkpoints, predictions, metrics."""

    def __init__(self, config: TrainConfig, world: World):
        self.dir = Path(config.out) / config.run_name
        self.config, self.world = config, world
        self.state_path = self.dir / "state.safetensors"

    def start(self) -> bool:
        """Create or reopen the folder; True when a resume state exists. A different config is an error."""
        resolved = yaml.safe_dump(self.config.to_dict(), sort_keys=False)
        saved = self.dir / "config.yaml"
        if saved.is_file() and saved.read_text() != resolved:
            raise ValueError(
                f"{self.dir} holds a run with a different config; set another `name` or remove the folder"
            )
        if self.world.main:
            self.dir.mkdir(parents=True, exist_ok=True)
            saved.write_text(resolved)
        self.world.barrier()
        return self.state_path.is_file()

    def log(self, message: str) -> None:
        if self.world.main:
            with open(self.dir / "log.txt", "a") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def history(self, before_epoch: int) -> list[dict]:
        """History rows of completed epochs (a row written just before a kill is dropped)."""
        path = self.dir / "history.csv"
        if not path.is_file():
            return []
        with open(path) as f:
            return [r for r in csv.DictReader(f) if int(r["epoch"]) < before_epoch]

    def write_history(self, rows: list[dict]) -> None:
        if self.world.main:
            tmp = self.dir / "history.csv.tmp"
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
                writer.writeheader()
                writer.writerows(rows)
            tmp.replace(self.dir / "history.csv")


def build_optimizer(model: nn.Module, config: TrainConfig):
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.scheduler == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return optimizer, scheduler


def fit_schedule_to_budget(scheduler, epochs: int, first_epoch_seconds: float, max_minutes: float) -> int:
    """Shorten the run to the epochs that fit a time budget, and the cosine decay with it.

    Budgeted training (Li et al., 2020): a schedule that anneals within the budget beats one cut
    off at a high learning rate. The first epoch's time, validation included, sets the length; it
    is saved with the resume state, so a resumed run keeps the same schedule.
    """
    fitting = max(1, min(epochs, int(60 * max_minutes // max(first_epoch_seconds, 1e-9))))
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        scheduler.T_max = fitting  # exact: epoch 0 ran at the base rate whatever T_max was
    return fitting


def fit(config: TrainConfig, progress=None) -> Path:
    """Train, validate every epoch, keep the best checkpoint, predict every split, evaluate.

    Re-running the same config resumes from the last completed epoch; on CPU the result is the
    same, bit for bit, as a run that was never interrupted. `progress` is an optional
    `(description, total) -> advance()` factory for a progress bar.
    """
    world = init_world()
    try:
        return _fit(config, world, progress)
    finally:
        close_world(world)


def _fit(config: TrainConfig, world: World, progress) -> Path:
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    reader = get_reader(config.dataset, config.root, config.fs)
    task = reader.task(config.task)
    settings = PrepareSettings(config.fs, config.seconds, config.filter, config.val_fold, config.test_fold)
    cache_dir = Path(config.cache) if config.cache else default_cache_dir(config.dataset, settings)
    if world.main:
        prepare(reader, cache_dir, settings)
    world.barrier()
    manifest = json.loads((cache_dir / "manifest.json").read_text())

    run = Run(config, world)
    resuming = run.start()
    window = config.crop_seconds or config.seconds
    augment = Augment(config.augment, config.fs)
    train_ds = WindowDataset(cache_dir, "train", task, seconds=window, mode="random", norm=config.norm,
                             seed=config.seed, transform=augment if augment.active else None)  # fmt: skip
    eval_sets = {split: WindowDataset(cache_dir, split, task, seconds=window, mode="sliding", norm=config.norm,
                                      stride_seconds=config.eval_stride_seconds) for split in ("val", "test")}  # fmt: skip
    if len(train_ds) < config.batch_size or len(eval_sets["val"]) == 0:
        raise ValueError(f"{cache_dir}: {len(train_ds)} training and {len(eval_sets['val'].y)} validation records "
                         f"of task {task.name}; too few for batch size {config.batch_size}")  # fmt: skip
    sampler = DistributedSampler(
        train_ds, num_replicas=world.size, rank=world.rank, shuffle=True, seed=config.seed, drop_last=True
    )
    loader = DataLoader(train_ds, batch_size=config.batch_size // world.size, sampler=sampler, drop_last=True)

    model = create_model(
        config.model, num_classes=task.num_classes, in_chans=len(reader.lead_names), **config.model_kwargs
    )
    train_model = nn.parallel.DistributedDataParallel(model) if world.size > 1 else model
    optimizer, scheduler = build_optimizer(model, config)
    loss_fn = nn.BCEWithLogitsLoss() if task.multilabel else _OneHotCrossEntropy()
    meta = CheckpointMeta(
        model=config.model, model_kwargs=config.model_kwargs, num_classes=task.num_classes,
        in_chans=len(reader.lead_names), lead_names=tuple(reader.lead_names), classes=tuple(task.classes),
        multilabel=task.multilabel, fs=config.fs, window_samples=round(window * config.fs), seconds=window,
        norm=config.norm, filter=config.filter, aggregate=config.aggregate, dataset=config.dataset,
        task=task.name, data_manifest_hash=manifest["inputs_hash"], git_commit=git_commit(),
        ecglab_version=__version__,
    )  # fmt: skip

    start_epoch, best, bad_epochs, trained_seconds = 0, None, 0, 0.0
    epochs = 1 if config.dry_run else config.epochs
    if resuming:
        extra = load_state(run.state_path, model, optimizer, scheduler)
        start_epoch, best, bad_epochs, trained_seconds = (
            extra["epoch"] + 1,
            extra["best"],
            extra["bad_epochs"],
            extra["seconds"],
        )
        epochs = extra.get("epochs", epochs)
        run.log(f"resumed after epoch {extra['epoch']}")
    history = run.history(start_epoch)
    max_steps = DRY_RUN_STEPS if config.dry_run else None
    max_records = DRY_RUN_RECORDS if config.dry_run else None
    run.log(
        f"training {config.model} on {config.dataset}/{task.name}: {len(train_ds)} train, {len(eval_sets['val'].y)} val records"
    )

    for epoch in range(start_epoch, epochs):
        if (
            epoch >= epochs
            or bad_epochs >= config.patience > 0
            or (config.max_minutes and trained_seconds >= 60 * config.max_minutes)
        ):
            break
        started = time.perf_counter()
        torch.manual_seed(config.seed * 100_003 + epoch)  # dropout and the like: the same on resume
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        steps = min(len(loader), max_steps or len(loader))
        advance = progress(f"epoch {epoch + 1}/{epochs}", steps) if (progress and world.main) else None
        train_loss = mean_over_world(
            train_one_epoch(train_model, loader, optimizer, loss_fn, max_steps, advance), world
        )
        probs, y_val, _ = predict_records(
            model, eval_sets["val"], task.multilabel, config.batch_size, config.aggregate, max_records
        )
        val_auc, val_f1 = val_scores(y_val, probs, task.multilabel)
        val_loss = record_loss(probs, y_val, task.multilabel)
        lr = optimizer.param_groups[0]["lr"]
        # every process adds the same time, so all stop after the same epoch and fit the same schedule
        trained_seconds += mean_over_world(time.perf_counter() - started, world)
        if epoch == 0 and config.max_minutes:
            epochs = fit_schedule_to_budget(scheduler, epochs, trained_seconds, config.max_minutes)
            run.log(
                f"{trained_seconds:.1f} s per epoch: {epochs} epochs fit the {config.max_minutes:g}-minute budget"
            )
        scheduler.step()
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_macro_auc": val_auc,
               "val_macro_f1": val_f1, "lr": lr, "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
        history.append(row)
        score = {"val_loss": -val_loss, "val_macro_auc": val_auc, "val_macro_f1": val_f1}[config.monitor]
        improved = best is None or score > best
        best, bad_epochs = (score, 0) if improved else (best, bad_epochs + 1)
        run.write_history(history)
        if world.main:
            if improved:
                save_checkpoint(run.dir / "checkpoint", model, replace(meta, epoch=epoch))
            save_state(run.state_path, model, optimizer, scheduler,
                       {"epoch": epoch, "best": best, "bad_epochs": bad_epochs, "seconds": trained_seconds,
                        "epochs": epochs})  # fmt: skip
        run.log(
            f"epoch {epoch}: train_loss {train_loss:.4f} val_loss {val_loss:.4f} val_macro_auc {val_auc:.4f}"
        )
        world.barrier()

    if world.main:
        finish(run, model, eval_sets, task.multilabel, config, max_records)
    world.barrier()
    return run.dir


def finish(
    run: Run, model: nn.Module, eval_sets: dict, multilabel: bool, config: TrainConfig, max_records
) -> None:
    """Reload the best weights, write each split's record-level predictions, then evaluate."""
    from ecglab.train.checkpoint import load_checkpoint

    best, _ = load_checkpoint(run.dir / "checkpoint")
    out = run.dir / "predictions"
    out.mkdir(exist_ok=True)
    train = WindowDataset(eval_sets["val"].split.dir, "train", eval_sets["val"].task, seconds=eval_sets["val"].n / eval_sets["val"].split.fs,
                          mode="sliding", norm=config.norm, stride_seconds=config.eval_stride_seconds)  # fmt: skip
    for split, ds in {"train": train, **eval_sets}.items():
        probs, y, _ = predict_records(best, ds, multilabel, config.batch_size, config.aggregate, max_records)
        np.save(out / f"{split}_probs.npy", probs)
        np.save(out / f"{split}_true.npy", y)
    from ecglab.evaluate.evaluate import evaluate_run

    evaluate_run(run.dir, n_bootstrap=min(config.bootstrap, 50) if config.dry_run else config.bootstrap)
    run.log("finished; metrics in metrics.json")


class _OneHotCrossEntropy(nn.Module):
    """Cross-entropy for one-of-K targets given as one-hot rows (the datasets' label matrices)."""

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, y.argmax(dim=1))
