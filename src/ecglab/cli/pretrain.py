"""`ecglab pretrain`: self-supervised pretraining of an encoder from a recipe."""

from __future__ import annotations

from pathlib import Path

import typer

from ecglab.cli.data import fail
from ecglab.cli.train import DEVICE_HELP, _progress_bars


def pretrain(
    recipe: Path = typer.Argument(..., help="YAML pretraining recipe (see configs/pretrain_*.yaml)"),
    overrides: list[str] = typer.Option(
        [], "--set", help="override a key: --set epochs=10 --set evaluated={ptbxl: [9, 10]}"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="one epoch of a few steps, end to end"),
    device: str = typer.Option(None, "--device", help=DEVICE_HELP),
) -> None:
    """Pretrain an encoder by CPC, CLOCS or ST-MEM on the unlabelled pool; re-running resumes.

    The encoder lands in RUN/encoder/, for `ecglab train` with `init: {path: RUN/encoder}`.
    """
    from ecglab.pretrain.config import load_pretrain_config
    from ecglab.pretrain.run import ENCODER_DIR, pretrain

    extra = (["dry_run=true"] if dry_run else []) + ([f"device={device}"] if device else [])
    try:
        cfg = load_pretrain_config(recipe, list(overrides) + extra)
        with _progress_bars() as bars:
            run_dir = pretrain(cfg, progress=bars)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"{run_dir}: done; the pretrained encoder is in {run_dir / ENCODER_DIR}")
