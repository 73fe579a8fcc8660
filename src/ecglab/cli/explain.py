"""`ecglab explain`: draw which parts of an ECG a model's decision rests on, on 12-lead paper.

Glue between `ecglab.infer` (reading the file, the model's preprocessing and probabilities) and
`ecglab.explain` (Grad-CAM, attention, the paper figure).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ecglab.cli.data import fail


def explain(
    path: Path = typer.Argument(..., help="ECG file: .hea/.dat/.mat (WFDB, CPSC 2018), .csv, .npy, .edf"),
    model: str = typer.Option(None, "--model", "-m", help="checkpoint folder or shipped model name"),
    class_name: str = typer.Option(
        None, "--class", "-c", help="class to explain (default: the top-scoring one)"
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="figure file: .png, .svg or .pdf; no suffix writes a PNG and an SVG "
        "(default: <record>_explain.png in the current folder)",
    ),  # fmt: skip
    layer: str = typer.Option(
        None, "--layer", help="Grad-CAM layer, a dotted module name (default: last stage)"
    ),
    attention: bool = typer.Option(
        False, "--attention", help="InceptionFormer: draw attention, not Grad-CAM"
    ),
    dpi: int = typer.Option(
        200, "--dpi", help="PNG resolution, 50 to 300; 1 mm of paper stays 1 mm at any dpi"
    ),
    fs: float = typer.Option(None, "--fs", help="sampling rate, Hz, for files that don't state it"),
    leads: str = typer.Option(
        None, "--leads", help="lead names, e.g. I,II,V1, for files that don't name them"
    ),
    units: str = typer.Option(None, "--units", help="mV or uV, for files that don't state them"),
    device: str = typer.Option("auto", "--device", help="auto (a CUDA GPU if any), cpu, cuda, cuda:N or mps"),
) -> None:
    """Grad-CAM (or attention) of one class over a record, drawn at 25 mm/s and 10 mm/mV."""
    from ecglab.explain.pipeline import check_class, explain_record
    from ecglab.explain.plot import output_paths, save_figure
    from ecglab.infer import model_for_recording
    from ecglab.infer.files import as_record_error, parse_leads, read_ecg
    from ecglab.infer.limits import Limits, check_dpi
    from ecglab.infer.predictor import Predictor

    record = path.name[: -len(path.suffix)] if path.suffix else path.name
    out = out or Path(f"{record}_explain.png")
    try:
        check_dpi(dpi)
        limits = Limits.from_env()
        if fs is not None:
            limits.check_rate("--fs", fs)
        output_paths(out)  # a bad suffix fails before the model runs
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    read = lambda: read_ecg(path, fs=fs, leads=parse_leads(leads), units=units, limits=limits)  # noqa: E731
    rec = None
    if model is None:  # the default model depends on the record's leads: read it first
        try:
            rec = read()
        except Exception as exc:  # whatever a corrupt file makes a reader raise, name the file
            fail(str(as_record_error(path, exc)))
    try:
        folder, name, note = model_for_recording(model, None if rec is None else len(rec.lead_names))
        predictor = Predictor.from_checkpoint(folder, name=name, device=device)
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    if note:
        typer.echo(f"note: {path}: {note}", err=True)
    try:
        check_class(predictor, class_name)
    except ValueError as exc:
        fail(f"{name}: {exc}")
    try:
        rec = rec or read()
        done = explain_record(predictor, rec, record, class_name, layer=layer, attention=attention)
    except Exception as exc:  # whatever a corrupt file makes a reader raise, name the file
        fail(str(as_record_error(path, exc)))
    for note in done.prediction.warnings:
        typer.echo(f"warning: {path}: {note}", err=True)
    try:
        written = save_figure(done.figure, out, dpi)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    typer.echo(
        f"{path}: explained {done.target} (p = {done.probability:.3f}) with {done.method}, model {name}"
    )
    for note in done.prediction.warnings:
        typer.echo(f"warning: {note}")
    for figure in written:
        typer.echo(str(figure))
