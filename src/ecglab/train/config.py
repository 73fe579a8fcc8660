"""A training recipe: a small YAML file read into a frozen dataclass; defaults live here."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ecglab.devices import check_device_spec

PRECISIONS = ("fp32", "bf16", "fp16")
# Keys that choose where and how a run executes, not its recipe: a run may resume with them changed.
# grad_accum_steps splits the global batch as the number of processes does (batch norm sees the split).
EXECUTION_KEYS = frozenset(
    {"device", "threads", "workers", "prefetch_factor", "persistent_workers", "grad_accum_steps", "compile"}
)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentations, each off at 0 (the notes' three, then common additions)."""

    lead_mask_p: float = 0.0  # probability of zeroing each lead
    segment_mask_p: float = 0.0  # probability of zeroing a segment at the start or the end
    segment_mask_max: float = 0.2  # longest masked segment, as a fraction of the window
    noise_std: float = 0.0  # additive Gaussian noise, in units of the (normalised) signal
    wander_amplitude: float = 0.0  # baseline wander: a random sinusoid below 0.5 Hz of this amplitude
    scale_range: float = 0.0  # amplitude scaling by a factor in [1 - r, 1 + r]


RANDOM_ENCODER = "random"  # init.path of a randomly initialised encoder


@dataclass(frozen=True)
class InitConfig:
    """Start from a pretrained encoder (`ecglab pretrain`'s RUN/encoder): every weight but the head's.

    linear: the encoder frozen (BatchNorm statistics too), only the head trains (linear evaluation);
    finetune: the whole model trains, the encoder at lr x encoder_lr_scale. `path: random` with
    `mode: linear` freezes a randomly initialised encoder: the baseline linear evaluation must beat.
    """

    path: str | None = None  # None: a randomly initialised model; `random`: see above
    mode: str = "finetune"  # finetune or linear
    encoder_lr_scale: float = 1.0

    def __post_init__(self):
        if self.mode not in ("finetune", "linear"):
            raise ValueError(f"init: mode: {self.mode!r} is not one of finetune, linear")
        if self.mode == "linear" and self.path is None:
            raise ValueError(
                "init: mode: linear freezes an encoder; give its path, or path: random for a randomly "
                "initialised frozen encoder"
            )
        if self.path == RANDOM_ENCODER and self.mode != "linear":
            raise ValueError(
                "init: path: random with mode: finetune is training from scratch; leave init out"
            )
        if self.encoder_lr_scale <= 0 or (self.mode == "linear" and self.encoder_lr_scale != 1.0):
            raise ValueError(
                f"init: encoder_lr_scale: {self.encoder_lr_scale} must be positive, and 1 in linear mode "
                "(the frozen encoder does not learn)"
            )


DISTILL_METHODS = ("mvms", "mvkt")


@dataclass(frozen=True)
class DistillConfig:
    """Distil a frozen teacher (a run folder or checkpoint of `ecglab train`) into the recipe's model.

    mvms (Yang et al. 2023): task loss + kd_weight x T^2 KL of the softmax over classes at
    temperature T (2); mvkt (Qin et al. 2023): task loss + kd_weight x the per-class sigmoid KL at T
    (1) + contrast_weight (0.8) x InfoNCE between the two models' projected features (temperature
    contrast_temperature, 0.07). null weights and temperatures take the method's paper values.
    """

    teacher: str | None = None  # None: no distillation
    method: str = "mvkt"  # mvms or mvkt
    temperature: float | None = None  # of the softened outputs; None: the method's (mvms 2, mvkt 1)
    kd_weight: float | None = None  # None: 1 (mvms: alpha 0.5 as BCE + KD; mvkt: alpha 1)
    contrast_weight: float | None = None  # mvkt only; None: 0.8
    contrast_temperature: float = 0.07  # mvkt only
    embed_dim: int = 128  # mvkt's projection heads

    def __post_init__(self):
        if self.method not in DISTILL_METHODS:
            raise ValueError(f"distill: method: {self.method!r} is not one of {', '.join(DISTILL_METHODS)}")
        if self.method != "mvkt" and self.contrast_weight is not None:
            raise ValueError(
                f"distill: contrast_weight: {self.method} has no contrastive loss; remove the key"
            )
        for key in ("temperature", "kd_weight", "contrast_weight", "contrast_temperature", "embed_dim"):
            value = getattr(self, key)
            if value is not None and (value < 0 or (value == 0 and "weight" not in key)):
                raise ValueError(f"distill: {key}: {value} must be positive (weights may be 0)")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; the resolved config is saved in the run folder."""

    model: str = "resnet1d18"
    model_kwargs: dict = field(default_factory=dict)
    dataset: str = "ptbxl"
    task: str | None = None  # None: the dataset's main task
    root: str | None = None  # None: $ECGLAB_DATA/<dataset>
    cache: str | None = None  # None: $ECGLAB_CACHE/<dataset>/<settings>
    fs: float = 100.0
    seconds: float = 10.0  # the prepared window; records shorter are zero-padded to it
    crop_seconds: float | None = None  # train on random crops of this length (PTB-XL benchmark: 2.5)
    eval_stride_seconds: float | None = None  # sliding-window stride at evaluation (None: the window)
    aggregate: str = "mean"  # how window predictions combine into a record's: mean or max
    norm: str = "zscore"
    filter: str = "none"
    val_fold: int = 9
    test_fold: int = 10
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    scheduler: str = "cosine"  # cosine annealing, or step decay (the notes: step 20, gamma 0.1)
    step_size: int = 20
    gamma: float = 0.1
    patience: int = 10  # early stopping after this many epochs without improvement; 0: never
    monitor: str = "val_macro_auc"  # or val_loss, val_macro_f1
    max_minutes: float | None = None  # stop after this much training time (time-to-accuracy runs)
    bootstrap: int = 1000  # resamples for the test metrics' 95% intervals
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    init: InitConfig = field(default_factory=InitConfig)  # a pretrained encoder to start from
    distill: DistillConfig = field(default_factory=DistillConfig)  # a frozen teacher to learn from
    leads: list | None = None  # the leads the model sees, by name (["I"]); None: all the dataset's
    label_fraction: float = 1.0  # train on this share of the training records (ecglab.train.label_fraction)
    seed: int = 0
    threads: int = 0  # torch threads; 0: torch's default
    out: str = "runs"
    name: str | None = None  # run folder name; None: <label or model>-<dataset>-<task>-s<seed>
    label: str | None = None  # a bench row's name for this recipe when one model runs with several
    dry_run: bool = False  # a few steps of everything, end to end
    # where and how a run executes; README: Training on GPUs and clusters
    device: str = "auto"  # auto (a CUDA GPU if any, else the CPU), cpu, cuda, cuda:N, mps
    precision: str = "fp32"  # fp32, bf16 (autocast, also on the CPU), fp16 (+ grad scaler; GPUs)
    workers: int = 0  # data-loading processes per training process; 0: in the training process
    prefetch_factor: int = 2  # batches each worker loads ahead (workers > 0)
    persistent_workers: bool = True  # keep workers between epochs (workers > 0)
    grad_accum_steps: int = 1  # micro-batches per optimizer step; batch_size stays the global batch
    clip_grad_norm: float | None = None  # clip the gradients' global L2 norm to this; None: no clipping
    sync_bn: bool = False  # SyncBatchNorm across processes (CUDA only; one process: plain batch norm)
    compile: bool = False  # torch.compile the training model (not measured as a default here)

    def __post_init__(self):
        choices = {"scheduler": ("cosine", "step"), "aggregate": ("mean", "max"), "precision": PRECISIONS,
                   "monitor": ("val_macro_auc", "val_loss", "val_macro_f1"), "norm": ("zscore", "none")}  # fmt: skip
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key}: {getattr(self, key)!r} is not one of {', '.join(allowed)}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch_size must be at least 1 and lr positive")
        check_device_spec(self.device)
        if self.workers < 0 or self.prefetch_factor < 1 or self.grad_accum_steps < 1:
            raise ValueError("workers must be at least 0, prefetch_factor and grad_accum_steps at least 1")
        if self.clip_grad_norm is not None and self.clip_grad_norm <= 0:
            raise ValueError(
                f"clip_grad_norm: {self.clip_grad_norm} must be positive, or null for no clipping"
            )
        if not 0 < self.label_fraction <= 1:
            raise ValueError(f"label_fraction: {self.label_fraction} must lie in (0, 1]")
        self._check_leads()

    def _check_leads(self) -> None:
        if self.leads is not None:
            if (
                not isinstance(self.leads, list)
                or not self.leads
                or not all(isinstance(n, str) for n in self.leads)
            ):
                raise ValueError(f"leads: {self.leads!r}; expected a list of lead names such as [I], or null")
            if len(set(self.leads)) != len(self.leads):
                raise ValueError(f"leads: {self.leads!r} names a lead twice")
        if self.distill.teacher is not None and (self.leads is None or len(self.leads) != 1):
            raise ValueError(
                f"leads: {self.leads!r}; a distilled student sees one lead: set leads: [I] (or another lead by name)"
            )

    @property
    def run_name(self) -> str:
        """<label or model>-<dataset>-<task>[-frac<label_fraction>]-s<seed>, unless `name` is set."""
        fraction = f"-frac{self.label_fraction:g}" if self.label_fraction < 1 else ""
        return (
            self.name
            or f"{self.label or self.model}-{self.dataset}-{self.task or 'default'}{fraction}-s{self.seed}"
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_changes(old: TrainConfig, new: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """{key: (old, new)} for every top-level key whose value differs (augment compares as a whole)."""
    a, b = old.to_dict(), new.to_dict()
    return {key: (a[key], b[key]) for key in a if a[key] != b[key]}


def _check_keys(data: dict, cls: type, where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{where}: unknown key {key!r}{hint}")


def _coerce(data: dict, cls: type, where: str) -> dict:
    """Numbers as their fields' types (YAML reads `3e-4` as a string); a wrong type names its key."""
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    out = {}
    for key, value in data.items():
        kind = types[key].replace(" | None", "")
        if value is None and "None" in types[key]:
            out[key] = value
            continue
        try:
            if kind == "float" and not isinstance(value, bool):
                value = float(value)
            elif kind == "int" and not isinstance(value, bool):
                if float(value) != int(float(value)):
                    raise ValueError
                value = int(float(value))
            elif kind == "bool" and not isinstance(value, bool):
                raise ValueError
            elif kind == "str" and not isinstance(value, str):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {key}: expected {types[key]}, got {value!r}") from None
        out[key] = value
    return out


SECTIONS = {
    "augment": AugmentConfig,
    "init": InitConfig,
    "distill": DistillConfig,
}  # TrainConfig's nested keys


def from_dict(data: dict, where: str = "config") -> TrainConfig:
    """Build a TrainConfig, naming `where` and the key for anything unknown or mistyped."""
    data = dict(data or {})
    _check_keys(data, TrainConfig, where)
    sections = {key: _section(data.pop(key, None), cls, where, key) for key, cls in SECTIONS.items()}
    data = _coerce(data, TrainConfig, where)
    try:
        return TrainConfig(**data, **sections)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _section(data, cls: type, where: str, key: str):
    """A nested section (augment, init, distill) from its mapping; absent or null: its defaults."""
    data = dataclasses.asdict(data) if isinstance(data, cls) else (data or {})
    if not isinstance(data, dict):
        raise ValueError(f"{where}: {key}: expected a mapping of keys to values, got {data!r}")
    _check_keys(data, cls, f"{where}: {key}")
    data = _coerce(data, cls, f"{where}: {key}")
    try:
        return cls(**data)
    except ValueError as exc:  # the section's own check, which names the key
        raise ValueError(f"{where}: {exc}") from None


def set_value(data: dict, assignment: str) -> dict:
    """Apply one `key=value` (dotted keys reach nested sections; the value is parsed as YAML)."""
    if "=" not in assignment:
        raise ValueError(f"--set {assignment!r}: expected key=value")
    key, _, raw = assignment.partition("=")
    value = yaml.safe_load(raw) if raw else None
    node = data
    *parents, leaf = key.strip().split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return data


def read_recipe(path: str | Path | None, overrides: list[str] = ()) -> tuple[dict, str]:
    """A YAML recipe's mapping (None: empty) with `--set key=value` overrides applied, and its name."""
    data: dict = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of keys to values")
        where = str(path)
    for assignment in overrides:
        data = set_value(data, assignment)
    return data, where


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """Read a YAML recipe (None: all defaults) and apply `--set key=value` overrides."""
    return from_dict(*read_recipe(path, overrides))
