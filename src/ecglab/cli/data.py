"""`ecglab data ...`: inspect, prepare and download datasets."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect, prepare and download the public ECG datasets.")

SPLIT_NAMES = ("train", "val", "test")


def _reader(name: str, root: Path | None, fs: float | None = None):
    """The reader, or a clean exit naming what is wrong."""
    from ecglab.data import get_reader

    try:
        return get_reader(name, root, fs)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def info(
    name: str = typer.Argument(..., help="dataset: ptbxl, cpsc2018, chapman, cinc2017 or cinc2020"),
    root: Path = typer.Option(None, "--root", help="the dataset folder (default: $ECGLAB_DATA/NAME)"),
    task: str = typer.Option(None, "--task", help="label task (default: the dataset's main task)"),
    val_fold: int = typer.Option(9, "--val-fold"),
    test_fold: int = typer.Option(10, "--test-fold"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a table"),
) -> None:
    """Records, folds and per-class counts per split (train = the folds not used for val/test)."""
    from ecglab.data.info import summarize

    reader = _reader(name, root)
    try:
        summary = summarize(reader, task, val_fold, test_fold)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(summary))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['dataset']} · task {summary['task']} · {summary['root']}")
    table.add_column("class")
    for split in SPLIT_NAMES:
        table.add_column(split, justify="right")
    for i, cls in enumerate(summary["classes"]):
        table.add_row(cls, *(str(summary["splits"][s]["counts"][i]) for s in SPLIT_NAMES))
    table.add_section()
    table.add_row("records", *(str(summary["splits"][s]["records"]) for s in SPLIT_NAMES))
    table.add_row("with signal", *(str(summary["splits"][s]["with_signal"]) for s in SPLIT_NAMES))
    table.add_row("folds", *(",".join(map(str, summary["splits"][s]["folds"])) for s in SPLIT_NAMES))
    console = Console()
    console.print(table)
    if summary["skipped"]:
        console.print(
            f"{summary['skipped']} row(s) of the label table could not be used (see `ecglab data prepare`)."
        )


@app.command()
def prepare(
    name: str = typer.Argument(..., help="dataset: ptbxl, cpsc2018, chapman, cinc2017 or cinc2020"),
    root: Path = typer.Option(None, "--root", help="the dataset folder (default: $ECGLAB_DATA/NAME)"),
    fs: float = typer.Option(100.0, "--fs", help="sampling rate of the cache, Hz"),
    seconds: float = typer.Option(
        10.0, "--seconds", help="window length; shorter records are zero-padded to it"
    ),
    filter: str = typer.Option(
        "none", "--filter", help="none, bandpass (0.5-40 Hz) or baseline (median filters)"
    ),
    out: Path = typer.Option(None, "--out", help="cache folder (default: $ECGLAB_CACHE/NAME/<settings>)"),
    workers: int = typer.Option(0, "--workers", help="decoding processes (0: one per core)"),
) -> None:
    """Decode a dataset once into a memory-mapped cache; re-running with nothing changed does nothing."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from ecglab.data.cache import PrepareSettings, default_cache_dir
    from ecglab.data.cache import prepare as build

    try:
        settings = PrepareSettings(fs=fs, seconds=seconds, filter=filter)
    except ValueError as exc:
        fail(str(exc))
    reader = _reader(name, root, fs)
    out = out or default_cache_dir(name, settings)
    console = Console(stderr=True)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as progress:  # fmt: skip
        bar = progress.add_task(f"decoding {name}", total=None)
        manifest, built = build(reader, out, settings, workers,
                                on_progress=lambda done, total: progress.update(bar, completed=done, total=total))  # fmt: skip
    for item in manifest["skipped"]:
        typer.echo(f"skipped {item['record_id']}: {item['path']}: {item['reason']}", err=True)
    if manifest["missing_signal"]:
        console.print(f"{len(manifest['missing_signal'])} record(s) of the label table have no signal file here "
                      "(listed in manifest.json)")  # fmt: skip
    counts = ", ".join(f"{s} {v['records']}" for s, v in manifest["splits"].items())
    state = f"built in {manifest['seconds_to_build']} s" if built else "up to date, nothing to do"
    typer.echo(f"{out}: {state} ({counts} records; {len(manifest['skipped'])} skipped)")


@app.command()
def download(
    name: str = typer.Argument(..., help="dataset: ptbxl, cpsc2018, cinc2017 or chapman"),
    dest: Path = typer.Option(..., "--dest", help="folder to download into (resumes what is there)"),
    base_url: str = typer.Option(
        None, "--base-url", envvar="ECGLAB_MIRROR", help="a mirror of the publisher's site"
    ),
) -> None:
    """Fetch a public release with a progress bar, resuming and verifying checksums."""
    from ecglab.data.download import DownloadError
    from ecglab.data.download import download as fetch

    try:
        written = fetch(name, dest, base_url=base_url)
    except (DownloadError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"{dest}: {len(written)} file(s) written" if written else f"{dest}: up to date, nothing to do")
