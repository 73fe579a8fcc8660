"""Extra bench tables: a writer turns a grid's finished runs into one markdown page.

A writer is a function `(runs: list[(TrainConfig, run_dir)]) -> str` registered under a name with
`@register_tables`; a bench spec names the writers it wants (`tables: [notes]`). Every module in this
package registers its writers when the package is imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

Writer = Callable[[list[tuple[object, Path]]], str]
_WRITERS: dict[str, Writer] = {}


def register_tables(name: str) -> Callable[[Writer], Writer]:
    def add(fn: Writer) -> Writer:
        if name in _WRITERS:
            raise ValueError(f"table writer {name!r} is already registered")
        _WRITERS[name] = fn
        return fn

    return add


def get_writer(name: str) -> Writer:
    if name not in _WRITERS:
        known = ", ".join(sorted(_WRITERS)) or "none"
        raise ValueError(f"unknown bench table writer {name!r}; known: {known}")
    return _WRITERS[name]


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
