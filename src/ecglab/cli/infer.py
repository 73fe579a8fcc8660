"""`ecglab predict` and `ecglab export`: score ECG files with a model, export a model to ONNX."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import typer

from ecglab.cli.data import fail

FORMATS = ("table", "json", "csv")


def predict(
    paths: list[Path] = typer.Argument(
        ..., help="ECG files: .hea/.dat/.mat (WFDB, CPSC 2018), .csv, .npy, .edf"
    ),
    model: str = typer.Option(None, "--model", "-m", help="checkpoint folder or shipped model name"),
    format: str = typer.Option("table", "--format", "-f", help="table, json or csv"),
    runtime: str = typer.Option("torch", "--runtime", help="torch, or onnx (the checkpoint's model.onnx)"),
    onnx: Path = typer.Option(None, "--onnx", help="ONNX file for --runtime onnx (default: CKPT/model.onnx)"),
    trust: bool = typer.Option(False, "--trust", help="allow pickled checkpoints (they can run code)"),
    fs: float = typer.Option(None, "--fs", help="sampling rate, Hz, for files that don't state it"),
    leads: str = typer.Option(
        None, "--leads", help="lead names, e.g. I,II,V1, for files that don't name them"
    ),
    units: str = typer.Option(None, "--units", help="mV or uV, for files that don't state them"),
    device: str = typer.Option("auto", "--device", help="auto (a CUDA GPU if any), cpu, cuda, cuda:N or mps"),
) -> None:
    """Class probabilities and decisions for each file; exit code 1 when any file could not be scored.

    Without --model a one-lead file gets the shipped single-lead model and any other the default
    (`ecglab.infer.default_model`); each result names its model.
    """
    from ecglab.infer import model_for_recording, resolve_model
    from ecglab.infer.files import UNITS, as_record_error, parse_leads, read_ecg
    from ecglab.infer.limits import Limits

    if format not in FORMATS:
        fail(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if units is not None and units.lower() not in UNITS:
        fail(f"unknown units {units!r}; use mV or uV")
    predictors = _Predictors(runtime=runtime, onnx_path=onnx, trust=trust, device=device)
    try:
        limits = Limits.from_env()
        if fs is not None:
            limits.check_rate("--fs", fs)
        first = predictors.load(*resolve_model(model))  # --model's, or the default: a missing one fails now
    except (FileNotFoundError, ValueError, ImportError) as exc:
        fail(str(exc))
    results = []
    for path in paths:
        try:
            rec = read_ecg(path, fs=fs, leads=parse_leads(leads), units=units, limits=limits)
        except Exception as exc:  # one bad file spares the others, whatever it raises
            results.append({"record": str(path), "error": str(as_record_error(path, exc))})
            continue
        folder, name, note = model_for_recording(model, len(rec.lead_names))
        if note:
            typer.echo(f"note: {path}: {note}", err=True)
        try:
            predictor = predictors.load(folder, name)
        except (FileNotFoundError, ValueError, ImportError) as exc:  # a broken shipped model stops the run
            fail(str(exc))
        try:
            result = predictor.predict(rec, str(path))
        except Exception as exc:
            results.append({"record": str(path), "error": str(as_record_error(path, exc))})
            continue
        for warning in result.warnings:
            typer.echo(f"warning: {path}: {warning}", err=True)
        results.append(result)
    _print(results, predictors.by_name, first, format)
    if any(isinstance(r, dict) for r in results):
        raise typer.Exit(1)


class _Predictors:
    """Predictors by model name, each loaded once: a run over mixed files may use two models."""

    def __init__(self, **options):
        self.options, self.by_name = options, {}

    def load(self, folder, name: str):
        from ecglab.infer.predictor import Predictor

        if name not in self.by_name:
            self.by_name[name] = Predictor.from_checkpoint(folder, name=name, **self.options)
        return self.by_name[name]


def export(
    checkpoint: str = typer.Argument(
        ..., help="checkpoint folder (model.safetensors + config.json) or shipped model name"
    ),
    onnx: Path = typer.Option(
        None,
        "--onnx",
        help="ONNX file to write (default: CHECKPOINT/model.onnx; a shipped model's: the user cache)",
    ),
    trust: bool = typer.Option(False, "--trust", help="allow pickled checkpoints (they can run code)"),
) -> None:
    """Export to ONNX (dynamic batch and length), checked against PyTorch in ONNX Runtime."""
    from ecglab.infer import is_shipped, resolve_model
    from ecglab.infer.onnx_cache import export_to_cache
    from ecglab.infer.onnx_export import ExportError, export_onnx

    try:
        folder, _ = resolve_model(checkpoint)
        if onnx is None and is_shipped(folder):  # never written into the installed package
            report = export_to_cache(folder)
        else:
            report = export_onnx(folder, onnx, trust=trust)
    except (ExportError, FileNotFoundError, ValueError, ImportError) as exc:
        fail(str(exc))
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"{report.path}: written by the {report.exporter} exporter; "
               f"max |ONNX Runtime - PyTorch| = {report.max_abs_diff:.1e}")  # fmt: skip


def _print(results: list, predictors: dict, first, format: str) -> None:
    """Print in `format`; `predictors` by model name (each result names its own), `first` for error rows."""
    if format == "json":
        typer.echo(json.dumps([r if isinstance(r, dict) else r.to_json() for r in results], indent=1))
    elif format == "csv":
        _print_csv(results, predictors, first)
    else:
        _print_tables(results, predictors)


def _print_csv(results: list, predictors: dict, first) -> None:
    """One row per file; the class columns of every model used (a class a model lacks is left empty)."""
    used = [predictors[r.model] for r in results if not isinstance(r, dict)] or [first]
    classes = list(dict.fromkeys(c for p in used for c in p.classes))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["record", "model", *classes, "labels", "warnings", "error"])
    for r in results:
        if isinstance(r, dict):
            writer.writerow([r["record"], "", *[""] * len(classes), "", "", r["error"]])
        else:
            probs = [f"{r.probabilities[c]:.6f}" if c in r.probabilities else "" for c in classes]
            writer.writerow([r.record, r.model, *probs, ";".join(r.labels), "; ".join(r.warnings), ""])


def _print_tables(results: list, predictors: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for r in results:
        if isinstance(r, dict):
            typer.echo(f"error: {r['error']}", err=True)
            continue
        predictor = predictors[r.model]
        thresholds = predictor.thresholds
        console.print(
            f"{r.record}  (model {r.model}, {r.windows} window(s))", soft_wrap=True, highlight=False
        )
        table = Table("class", "probability", "threshold", "decision")
        for i, cls in enumerate(predictor.classes):
            limit = (
                f"{thresholds[i]:.3f}"
                if thresholds is not None
                else ("0.5" if predictor.multilabel else "argmax")
            )
            table.add_row(cls, f"{r.probabilities[cls]:.3f}", limit, "yes" if cls in r.labels else "")
        console.print(table)
        for note in r.warnings:
            console.print(f"warning: {note}", soft_wrap=True, highlight=False, markup=False)


def example(
    out: Path = typer.Option(Path("example"), "--out", help="folder to write the record into"),
    rhythm: str = typer.Option("sinus", "--rhythm", help="sinus or afib"),
) -> None:
    """Write a SYNTHETIC 12-lead record (made by ecglab's code, not a patient) to try predict and explain."""
    from ecglab.infer.synthetic import write_example

    try:
        path = write_example(out, rhythm)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(str(path))
