"""A bench spec's pretraining stage: encoders pretrained before the train cells that start from them.

    pretrain:
      cpc: {recipe: ../configs/pretrain_cpc.yaml, set: {epochs: 20}, full: {epochs: 100}, dry_run: {batch_size: 16}}
    models:
      - {model: resnet1d_wang, label: cpc-linear, init: {path: cpc, mode: linear}}

Each entry names a pretraining recipe (relative to the spec) with overrides: `set` always, `full`
under `--full`, `dry_run` under `--dry-run` (which also sets the recipe's `dry_run`). The run goes
to <bench dir>/pretrain/<name>, and a train cell whose `init.path` is that name starts from its
encoder folder. A cell that validates or tests on a fold the pretraining's `evaluated` does not
keep out of its pool is refused before anything runs, naming the fold. Each pretraining runs
under a lock beside its folder, so shards share the work: a shard that needs an encoder another
shard is pretraining waits for it; one that finds it missing pretrains it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from ecglab.pretrain.config import PretrainConfig
from ecglab.pretrain.config import from_dict as pretrain_from_dict
from ecglab.pretrain.run import ENCODER_DIR, PRETRAINING_FILE
from ecglab.train.config import EXECUTION_KEYS, RANDOM_ENCODER, TrainConfig, config_changes, read_recipe

ENTRY_KEYS = {"recipe", "set", "full", "dry_run"}


@dataclass(frozen=True)
class PretrainJob:
    """One named pretraining of a spec, resolved for this bench (its folder, full or dry run)."""

    name: str
    config: PretrainConfig

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out) / self.config.run_name

    @property
    def encoder(self) -> Path:
        return self.run_dir / ENCODER_DIR

    def done(self) -> bool:
        """True when the encoder is saved; an encoder of another recipe in the folder is an error."""
        if not (self.encoder / PRETRAINING_FILE).is_file():
            return False
        saved = self.run_dir / "config.yaml"
        old = pretrain_from_dict(yaml.safe_load(saved.read_text()), str(saved))
        changed = {k: v for k, v in config_changes(old, self.config).items() if k not in EXECUTION_KEYS}
        if changed:
            named = "; ".join(f"{key}: {a!r} -> {b!r}" for key, (a, b) in changed.items())
            raise ValueError(
                f"{self.run_dir} holds pretraining {self.name} of another recipe ({named}); remove the folder"
            )
        return True


def pretrain_jobs(
    spec: dict, spec_path: Path, out: Path, full: bool, dry_run: bool
) -> dict[str, PretrainJob]:
    """The spec's `pretrain` entries as jobs whose runs go to <out>/pretrain/<name>."""
    jobs = {}
    for name, entry in (spec.get("pretrain") or {}).items():
        where = f"{spec_path}: pretrain: {name}"
        if not isinstance(entry, dict) or not entry.get("recipe") or set(entry) - ENTRY_KEYS:
            raise ValueError(
                f"{where}: expected a mapping with `recipe` and optionally {', '.join(sorted(ENTRY_KEYS - {'recipe'}))}"
            )
        overrides = dict(entry.get("set") or {})
        overrides |= (entry.get("full") or {}) if full else {}
        overrides |= ((entry.get("dry_run") or {}) | {"dry_run": True}) if dry_run else {}
        overrides |= {"out": str(out / "pretrain"), "name": name}
        recipe_path = spec_path.parent / entry["recipe"]
        if not recipe_path.is_file():
            raise FileNotFoundError(f"{where}: {recipe_path}: no such pretraining recipe")
        recipe, _ = read_recipe(recipe_path)
        jobs[name] = PretrainJob(name, pretrain_from_dict(recipe | overrides, f"{where} ({recipe_path})"))
    return jobs


def resolve_init(config: TrainConfig, jobs: dict[str, PretrainJob], where: Path) -> TrainConfig:
    """The cell with `init.path` naming a pretraining replaced by that run's encoder folder,
    refused when the pretraining's pool could hold the cell's validation or test fold."""
    path = config.init.path
    if path is None or path == RANDOM_ENCODER:
        return config
    if path not in jobs:
        if jobs and not Path(path).is_dir():
            raise ValueError(
                f"{where}: {config.run_name}: init.path {path!r} names neither a pretraining of this spec "
                f"({', '.join(jobs)}) nor a folder"
            )
        return config
    check_folds(config, jobs[path], where)
    return replace(config, init=replace(config.init, path=str(jobs[path].encoder)))


def check_folds(config: TrainConfig, job: PretrainJob, where: Path) -> None:
    """Refuse a cell whose validation or test fold the pretraining does not keep out of its pool."""
    if config.dataset not in job.config.datasets:
        return
    kept_out = job.config.evaluated.get(config.dataset, [])
    for role, fold in (("validation", config.val_fold), ("test", config.test_fold)):
        if fold not in kept_out:
            raise ValueError(
                f"{where}: {config.run_name} uses fold {fold} of {config.dataset} as its {role} fold, and "
                f"pretraining {job.name} pools {config.dataset} keeping out only folds {kept_out}; add "
                f"{config.dataset}: [{config.val_fold}, {config.test_fold}] to its `evaluated`"
            )


def job_of(config: TrainConfig, jobs: dict[str, PretrainJob]) -> PretrainJob | None:
    """The pretraining whose encoder a (resolved) cell starts from, if any."""
    return next((job for job in jobs.values() if config.init.path == str(job.encoder)), None)


def ensure_pretrained(job: PretrainJob, device: str | None, progress=None, echo=print) -> bool:
    """Pretrain `job` unless its encoder is saved, under a lock shared by the shards; True if it ran."""
    from ecglab.atomic import file_lock
    from ecglab.pretrain.run import pretrain

    with file_lock(job.run_dir, lambda: echo(f"pretrain {job.name}: waiting for another bench's run")):
        if job.done():
            return False
        echo(f"pretrain {job.name}: pretraining")
        pretrain(replace(job.config, device=device or job.config.device), progress)
        return True
