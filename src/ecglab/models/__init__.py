"""The model zoo: every model is built by name through one registry.

Importing this package imports each family module (every module here whose name doesn't start
with an underscore), so their builders register themselves.
"""

import importlib
import pkgutil

from ecglab.models._registry import (
    combination_models,
    create_model,
    is_model,
    list_models,
    register_combination,
    register_model,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and not _module.ispkg:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "combination_models",
    "create_model",
    "is_model",
    "list_models",
    "register_combination",
    "register_model",
]
