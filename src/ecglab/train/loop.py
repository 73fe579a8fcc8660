"""`fit`: one plain PyTorch training run, from a TrainConfig to a complete run folder."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from ecglab import __version__
from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.data import get_reader
from ecglab.data.cache import PrepareSettings, default_cache_dir, prepare
from ecglab.data.dataset import EpochSampler, WindowDataset
from ecglab.data.leads import lead_positions
from ecglab.distill.distiller import Distiller
from ecglab.distill.teacher import load_teacher, teacher_folder
from ecglab.evaluate.calibration import negative_log_likelihood, record_probabilities
from ecglab.models import create_model
from ecglab.models._output import split_output
from ecglab.pretrain.transfer import estimate_norm_statistics, param_groups, start_at_label_prior, start_from
from ecglab.train.augment import Augment
from ecglab.train.checkpoint import load_state, save_checkpoint, save_state
from ecglab.train.config import RANDOM_ENCODER, TrainConfig
from ecglab.train.distributed import (
    World,
    close_world,
    from_main,
    init_world,
    mean_over_world,
    micro_batch_size,
    parallel,
)
from ecglab.train.epoch import Stepper, autocast, check_precision, run_epoch
from ecglab.train.label_fraction import LabelSubset, label_subset
from ecglab.train.run_folder import Run

DRY_RUN_STEPS = 3
DRY_RUN_RECORDS = 48


def train_one_epoch(model, loader, stepper: Stepper, loss_fn, max_steps=None, on_step=None) -> float:
    """Supervised epoch: the task loss, plus the auxiliary loss a model may return in training."""

    def batch_loss(x, y):
        logits, aux_loss = split_output(model(x))
        return loss_fn(logits, y) if aux_loss is None else loss_fn(logits, y) + aux_loss

    return run_epoch(model, loader, batch_loss, stepper, max_steps, on_step)


def data_loader(
    ds,
    batch_size: int,
    device: torch.device,
    workers: int = 0,
    sampler=None,
    persistent: bool = False,
    prefetch_factor: int = 2,
) -> DataLoader:
    """Batches of `ds` (whole batches only when a sampler is given: training).

    The loader's own generator leaves the global RNG, which dropout draws from, untouched:
    the same dropout masks with any number of workers, persistent or not, and after a resume.
    """
    options = {"persistent_workers": persistent, "prefetch_factor": prefetch_factor} if workers else {}
    return DataLoader(
        ds,
        batch_size,
        sampler=sampler,
        drop_last=sampler is not None,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator(),
        **options,
    )


@torch.no_grad()
def predict_records(
    model,
    ds: WindowDataset,
    multilabel: bool,
    batch_size: int,
    aggregate: str = "mean",
    max_records: int | None = None,
    device: torch.device | None = None,
    precision: str = "fp32",
    workers: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window logits -> probabilities, combined per record; returns (probs, y_true, window_logits).

    `model` is already on `device` (default: the CPU); the results come back as numpy arrays.
    """
    device = device or torch.device("cpu")
    model.eval()
    n_records = len(ds.y) if max_records is None else min(max_records, len(ds.y))
    items = np.flatnonzero(ds.record_index < n_records)
    logits = []
    for x, _ in data_loader(Subset(ds, items.tolist()), batch_size, device, workers):
        with autocast(device, precision):
            logits.append(model(x.to(device, non_blocking=True)).float().cpu())
    logits = (torch.cat(logits) if logits else torch.empty(0, ds.y.shape[1])).numpy()
    owner = ds.record_index[items]
    out = record_probabilities(logits, owner, n_records, multilabel, aggregate).astype(np.float32)
    return out, ds.y[:n_records], logits


def record_loss(probs: np.ndarray, y: np.ndarray, multilabel: bool) -> float:
    """Cross-entropy of record-level probabilities (what validation monitors)."""
    return negative_log_likelihood(probs, y, multilabel)


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


def build_optimizer(model: nn.Module, config: TrainConfig, extra: list[nn.Parameter] = ()):
    """AdamW over the model's groups (and `extra` parameters at lr: a distiller's heads), and its schedule."""
    groups = param_groups(model, config.lr, config.init.encoder_lr_scale)
    groups += [{"params": list(extra)}] if extra else []
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
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

    Under torchrun every process trains its share of each global batch; validation, the
    checkpoints and the final predictions and evaluation run on rank 0 alone. Re-running the
    same config resumes from the last completed epoch; on CPU the result is the same, bit for
    bit, as a run that was never interrupted. `progress` is an optional
    `(description, total) -> advance()` factory for a progress bar.
    """
    world = init_world(config.device)
    try:
        return _fit(config, world, progress)
    finally:
        close_world(world)


def _fit(config: TrainConfig, world: World, progress) -> Path:
    check_execution(config, world)
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    data = build_datasets(config, world)
    parts = build_model_and_optimizer(config, data, world)  # a teacher or encoder refused: no run folder yet
    run = Run(config, world)
    resuming = run.start()
    epochs = 1 if config.dry_run else config.epochs
    state = resume_state(run, parts, world, epochs) if resuming else TrainState(epochs)
    meta = checkpoint_meta(config, data)
    teacher = f"; {config.distill.method} from {config.distill.teacher}" if config.distill.teacher else ""
    run.log(
        f"training {config.model} on {config.dataset}/{data.task.name} (leads {', '.join(data.leads)}{teacher}): "
        f"{len(data.train)} train, {len(data.eval_sets['val'].y)} val records; "
        f"{world.size} process(es) on {world.device}"
    )
    run.log(data.subset.describe())
    if config.init.mode == "linear" and not resuming:
        prepare_linear_evaluation(config, data, parts.model, world, run)
    for epoch in range(state.start_epoch, state.epochs):
        if state.finished(epoch, config):
            break
        fit_epoch(epoch, config, world, run, data, parts, state, meta, progress)
    if world.main:
        finish(run, parts.model, data.eval_sets, data.task.multilabel, config, world.device)
    world.barrier()
    return run.dir


def prepare_linear_evaluation(
    config: TrainConfig, data: Data, model: nn.Module, world: World, run: Run
) -> None:
    """Before linear evaluation's first step: the random-encoder baseline's BatchNorm statistics from
    one pass over the training windows (`estimate_norm_statistics`: a pretrained encoder brings those
    of its pool), and the probe's bias at the training labels' prior (`start_at_label_prior`)."""
    if config.init.path == RANDOM_ENCODER:
        leads = data.lead_index if config.distill.teacher else slice(None)  # the set holds every lead then
        loader = data_loader(data.train, config.batch_size, world.device, config.workers)
        count = estimate_norm_statistics(model, (x[:, leads] for x, _ in loader))
        if count:
            run.log(
                f"random encoder: BatchNorm statistics of {count} layers estimated on {len(data.train)} training windows"
            )
    if start_at_label_prior(model, data.train.y, data.task.multilabel):
        run.log(f"linear probe: bias set to the label prior of {len(data.train)} training records")


def check_execution(config: TrainConfig, world: World) -> None:
    """Errors that need no data: precision and SyncBatchNorm for the device, the batch's split."""
    check_precision(world.device, config.precision)
    if config.sync_bn and world.device.type != "cuda":
        raise ValueError(
            f"sync_bn: SyncBatchNorm runs on CUDA devices only, and this run is on "
            f"{world.device}; set sync_bn: false"
        )
    micro_batch_size(config.batch_size, world.size, config.grad_accum_steps)
    if config.distill.teacher is not None:
        teacher_folder(config.distill.teacher)


@dataclass
class Data:
    """The run's data: the reader and task, the prepared cache's manifest, the datasets and the loader.

    `leads` are the model's (the recipe's `leads`, else the dataset's), at `lead_index` among the
    dataset's. The training set holds every lead of the dataset when a teacher needs them.
    """

    reader: object
    task: object
    manifest: dict
    window: float
    train: WindowDataset
    eval_sets: dict[str, WindowDataset]
    sampler: EpochSampler
    loader: DataLoader
    leads: tuple[str, ...]
    lead_index: list[int]
    subset: LabelSubset  # the training records of `label_fraction`


def build_datasets(config: TrainConfig, world: World) -> Data:
    """Prepare the cache (rank 0), then the training set with its loader and the sliding val/test sets."""
    reader = get_reader(config.dataset, config.root, config.fs)
    task = reader.task(config.task)
    settings = cache_settings(config)
    cache_dir = cache_dir_for(config)
    if world.main:
        prepare(reader, cache_dir, settings)
    world.barrier()
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    window = config.crop_seconds or config.seconds
    augment = Augment(config.augment, config.fs)
    lead_index = lead_positions(
        config.leads or reader.lead_names, reader.lead_names, f"leads of {config.dataset}"
    )
    leads = tuple(reader.lead_names[i] for i in lead_index)
    chosen = None if leads == tuple(reader.lead_names) else lead_index
    train = WindowDataset(cache_dir, "train", task, seconds=window, mode="random", norm=config.norm, seed=config.seed,
                          transform=augment if augment.active else None,
                          leads=None if config.distill.teacher else chosen)  # fmt: skip
    eval_sets = evaluation_sets(config, cache_dir, task, chosen)
    subset = label_subset(train.y, train.patient_ids, config.label_fraction, config.seed, task.classes)
    train.restrict(subset.positions)
    if len(train) < config.batch_size or len(eval_sets["val"]) == 0:
        kept = subset.describe() + "," if config.label_fraction < 1 else f"{len(train)} training and"
        raise ValueError(f"{cache_dir}: {kept} {len(eval_sets['val'].y)} validation records of task {task.name}; "
                         f"too few for batch size {config.batch_size}")  # fmt: skip
    sampler = EpochSampler(
        DistributedSampler(
            train, num_replicas=world.size, rank=world.rank, shuffle=True, seed=config.seed, drop_last=True
        )
    )
    micro = micro_batch_size(config.batch_size, world.size, config.grad_accum_steps)
    loader = data_loader(
        train, micro, world.device, config.workers, sampler, config.persistent_workers, config.prefetch_factor
    )
    return Data(reader, task, manifest, window, train, eval_sets, sampler, loader, leads, lead_index, subset)


def cache_settings(config: TrainConfig) -> PrepareSettings:
    return PrepareSettings(config.fs, config.seconds, config.filter, config.val_fold, config.test_fold)


def cache_dir_for(config: TrainConfig) -> Path:
    """The prepared cache a run reads: `cache`, else the default folder for its settings."""
    return Path(config.cache) if config.cache else default_cache_dir(config.dataset, cache_settings(config))


def evaluation_sets(config: TrainConfig, cache_dir: Path, task, leads=None) -> dict[str, WindowDataset]:
    """The val and test sets as validation and the final predictions read them: every sliding window
    (of the cache's lead positions `leads`, or all leads)."""
    window = config.crop_seconds or config.seconds
    return {split: WindowDataset(cache_dir, split, task, seconds=window, mode="sliding", norm=config.norm,
                                 stride_seconds=config.eval_stride_seconds, leads=leads)
            for split in ("val", "test")}  # fmt: skip


@dataclass
class Parts:
    """What trains: `model` is evaluated and saved; `train_model` wraps it (DDP, torch.compile), or
    wraps `learner`, a module around it (a distiller) whose weights are the resume state's."""

    model: nn.Module
    train_model: nn.Module
    stepper: Stepper
    scheduler: object
    loss_fn: nn.Module
    learner: nn.Module | None = None

    @property
    def state_module(self) -> nn.Module:
        """The module whose weights the resume state holds: `learner` if any, else `model`."""
        return self.model if self.learner is None else self.learner


def build_model_and_optimizer(config: TrainConfig, data: Data, world: World) -> Parts:
    """The model on the run's device (initialised on the CPU, so the same weights anywhere), beside
    its frozen teacher when the recipe distils one."""
    in_chans = len(data.leads)
    model = create_model(
        config.model, num_classes=data.task.num_classes, in_chans=in_chans, **config.model_kwargs
    )
    model = start_from(model, config.init, config.model, in_chans)  # a pretrained encoder, frozen or not
    if config.sync_bn and world.size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(world.device)
    learner = attach_teacher(config, data, model, world.device) if config.distill.teacher else None
    train_model = parallel(model if learner is None else learner, world)
    if config.compile:
        train_model = torch.compile(train_model)
    optimizer, scheduler = build_optimizer(model, config, learner.extra_parameters() if learner else ())
    stepper = Stepper(
        optimizer, world.device, config.precision, config.grad_accum_steps, config.clip_grad_norm
    )
    loss_fn = nn.BCEWithLogitsLoss() if data.task.multilabel else _OneHotCrossEntropy()
    return Parts(model, train_model, stepper, scheduler, loss_fn, learner)


def attach_teacher(config: TrainConfig, data: Data, student: nn.Module, device: torch.device) -> Distiller:
    """The student beside the recipe's teacher (checked against the task), both on `device`."""
    teacher, meta = load_teacher(config.distill.teacher, config.dataset, data.task, config.fs, config.norm)
    teacher_leads = lead_positions(
        meta.lead_names, data.reader.lead_names, f"{config.distill.teacher}: the teacher's leads"
    )
    return Distiller(student, teacher.to(device), data.lead_index, teacher_leads, config.distill).to(device)


def checkpoint_meta(config: TrainConfig, data: Data) -> CheckpointMeta:
    """What a checkpoint's config.json holds: enough to rebuild the model and use it on a file,
    and the share of the training labels it learnt from."""
    leads, task, manifest, window = data.leads, data.task, data.manifest, data.window
    return CheckpointMeta(
        model=config.model, model_kwargs=config.model_kwargs, num_classes=task.num_classes,
        in_chans=len(leads), lead_names=tuple(leads), classes=tuple(task.classes),
        multilabel=task.multilabel, fs=config.fs, window_samples=round(window * config.fs), seconds=window,
        norm=config.norm, filter=config.filter, aggregate=config.aggregate, dataset=config.dataset,
        task=task.name, data_manifest_hash=manifest["inputs_hash"], git_commit=git_commit(),
        ecglab_version=__version__, label_fraction=config.label_fraction, train_records=len(data.train),
        linear_probe=config.init.mode == "linear",
    )  # fmt: skip


@dataclass
class TrainState:
    """Where training stands; saved with the weights after every epoch, so a resumed run continues it."""

    epochs: int
    start_epoch: int = 0
    best: float | None = None
    bad_epochs: int = 0
    seconds: float = 0.0
    history: list = field(default_factory=list)

    def finished(self, epoch: int, config: TrainConfig) -> bool:
        out_of_time = config.max_minutes and self.seconds >= 60 * config.max_minutes
        return epoch >= self.epochs or self.bad_epochs >= config.patience > 0 or bool(out_of_time)

    def record(self, score: float) -> bool:
        """Count a validation score; True when it is the best so far."""
        improved = self.best is None or score > self.best
        self.best, self.bad_epochs = (score, 0) if improved else (self.best, self.bad_epochs + 1)
        return improved


def resume_state(run: Run, parts: Parts, world: World, epochs: int) -> TrainState:
    """Weights, optimizer, scheduler and loss scale from the state file (device-free, loaded onto
    this run's device). Another device, number of processes or accumulation continues the same
    global batches; the log says what changed."""
    extra = load_state(run.state_path, parts.state_module, parts.stepper.optimizer, parts.scheduler)
    parts.stepper.load_state_dict(extra.get("scaler") or {})
    state = TrainState(
        extra.get("epochs", epochs),
        extra["epoch"] + 1,
        extra["best"],
        extra["bad_epochs"],
        extra["seconds"],
        run.history(extra["epoch"] + 1),
    )
    was = extra.get("world_size", 1)
    note = f"; {world.size} process(es), {was} before" if was != world.size else ""
    run.log(f"resumed after epoch {extra['epoch']}{note}")
    return state


def fit_epoch(epoch, config, world, run, data, parts, state, meta, progress) -> None:
    """Train one epoch, validate on rank 0, step the schedule, save the state (and the best checkpoint)."""
    started = time.perf_counter()
    torch.manual_seed(config.seed * 100_003 + epoch)  # dropout and the like: the same on resume
    data.sampler.set_epoch(epoch)
    max_steps = DRY_RUN_STEPS if config.dry_run else None
    steps = min(len(data.loader) // config.grad_accum_steps, max_steps or len(data.loader))
    advance = progress(f"epoch {epoch + 1}/{state.epochs}", steps) if (progress and world.main) else None
    train_loss = mean_over_world(
        train_one_epoch(parts.train_model, data.loader, parts.stepper, parts.loss_fn, max_steps, advance),
        world,
    )
    val_loss, val_auc, val_f1 = validate(parts.model, data, config, world)
    lr = parts.stepper.optimizer.param_groups[0]["lr"]
    # every process adds the same time, so all stop after the same epoch and fit the same schedule
    state.seconds += mean_over_world(time.perf_counter() - started, world)
    if epoch == 0 and config.max_minutes:
        state.epochs = fit_schedule_to_budget(
            parts.scheduler, state.epochs, state.seconds, config.max_minutes
        )
        run.log(
            f"{state.seconds:.1f} s per epoch: {state.epochs} epochs fit the {config.max_minutes:g}-minute budget"
        )
    parts.scheduler.step()
    state.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_macro_auc": val_auc,
                          "val_macro_f1": val_f1, "lr": lr, "seconds": round(time.perf_counter() - started, 3)})  # fmt: skip
    improved = state.record(
        {"val_loss": -val_loss, "val_macro_auc": val_auc, "val_macro_f1": val_f1}[config.monitor]
    )
    run.write_history(state.history)
    if world.main:
        save_epoch(run, parts, state, epoch, meta if improved else None, world.size)
    run.log(f"epoch {epoch}: train_loss {train_loss:.4f} val_loss {val_loss:.4f} val_macro_auc {val_auc:.4f}")
    world.barrier()


def save_epoch(
    run: Run, parts: Parts, state: TrainState, epoch: int, meta: CheckpointMeta | None, world_size: int
) -> None:
    """The resume state (CPU tensors: it loads on any device), and the checkpoint when `meta` is given."""
    if meta is not None:
        save_checkpoint(run.dir / "checkpoint", parts.model, replace(meta, epoch=epoch))
    extra = {"epoch": epoch, "best": state.best, "bad_epochs": state.bad_epochs, "seconds": state.seconds,
             "epochs": state.epochs, "world_size": world_size, "scaler": parts.stepper.state_dict()}  # fmt: skip
    save_state(run.state_path, parts.state_module, parts.stepper.optimizer, parts.scheduler, extra)


def validate(model: nn.Module, data: Data, config: TrainConfig, world: World) -> tuple[float, float, float]:
    """(val_loss, val_macro_auc, val_macro_f1), computed on rank 0 and shared with every process."""
    scores = [0.0, 0.0, 0.0]
    if world.main:
        max_records = DRY_RUN_RECORDS if config.dry_run else None
        probs, y_val, _ = predict_records(
            model,
            data.eval_sets["val"],
            data.task.multilabel,
            config.batch_size,
            config.aggregate,
            max_records,
            world.device,
            config.precision,
            config.workers,
        )
        scores = [
            record_loss(probs, y_val, data.task.multilabel),
            *val_scores(y_val, probs, data.task.multilabel),
        ]
    return tuple(from_main(scores, world))


def finish(
    run: Run, model: nn.Module, eval_sets: dict, multilabel: bool, config: TrainConfig, device: torch.device
) -> None:
    """Reload the best weights, write each split's record-level predictions, then evaluate."""
    from ecglab.train.checkpoint import load_checkpoint

    best, _ = load_checkpoint(run.dir / "checkpoint")
    best = best.to(device)
    out = run.dir / "predictions"
    out.mkdir(exist_ok=True)
    val = eval_sets["val"]
    train = WindowDataset(val.split.dir, "train", val.task, seconds=val.n / val.split.fs, mode="sliding",
                          norm=config.norm, stride_seconds=config.eval_stride_seconds, leads=val.leads)  # fmt: skip
    max_records = DRY_RUN_RECORDS if config.dry_run else None
    for split, ds in {"train": train, **eval_sets}.items():
        probs, y, _ = predict_records(
            best,
            ds,
            multilabel,
            config.batch_size,
            config.aggregate,
            max_records,
            device,
            config.precision,
            config.workers,
        )
        np.save(out / f"{split}_probs.npy", probs)
        np.save(out / f"{split}_true.npy", y)
    from ecglab.evaluate.evaluate import evaluate_run

    evaluate_run(run.dir, n_bootstrap=min(config.bootstrap, 50) if config.dry_run else config.bootstrap)
    run.log("finished; metrics in metrics.json")


class _OneHotCrossEntropy(nn.Module):
    """Cross-entropy for one-of-K targets given as one-hot rows (the datasets' label matrices)."""

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, y.argmax(dim=1))
