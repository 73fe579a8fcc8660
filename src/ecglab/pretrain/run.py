"""`pretrain`: one self-supervised run, from a PretrainConfig to a run folder holding the encoder.

It drives the objectives (`CPC`, `CLOCS`, `STMEM`: each a module whose forward is the loss)
through the training loop's parts: the run folder (`Run`), the devices and processes
(`init_world`), the epoch (`run_epoch` with a `Stepper`) and the resume state (`save_state`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ecglab import __version__
from ecglab.atomic import write_text
from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.data.cache import PrepareSettings
from ecglab.data.dataset import EpochSampler
from ecglab.models import create_model
from ecglab.pretrain.clocs import CLOCS
from ecglab.pretrain.config import PretrainConfig, from_dict
from ecglab.pretrain.cpc import CPC
from ecglab.pretrain.pool import PoolWindows, UnlabelledPool
from ecglab.pretrain.st_mem import STMEM
from ecglab.pretrain.views import ContrastiveViews, ViewSpec
from ecglab.train.checkpoint import load_state, save_checkpoint, save_state
from ecglab.train.distributed import (
    World,
    close_world,
    init_world,
    mean_over_world,
    micro_batch_size,
    parallel,
)
from ecglab.train.epoch import Stepper, check_precision, run_epoch
from ecglab.train.loop import DRY_RUN_STEPS, Parts, data_loader, git_commit
from ecglab.train.run_folder import Run

HISTORY_FIELDS = ["epoch", "train_loss", "lr", "seconds"]
ENCODER_DIR = "encoder"
PRETRAINING_FILE = "pretraining.json"


def pretrain(config: PretrainConfig, progress=None) -> Path:
    """Pretrain `config.encoder` by `config.method` on the unlabelled pool; returns the run folder.

    The encoder lands in `<run>/encoder/` as a checkpoint folder (a zoo model with
    num_classes=0) plus `pretraining.json`. Re-running the same recipe resumes from the last
    completed epoch, bit for bit on the CPU. `progress` is `train`'s progress-bar factory.
    """
    world = init_world(config.device)
    try:
        return _pretrain(config, world, progress)
    finally:
        close_world(world)


def _pretrain(config: PretrainConfig, world: World, progress) -> Path:
    check_precision(world.device, config.precision)
    micro = micro_batch_size(config.batch_size, world.size, config.grad_accum_steps)
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    data = build_pool_data(config, world, micro)
    run = Run(config, world, read=from_dict, fields=HISTORY_FIELDS)
    resuming = run.start()
    for name, problem in data.skipped:
        run.log(f"skipped {name}: {problem}")
    epochs = 1 if config.dry_run else config.epochs
    parts = build_objective_and_optimizer(config, len(data.pool.leads), world, epochs)
    start, history = resume(run, parts) if resuming else (0, [])
    run.log(
        f"pretraining {config.encoder} by {config.method} on {len(data.dataset)} records "
        f"({data.composition}); {len(data.skipped)} skipped; {world.size} process(es) on {world.device}"
    )
    for epoch in range(start, epochs):
        history.append(pretrain_epoch(epoch, epochs, config, world, data, parts, progress))
        run.write_history(history)
        if world.main:
            extra = {"epoch": epoch, "world_size": world.size, "scaler": parts.stepper.state_dict()}
            save_state(run.state_path, parts.model, parts.stepper.optimizer, parts.scheduler, extra)
        run.log(f"epoch {epoch}: train_loss {history[-1]['train_loss']:.4f}")
        world.barrier()
    if world.main:
        save_encoder(run.dir / ENCODER_DIR, parts.model.encoder, config, data, len(history))
        run.log(f"finished; the encoder is in {run.dir / ENCODER_DIR}")
    world.barrier()
    return run.dir


def build_objective_and_optimizer(
    config: PretrainConfig, pool_leads: int, world: World, epochs: int
) -> Parts:
    """The objective on the run's device, AdamW with cosine decay; `loss_fn` is the batch's loss."""
    objective = build_objective(config, pool_leads).to(world.device)
    train_model = parallel(objective, world)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    stepper = Stepper(
        optimizer, world.device, config.precision, config.grad_accum_steps, config.clip_grad_norm
    )
    return Parts(objective, train_model, stepper, scheduler, _batch_loss(config.method, train_model))


def resume(run: Run, parts: Parts) -> tuple[int, list[dict]]:
    """Load the state of the last completed epoch; returns the next epoch and the history so far."""
    extra = load_state(run.state_path, parts.model, parts.stepper.optimizer, parts.scheduler)
    parts.stepper.load_state_dict(extra.get("scaler") or {})
    run.log(f"resumed after epoch {extra['epoch']}")
    return extra["epoch"] + 1, run.history(extra["epoch"] + 1)


def pretrain_epoch(epoch, epochs, config, world, data, parts, progress) -> dict:
    """One epoch of the objective (the same draws on resume); returns its history row."""
    started = time.perf_counter()
    torch.manual_seed(config.seed * 100_003 + epoch)  # ST-MEM's masks, dropout: the same on resume
    data.sampler.set_epoch(epoch)
    max_steps = DRY_RUN_STEPS if config.dry_run else None
    steps = min(len(data.loader) // config.grad_accum_steps, max_steps or len(data.loader))
    advance = progress(f"epoch {epoch + 1}/{epochs}", steps) if (progress and world.main) else None
    lr = parts.stepper.optimizer.param_groups[0]["lr"]
    loss = run_epoch(parts.train_model, data.loader, parts.loss_fn, parts.stepper, max_steps, advance)
    parts.scheduler.step()
    return {"epoch": epoch, "train_loss": mean_over_world(loss, world), "lr": lr,
            "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip


@dataclass
class PoolData:
    """The pool, the method's dataset over it (records that cannot serve left out), sampler and loader."""

    pool: UnlabelledPool
    dataset: PoolWindows | ContrastiveViews
    sampler: EpochSampler
    loader: DataLoader

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return self.dataset.skipped

    @property
    def composition(self) -> dict[str, int]:
        """Records per dataset that the run learns from."""
        return dict(Counter(self.pool.name(i).split("/")[0] for i in self.dataset.keep))


def build_pool_data(config: PretrainConfig, world: World, micro: int) -> PoolData:
    """The pool of `config.datasets` (caches prepared on rank 0), refusing any evaluated fold."""
    settings = PrepareSettings(config.fs, config.seconds, "none", config.val_fold, config.test_fold)
    evaluated = {name: tuple(folds) for name, folds in config.evaluated.items()}
    if world.main:  # rank 0 prepares missing caches; the others then find them up to date
        pool = UnlabelledPool.from_data_root(
            settings, evaluated, config.root, config.datasets, config.workers
        )
    world.barrier()
    if not world.main:
        pool = UnlabelledPool.from_data_root(settings, evaluated, config.root, config.datasets)
    if config.method == "clocs":
        spec = ViewSpec(config.variant, round(config.segment_seconds * config.fs), config.segments)
        dataset = ContrastiveViews(pool, spec, config.seed)
    else:
        dataset = PoolWindows(pool, config.window_samples, config.seed)
    if len(dataset) < config.batch_size:
        raise ValueError(
            f"the pool of {', '.join(config.datasets)} gives {len(dataset)} usable records "
            f"({len(dataset.skipped)} skipped); too few for batch size {config.batch_size}"
        )
    sampler = EpochSampler(DistributedSampler(dataset, world.size, world.rank, shuffle=True, seed=config.seed,
                                              drop_last=True))  # fmt: skip
    loader = data_loader(
        dataset,
        micro,
        world.device,
        config.workers,
        sampler,
        config.persistent_workers,
        config.prefetch_factor,
    )
    return PoolData(pool, dataset, sampler, loader)


def encoder_in_chans(config: PretrainConfig, pool_leads: int) -> int:
    """The pool's leads, or one for CLOCS's lead views (CMLC, CMSMLC: each lead a view of one channel)."""
    return 1 if config.method == "clocs" and config.variant != "cmsc" else pool_leads


def build_objective(config: PretrainConfig, pool_leads: int) -> nn.Module:
    """The method's module around a zoo encoder built with num_classes=0 (on the CPU: the same weights anywhere)."""
    in_chans = encoder_in_chans(config, pool_leads)
    if config.method == "cpc":
        return CPC(config.encoder, in_chans, config.context_dim, config.steps, **config.encoder_kwargs)
    if config.method == "clocs":
        return CLOCS(config.encoder, in_chans, config.embed_dim, config.temperature, **config.encoder_kwargs)
    encoder = create_model("st_mem_vit", 0, in_chans, **config.encoder_kwargs)
    return STMEM(encoder, mask_ratio=config.mask_ratio)


def _batch_loss(method: str, model: nn.Module):
    """The loss of one batch as the loader gives it: (x, present) windows or (views, patient ids)."""
    if method == "cpc":
        return lambda x, present: model(x)
    return lambda *batch: model(*batch)


def save_encoder(
    folder: Path, encoder: nn.Module, config: PretrainConfig, data: PoolData, epochs: int
) -> None:
    """`model.safetensors` and `config.json` as a checkpoint (no classes), and `pretraining.json`."""
    in_chans = encoder_in_chans(config, len(data.pool.leads))
    leads = data.pool.leads if in_chans == len(data.pool.leads) else ("any",)
    window = data.dataset.spec.segment_samples if config.method == "clocs" else config.window_samples
    meta = CheckpointMeta(
        model=config.encoder, num_classes=0, in_chans=in_chans, lead_names=tuple(leads), classes=(),
        multilabel=False, fs=config.fs, window_samples=window, model_kwargs=config.encoder_kwargs,
        dataset="+".join(config.datasets), task=f"pretrain:{config.method}", git_commit=git_commit(),
        ecglab_version=__version__, epoch=epochs - 1,
    )  # fmt: skip
    save_checkpoint(folder, encoder, meta)
    about = {"method": config.method, "encoder": config.encoder, "encoder_kwargs": config.encoder_kwargs,
             "in_chans": in_chans, "lead_names": list(leads), "fs": config.fs, "window_samples": window,
             "epochs": epochs, "pool": data.composition, "skipped": len(data.skipped),
             "left_out": len(data.pool.left_out), "evaluated": config.evaluated}  # fmt: skip
    write_text(folder / PRETRAINING_FILE, json.dumps(about, indent=1))
