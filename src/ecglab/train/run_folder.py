"""A training run's folder: the resolved config, the log, the history, the resume state's path."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import yaml

from ecglab.atomic import atomic_path
from ecglab.train.config import EXECUTION_KEYS, TrainConfig, config_changes, from_dict
from ecglab.train.distributed import World

HISTORY_FIELDS = ["epoch", "train_loss", "val_loss", "val_macro_auc", "val_macro_f1", "lr", "seconds"]


class Run:
    """The run folder: resolved config, log, history, checkpoints, predictions, metrics."""

    def __init__(self, config: TrainConfig, world: World, read=from_dict, fields=HISTORY_FIELDS):
        """`read` rebuilds the saved config.yaml as `config`'s kind (a PretrainConfig's reader for
        pretraining); `fields` are history.csv's columns."""
        self.dir = Path(config.out) / config.run_name
        self.config, self.world, self.read, self.fields = config, world, read, fields
        self.state_path = self.dir / "state.safetensors"

    def start(self) -> bool:
        """Create or reopen the folder; True when a resume state exists.

        A different recipe is an error; changed EXECUTION_KEYS (device, workers, ...) are logged,
        and the config.yaml written first is kept.
        """
        saved = self.dir / "config.yaml"
        changes = {}
        if saved.is_file():
            changes = config_changes(self.read(yaml.safe_load(saved.read_text()), str(saved)), self.config)
            recipe = {key: change for key, change in changes.items() if key not in EXECUTION_KEYS}
            if recipe:
                named = "; ".join(f"{key}: {a!r} -> {b!r}" for key, (a, b) in recipe.items())
                raise ValueError(
                    f"{self.dir} holds a run with a different config ({named}); "
                    "set another `name` or remove the folder"
                )
        elif self.world.main:
            self.dir.mkdir(parents=True, exist_ok=True)
            saved.write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        self.world.barrier()
        for key, (a, b) in changes.items():
            self.log(f"reopened with {key} {b!r} (config.yaml: {a!r})")
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
            with atomic_path(self.dir / "history.csv") as tmp, open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.fields)
                writer.writeheader()
                writer.writerows(rows)
