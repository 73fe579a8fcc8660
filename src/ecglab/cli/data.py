"""`ecglab data ...`: inspect, prepare and download datasets."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect, prepare and download the public ECG datasets.")


@app.command()
def download(
    name: str = typer.Argument(..., help="dataset: ptbxl, cpsc2018, cinc2017 or chapman"),
    dest: Path = typer.Option(..., "--dest", help="folder to download into (resumes what is there)"),
    base_url: str = typer.Option(None, "--base-url", envvar="ECGLAB_MIRROR", help="a mirror of the publisher's site"),
) -> None:
    """Fetch a public release with a progress bar, resuming and verifying checksums."""
    from ecglab.data.download import download as fetch

    fetch(name, dest, base_url=base_url)
