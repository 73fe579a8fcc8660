"""`ecglab serve`: the HTTP API and web page for one model, on uvicorn."""

from __future__ import annotations

import typer

from ecglab.cli.data import fail

SERVE_EXTRAS = "fastapi uvicorn python-multipart"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, "--port", "-p", help="TCP port"),
    model: str = typer.Option(None, "--model", "-m", help="checkpoint folder or shipped model name"),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb", help="largest request body accepted, MB"),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: warning, info, debug"),
    device: str = typer.Option("auto", "--device", help="auto (a CUDA GPU if any), cpu, cuda, cuda:N or mps"),
) -> None:
    """Serve the model: POST ECG files to /predict or /explain, or open the web page at /."""
    try:
        import uvicorn

        from ecglab.serve.app import create_app
    except ImportError as exc:
        fail(f"ecglab serve needs {SERVE_EXTRAS} ({exc}); pip install {SERVE_EXTRAS}")
    if log_level.lower() not in LOG_LEVELS:
        fail(f"--log-level {log_level!r}: choose one of {', '.join(LOG_LEVELS)}")
    if not max_upload_mb > 0:
        fail(f"--max-upload-mb {max_upload_mb:g}: give a positive size in MB")
    try:
        app = create_app(model, max_upload_bytes=int(max_upload_mb * 1024 * 1024), device=device)
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    typer.echo(f"serving {app.state.service.name} on http://{host}:{port}/  (Ctrl+C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), log_config=_log_config(log_level),
                timeout_graceful_shutdown=5)  # fmt: skip


def _log_config(level: str) -> dict:
    """uvicorn's logging, plus the server's own log of refused uploads and their reasons."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["ecglab.serve"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config
