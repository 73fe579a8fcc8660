"""A pretraining recipe (`ecglab pretrain RECIPE`): a small YAML file read into a frozen dataclass.

The keys that say where and how a run executes (device, precision, workers, accumulation,
clipping) are TrainConfig's, with the same meaning; the key checking and coercion are its too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecglab.data import DATASETS
from ecglab.devices import check_device_spec
from ecglab.train.config import PRECISIONS, _check_keys, _coerce, read_recipe

METHODS = ("cpc", "clocs", "st_mem")
CLOCS_VARIANTS = ("cmsc", "cmlc", "cmsmlc")


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a pretraining run depends on; the resolved recipe is saved in the run folder."""

    method: str = "cpc"  # cpc, clocs or st_mem
    encoder: str = "resnet1d_wang"  # a zoo model, built with num_classes=0; st_mem takes st_mem_vit
    encoder_kwargs: dict = field(default_factory=dict)
    # the unlabelled pool: the training split of each dataset's cache, leads mapped by name
    datasets: list = field(default_factory=lambda: ["ptbxl", "cinc2017"])
    # datasets that will be evaluated on, with their validation and test folds: never in the pool
    evaluated: dict = field(default_factory=lambda: {"ptbxl": [9, 10]})
    root: str | None = None  # the data root; None: $ECGLAB_DATA
    fs: float = 100.0
    seconds: float = 10.0  # the caches' window; shorter records are zero-padded to it
    crop_seconds: float | None = None  # CPC and ST-MEM windows (None: `seconds`)
    val_fold: int = 9  # the folds each cache keeps out of its training split
    test_fold: int = 10
    # CPC
    steps: int = 12  # feature steps predicted ahead
    context_dim: int = 256  # GRU width
    # CLOCS
    variant: str = "cmsc"  # cmsc (segments), cmlc (leads) or cmsmlc (both)
    temperature: float = 0.1
    segment_seconds: float = 5.0
    segments: int = 2
    embed_dim: int = 128
    # ST-MEM
    mask_ratio: float = 0.75
    # optimisation
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0
    threads: int = 0  # torch threads; 0: torch's default
    out: str = "runs/pretrain"
    name: str | None = None  # run folder name; None: <method>-<encoder>-s<seed>
    dry_run: bool = False  # one epoch of a few steps, end to end
    device: str = "auto"
    precision: str = "fp32"
    workers: int = 0
    prefetch_factor: int = 2
    persistent_workers: bool = True
    grad_accum_steps: int = 1
    clip_grad_norm: float | None = None

    def __post_init__(self):
        for key, allowed in {"method": METHODS, "variant": CLOCS_VARIANTS, "precision": PRECISIONS}.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key}: {getattr(self, key)!r} is not one of {', '.join(allowed)}")
        if self.method == "st_mem" and self.encoder != "st_mem_vit":
            raise ValueError(
                f"encoder: {self.encoder!r}; ST-MEM brings its own encoder, set encoder: st_mem_vit"
            )
        self._check_pool()
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.temperature <= 0:
            raise ValueError("epochs and batch_size must be at least 1, lr and temperature positive")
        if not 0 < self.mask_ratio < 1:
            raise ValueError(f"mask_ratio: {self.mask_ratio} must lie between 0 and 1")
        check_device_spec(self.device)
        if self.workers < 0 or self.prefetch_factor < 1 or self.grad_accum_steps < 1:
            raise ValueError("workers must be at least 0, prefetch_factor and grad_accum_steps at least 1")
        if self.clip_grad_norm is not None and self.clip_grad_norm <= 0:
            raise ValueError(f"clip_grad_norm: {self.clip_grad_norm} must be positive, or null")

    def _check_pool(self) -> None:
        names = list(self.datasets) + list(self.evaluated)
        unknown = [name for name in names if name not in DATASETS]
        if not self.datasets or unknown:
            raise ValueError(
                f"datasets/evaluated: {unknown or 'an empty pool'}; name datasets among {', '.join(DATASETS)}"
            )
        for name, folds in self.evaluated.items():
            if not isinstance(folds, list) or not all(isinstance(f, int) for f in folds):
                raise ValueError(f"evaluated: {name}: expected a list of fold numbers, got {folds!r}")

    @property
    def run_name(self) -> str:
        return self.name or f"{self.method}-{self.encoder}-s{self.seed}"

    @property
    def window_samples(self) -> int:
        return round((self.crop_seconds or self.seconds) * self.fs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def from_dict(data: dict, where: str = "recipe") -> PretrainConfig:
    """Build a PretrainConfig, naming `where` and the key for anything unknown or mistyped."""
    data = dict(data or {})
    _check_keys(data, PretrainConfig, where)
    try:
        return PretrainConfig(**_coerce(data, PretrainConfig, where))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def load_pretrain_config(path: str | Path, overrides: list[str] = ()) -> PretrainConfig:
    """Read a YAML recipe and apply `--set key=value` overrides."""
    return from_dict(*read_recipe(path, overrides))
