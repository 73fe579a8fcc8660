"""Using a trained model on ECG files: `files` reads them, `predictor` scores them, `onnx_export` exports.

This module only finds models, so importing it stays light: a model is a checkpoint folder or
the name of one shipped in the package (`ecglab/weights/<name>/`).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "ptbxl_rhythm"
SINGLE_LEAD_MODEL = "cinc2017_single_lead"  # picked for one-lead recordings when installed
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
CHECKPOINT_FILES = ("model.safetensors", "config.json")


def weights_dir() -> Path:
    """Where shipped models live: `$ECGLAB_WEIGHTS` when set, else the package's `weights/` folder."""
    env = os.environ.get("ECGLAB_WEIGHTS")
    return Path(env) if env else WEIGHTS_DIR


def default_models() -> dict[str, Path]:
    """Shipped models by name: every sub-folder of `weights_dir()` holding a complete checkpoint."""
    folder = weights_dir()
    if not folder.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(folder.iterdir())
        if p.is_dir() and all((p / name).is_file() for name in CHECKPOINT_FILES)
    }


def is_shipped(folder: str | Path) -> bool:
    """Whether `folder` is one of the shipped models (their folders are never written to)."""
    folder = Path(folder).resolve()
    return any(folder == p.resolve() for p in default_models().values())


def default_model(n_leads: int | None = None) -> tuple[Path, str, str | None]:
    """(checkpoint folder, name, note) of the shipped model used when `--model` is not given.

    The one place that decides the default, for `predict`, `explain` and the server: a recording of
    one lead (`n_leads == 1`) gets SINGLE_LEAD_MODEL when it is installed, anything else (or an
    unknown lead count) DEFAULT_MODEL. `note` says why the choice was made, or that the single-lead
    model was wanted and is missing (None when there is nothing to say).
    """
    shipped = default_models()
    note = None
    if n_leads == 1:
        if SINGLE_LEAD_MODEL in shipped:
            return (
                shipped[SINGLE_LEAD_MODEL],
                SINGLE_LEAD_MODEL,
                (
                    f"one lead: using the single-lead model {SINGLE_LEAD_MODEL} (pass --model to choose another)"
                ),
            )
        note = (
            f"one lead, but the single-lead model {SINGLE_LEAD_MODEL} is not installed in {weights_dir()}; "
            f"using {DEFAULT_MODEL}"
        )
    if DEFAULT_MODEL in shipped:
        return shipped[DEFAULT_MODEL], DEFAULT_MODEL, note
    raise FileNotFoundError(
        f"no default model is installed ({weights_dir()} has no {DEFAULT_MODEL}/ checkpoint); "
        "pass --model FOLDER, a checkpoint folder with model.safetensors and config.json "
        "(`ecglab train` writes one as <run>/checkpoint)"
    )


def resolve_model(spec: str | None) -> tuple[Path, str]:
    """(checkpoint folder, display name) for `--model`: a folder or file path, a shipped name, or None.

    None means `default_model()` for a recording whose leads are not known yet; a path wins over a
    shipped model of the same name.
    """
    if spec is None:
        return default_model()[:2]
    shipped = default_models()
    path = Path(spec)
    if path.exists():
        return path, spec
    if spec in shipped:
        return shipped[spec], spec
    names = ", ".join(shipped) or "none installed"
    raise FileNotFoundError(
        f"{spec}: neither a checkpoint folder nor a shipped model (shipped: {names}); "
        "pass the path of a folder with model.safetensors and config.json"
    )


def model_for_recording(spec: str | None, n_leads: int | None) -> tuple[Path, str, str | None]:
    """(folder, name, note) for a recording of `n_leads` leads: `--model`'s when given, else `default_model`'s."""
    return (*resolve_model(spec), None) if spec is not None else default_model(n_leads)
