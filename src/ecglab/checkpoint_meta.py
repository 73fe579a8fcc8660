"""What a checkpoint's `config.json` holds: one frozen dataclass shared by train, evaluate, predict,
export and bench.

It lives outside `train` so that `evaluate` and `infer` read checkpoints without importing the
training code, and it needs nothing beyond the standard library. `format` is the layout's
version: a file without it is format 1 (the shipped weights), and a file from a newer ecglab is
refused with a message rather than misread. `temperature` is an optional key of format 1: a file
without it (every one written before calibration) loads as 1.0, and an older ecglab names the key
it does not know.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1  # the version of the config.json layout this ecglab writes and reads


@dataclass(frozen=True)
class CheckpointMeta:
    """Enough to rebuild a model and use it exactly as training evaluated it."""

    model: str
    num_classes: int
    in_chans: int
    lead_names: tuple[str, ...]
    classes: tuple[str, ...]
    multilabel: bool
    fs: float
    window_samples: int
    model_kwargs: dict = field(default_factory=dict)
    seconds: float | None = None  # None: window_samples / fs
    norm: str = "zscore"
    filter: str = "none"
    aggregate: str = "mean"
    thresholds: tuple[float, ...] | None = None  # tuned on validation by `ecglab evaluate`
    temperature: float = 1.0  # logits are divided by it before sigmoid/softmax (fitted on validation)
    dataset: str | None = None
    task: str | None = None
    data_manifest_hash: str | None = None
    git_commit: str | None = None
    ecglab_version: str | None = None
    epoch: int | None = None  # the epoch of the best weights
    weights_sha256: str | None = None  # of model.safetensors, checked at load when present
    label_fraction: float | None = None  # the share of the training labels it learnt from
    train_records: int | None = None  # how many training records that was
    linear_probe: bool = False  # linear evaluation: the head's classifier is a LinearProbe
    format: int = FORMAT

    def __post_init__(self):
        problem = next(self._problems(), None)
        if problem:
            raise ValueError(problem)

    def _problems(self):
        if len(self.classes) != self.num_classes:
            yield f"{len(self.classes)} classes for num_classes {self.num_classes}"
        if len(self.lead_names) != self.in_chans:
            yield f"{len(self.lead_names)} lead_names for in_chans {self.in_chans}"
        if self.fs <= 0 or self.window_samples <= 0:
            yield f"fs {self.fs} and window_samples {self.window_samples} must be positive"
        if not self.temperature > 0:
            yield f"temperature {self.temperature} must be positive (1.0: uncalibrated)"
        if self.aggregate not in ("mean", "max"):
            yield f"aggregate {self.aggregate!r} is not mean or max"
        if self.thresholds is not None and len(self.thresholds) != self.num_classes:
            yield (
                f"{len(self.thresholds)} thresholds for {self.num_classes} classes; "
                "re-run `ecglab evaluate` or set thresholds to null"
            )

    @classmethod
    def from_json(cls, data: Any, source: str | Path = "config.json") -> CheckpointMeta:
        """Validate a parsed config.json; every problem names `source` and the key."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object of keys to values, got {type(data).__name__}")
        version = data.get("format", 1)
        if not isinstance(version, int) or version > FORMAT:
            raise ValueError(
                f"{source}: checkpoint format {version!r}; this ecglab reads format {FORMAT} or older, upgrade it"
            )
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in data:
            if key not in fields:
                raise ValueError(
                    f"{source}: unknown key {key!r}; a checkpoint config has {', '.join(fields)}"
                )
        values = {}
        for name, f in fields.items():
            if name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ValueError(f"{source}: missing key {name!r}")
                continue
            if not _matches(data[name], hints[name]):
                raise ValueError(
                    f"{source}: key {name!r} should be {_describe(hints[name])}, got {data[name]!r}"
                )
            values[name] = _frozen(data[name])
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """The config.json object (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @property
    def window_seconds(self) -> float:
        return self.seconds if self.seconds is not None else self.window_samples / self.fs


def read_meta(path: str | Path) -> CheckpointMeta:
    """Read and validate a checkpoint's config.json; garbage JSON names the file and the place."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file; a checkpoint config is JSON") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    return CheckpointMeta.from_json(data, path)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's annotation (int is a float; bool is no number)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is tuple:
        return isinstance(value, list | tuple) and all(_matches(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


_NOUNS = {float: "a number", int: "an integer", str: "a string", bool: "true or false", dict: "an object",
          type(None): "null"}  # fmt: skip


def _describe(hint: Any) -> str:
    """`a number`, `a list of strings or null`: what a field's annotation asks of JSON."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        return f"a list of {_describe(args[0]).split(' ', 1)[1]}s"
    return _NOUNS.get(hint, getattr(hint, "__name__", str(hint)))


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
