"""`ecglab train`, `ecglab distill`, `ecglab evaluate` and `ecglab bench`."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer

from ecglab.cli.data import fail

DEVICE_HELP = (
    "auto (a CUDA GPU if any, else the CPU), cpu, cuda, cuda:N or mps; overrides the recipe's `device`"
)


@contextmanager
def _progress_bars():
    """A factory of per-epoch progress bars: (description, total) -> advance()."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:

        def bar(description: str, total: int):
            task = progress.add_task(description, total=total)
            return lambda: progress.advance(task)

        yield bar


def train(
    config: Path = typer.Argument(..., help="YAML recipe (see configs/)"),
    overrides: list[str] = typer.Option(
        [], "--set", help="override a key: --set lr=3e-4 --set augment.noise_std=0.05"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="a few steps of training, validation and evaluation, end to end"
    ),
    device: str = typer.Option(None, "--device", help=DEVICE_HELP),
) -> None:
    """Train a model from a recipe; re-running the same command resumes an interrupted run.

    Under torchrun (`torchrun --nproc_per_node G -m ecglab train RECIPE`) each process trains on
    its own GPU; validation and evaluation run on rank 0.
    """
    run_dir = _fit_recipe(config, overrides, dry_run, device)
    typer.echo(f"{run_dir}: done (metrics.json, report/, checkpoint/)")


def distill(
    recipe: Path = typer.Argument(
        ..., help="YAML recipe: train's keys with `leads: [I]` and a `distill:` section"
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="override a key: --set distill.method=mvms --set leads=[II]"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="a few steps of distillation, validation and evaluation, end to end"
    ),
    device: str = typer.Option(None, "--device", help=DEVICE_HELP),
) -> None:
    """Distil a trained 12-lead teacher into a single-lead student (MVMS-ECG or MVKT-ECG); re-running resumes.

    The recipe is `train`'s with `leads: [I]` (any one lead by name) and `distill: {teacher: RUN,
    method: mvms|mvkt}`; the run folder is `train`'s, its checkpoint/ a single-lead model for
    `evaluate`, `predict` and `train`'s `init:`.
    """
    run_dir = _fit_recipe(recipe, overrides, dry_run, device, need_teacher=True)
    typer.echo(f"{run_dir}: done; the single-lead student is in {run_dir / 'checkpoint'}")


def _fit_recipe(
    recipe: Path, overrides: list[str], dry_run: bool, device: str | None, need_teacher=False
) -> Path:
    """Read a training recipe with the command line's overrides and run `fit`; errors exit with code 2."""
    from ecglab.train.config import load_config
    from ecglab.train.loop import fit

    extra = (["dry_run=true"] if dry_run else []) + ([f"device={device}"] if device else [])
    try:
        cfg = load_config(recipe, list(overrides) + extra)
        if need_teacher and cfg.distill.teacher is None:
            raise ValueError(
                f"{recipe}: no distill.teacher; name the 12-lead teacher's run folder (distill: {{teacher: RUN}})"
            )
        with _progress_bars() as bars:
            return fit(cfg, progress=bars)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def evaluate(
    run: Path = typer.Argument(..., help="a run folder written by `ecglab train`"),
    threshold: str = typer.Option(
        "per_class", "--threshold", help="per_class (F1-optimal on validation) or global"
    ),
    n_bootstrap: int = typer.Option(1000, "--bootstrap", help="bootstrap resamples for the 95% intervals"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Tune thresholds on the validation fold, then score the test fold once, with 95% CIs and a report."""
    import json

    from ecglab.evaluate.evaluate import evaluate_run

    try:
        metrics = evaluate_run(run, threshold=threshold, n_bootstrap=n_bootstrap, seed=seed)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    test = metrics["test"]
    summary = {k: test[k] for k in ("macro_f1", "macro_auc") if k in test}
    typer.echo(json.dumps(summary))
    typer.echo(f"{run}: metrics.json and report/report.html written")


def bench(
    spec: Path = typer.Argument(..., help="YAML grid: models x datasets/tasks x seeds"),
    shard: str = typer.Option(
        "1/1", help="run only cells i, i+n, ... of the grid (i/n), e.g. one bench per core"
    ),
    model: list[str] = typer.Option([], help="run only this model's cells (repeatable)"),
    task: list[str] = typer.Option([], help="run only this task's cells (repeatable)"),
    seed: list[int] = typer.Option([], help="run only this seed's cells (repeatable)"),
    fraction: list[float] = typer.Option(
        [], help="run only the cells of this label fraction, e.g. 0.01 (repeatable)"
    ),
    full: bool = typer.Option(
        False, "--full", help="apply the spec's `full` overrides: the study at full scale"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="a few steps of every cell, into a results table beside the run folders"
    ),
    device: str = typer.Option(None, "--device", help=DEVICE_HELP),
    rerun_stale: bool = typer.Option(
        False, "--rerun-stale", help="also run again the finished cells measured with other package code"
    ),
    tables_only: bool = typer.Option(
        False, "--tables-only", help="train nothing: write the spec's tables from the cells finished so far"
    ),
) -> None:
    """Train and evaluate every cell of a grid not yet in its results table; write CSV and markdown."""
    import shlex
    import sys

    from ecglab.train.bench import parse_shard, run_bench

    command = "ecglab " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        with _progress_bars() as bars:
            results = run_bench(
                spec,
                command,
                progress=bars,
                echo=typer.echo,
                shard=parse_shard(shard),
                models=tuple(model),
                tasks=tuple(task),
                seeds=tuple(seed),
                fractions=tuple(fraction),
                full=full,
                dry_run=dry_run,
                device=device,
                rerun_stale=rerun_stale,
                tables_only=tables_only,
            )
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"{results} and {results.with_suffix('.md')} written")
