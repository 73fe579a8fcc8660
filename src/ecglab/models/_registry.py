"""The model registry: a dict of builders and a decorator that fills it."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable

import torch.nn as nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name; a name may be registered once."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = fn
    return fn


_COMBINATIONS: dict[str, str] = {}  # models built from other registered models: name -> why not in the zoo


def register_combination(reason: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder that combines registered models (an ensemble): `create_model` builds it, but
    `list_models` (the zoo that the contract tests, `ecglab models` and the benchmarks walk) leaves it
    out, for `reason`."""

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        register_model(fn)
        _COMBINATIONS[fn.__name__] = reason
        return fn

    return decorate


def combination_models() -> dict[str, str]:
    """The registered combinations and why each is outside `list_models`."""
    return dict(_COMBINATIONS)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names of the zoo matching a shell-style pattern, sorted (combinations left out)."""
    return sorted(n for n in _MODELS if n not in _COMBINATIONS and fnmatch.fnmatchcase(n, pattern))


def is_model(name: str) -> bool:
    return name in _MODELS


def create_model(name: str, num_classes: int, in_chans: int = 12, **overrides) -> nn.Module:
    """Build a registered model; `overrides` are passed on to its builder."""
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=1)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else f"; see `ecglab models` for the {len(_MODELS)} names"
        )
        raise ValueError(f"unknown model {name!r}{hint}")
    return _MODELS[name](num_classes=num_classes, in_chans=in_chans, **overrides)
