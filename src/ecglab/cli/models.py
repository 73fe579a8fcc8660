"""`ecglab models`: list the registered models with their size and cost."""

import typer


def models(pattern: str = typer.Argument("*", help="shell-style name pattern")) -> None:
    """List registered models."""
    from ecglab.models import list_models

    for name in list_models(pattern):
        typer.echo(name)
