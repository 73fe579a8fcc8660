"""`ecglab serve`: the HTTP API and web page for one model, on uvicorn."""

from __future__ import annotations

import typer

from ecglab.cli.data import fail

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
OPEN_WARNING = """
################################################################################
WARNING: serving on {host} WITHOUT AN ACCESS TOKEN. Anyone who can reach this
machine can upload ECGs to it and read the model's answers. Start it with
--token SECRET (or set ECGLAB_TOKEN=SECRET); clients then send the header
`Authorization: Bearer SECRET`, and the web page asks for it.
################################################################################
"""


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, "--port", "-p", help="TCP port"),
    model: str = typer.Option(None, "--model", "-m", help="checkpoint folder or shipped model name"),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb", help="largest request body accepted, MB"),
    allow_host: list[str] = typer.Option(
        [], "--allow-host", help="a Host name to answer to besides loopback and --host (repeatable)"
    ),
    request_timeout: float = typer.Option(
        30.0, "--request-timeout", help="seconds one request may wait for and use the model (503 after)"
    ),
    body_timeout: float = typer.Option(
        15.0, "--body-timeout", help="seconds an upload may stall before it is refused (408)"
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: warning, info, debug"),
    device: str = typer.Option("auto", "--device", help="auto (a CUDA GPU if any), cpu, cuda, cuda:N or mps"),
    token: str = typer.Option(
        None,
        "--token",
        envvar="ECGLAB_TOKEN",
        show_envvar=True,
        help="access token every request but /health must send as `Authorization: Bearer TOKEN`",
    ),
    static_only: bool = typer.Option(
        False,
        "--static-only",
        help="serve only the in-browser page and its model files; nothing is scored here",
    ),
) -> None:
    """Serve the model: POST ECG files to /predict or /explain, or open the web page at /.

    Record limits (rate, length, resampling) come from ECGLAB_MIN_FS, ECGLAB_MAX_FS,
    ECGLAB_MAX_MINUTES and ECGLAB_MAX_RESAMPLE.
    """
    from ecglab.extras import MissingExtra, require

    try:
        require("serve", "ecglab serve")
    except MissingExtra as exc:
        fail(str(exc))
    import uvicorn

    from ecglab.serve.app import create_app
    from ecglab.serve.gate import allowed_hosts, is_loopback

    if log_level.lower() not in LOG_LEVELS:
        fail(f"--log-level {log_level!r}: choose one of {', '.join(LOG_LEVELS)}")
    for option, value in (("--max-upload-mb", max_upload_mb), ("--request-timeout", request_timeout),
                          ("--body-timeout", body_timeout)):  # fmt: skip
        if not value > 0:
            fail(f"{option} {value:g}: give a positive number")
    try:
        app = create_app(
            model, max_upload_bytes=int(max_upload_mb * 1024 * 1024), hosts=allowed_hosts(host, allow_host),
            request_timeout_s=request_timeout, body_timeout_s=body_timeout, device=device,
            token=token or None, static_only=static_only,
        )  # fmt: skip
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(str(exc))
    if not token and not is_loopback(host):
        typer.echo(OPEN_WARNING.format(host=host), err=True)
    if static_only:
        typer.echo(f"serving the in-browser page on http://{host}:{port}/  (records are scored in the browser; "
                   "Ctrl+C stops)", err=True)  # fmt: skip
    else:
        typer.echo(f"serving {app.state.service.name} on http://{host}:{port}/  (in-browser page: /local; "
                   "Ctrl+C stops)", err=True)  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), log_config=_log_config(log_level),
                timeout_graceful_shutdown=5)  # fmt: skip


def _log_config(level: str) -> dict:
    """uvicorn's logging, plus the server's own log of refused uploads and their reasons."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["ecglab.serve"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config
