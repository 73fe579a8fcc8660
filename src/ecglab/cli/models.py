"""`ecglab models`: list the registered models with their size and cost."""

import typer

NUM_CLASSES = 9  # CPSC 2018's classes, as in the notes' figures
INPUT = (12, 1000)


def _row(name: str, profile: bool) -> dict:
    from ecglab.models import create_model
    from ecglab.models.profile import count_macs, measure_latency, measure_training

    model = create_model(name, NUM_CLASSES, in_chans=INPUT[0])
    row = {"name": name, **count_macs(model, (1, *INPUT))}
    row = {k: row[k] for k in ("name", "params", "macs", "macs_layers")}
    if profile:
        row["latency_ms_b1"] = round(measure_latency(model, (1, *INPUT)), 2)
        row["train_samples_per_s_b64"] = round(measure_training(model, 64, INPUT), 1)
    return row


def _print_table(rows: list[dict], profile: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ecglab models: {INPUT[0]} leads x {INPUT[1]} samples, {NUM_CLASSES} classes")
    table.add_column("model")
    for col in ("params (M)", "MACs (M)", "layer MACs (M)"):
        table.add_column(col, justify="right")
    if profile:
        table.add_column("latency b1 (ms)", justify="right")
        table.add_column("train b64 (samples/s)", justify="right")
    for r in rows:
        cells = [
            r["name"],
            f"{r['params'] / 1e6:.2f}",
            f"{r['macs'] / 1e6:.1f}",
            f"{r['macs_layers'] / 1e6:.1f}",
        ]
        if profile:
            cells += [f"{r['latency_ms_b1']:.1f}", f"{r['train_samples_per_s_b64']:.1f}"]
        table.add_row(*cells)
    Console().print(table)


def models(
    pattern: str = typer.Argument("*", help="shell-style name pattern"),
    profile: bool = typer.Option(
        False, "--profile", help="also time CPU latency (batch 1) and training (batch 64)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print a JSON list instead of a table"),
) -> None:
    """List registered models with parameters and multiply-accumulates (MACs) for a 12 x 1000 input.

    MACs counts every product (attention included); layer MACs counts only convolution and linear
    layers, as thop does.
    """
    import json

    from ecglab.models import list_models

    names = list_models(pattern)
    if not names:
        raise typer.BadParameter(f"no model matches {pattern!r}; run `ecglab models` for the list")
    rows = [_row(name, profile) for name in names]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_table(rows, profile)
