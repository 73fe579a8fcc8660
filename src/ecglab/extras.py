"""The optional parts of ecglab and the one message that says how to install a missing one.

`pip install ecglab` gives reading, training, evaluating, predicting and explaining; serving
needs `ecglab[serve]` and ONNX export or `--runtime onnx` needs `ecglab[onnx]`.
"""

from __future__ import annotations

import importlib

EXTRAS = {
    "serve": ("fastapi", "uvicorn", "python_multipart"),
    "onnx": ("onnx", "onnxruntime", "onnxscript"),
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the pip command that installs it."""


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise MissingExtra naming `pip install 'ecglab[extra]'` unless `modules` (default: all the extra's) import."""
    for module in modules or EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtra(
                f"{what} needs ecglab's {extra!r} extra ({module} cannot be imported: {exc}); "
                f"install it with: pip install 'ecglab[{extra}]'"
            ) from None
