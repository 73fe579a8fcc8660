"""The teacher of a distillation: a checkpoint of `ecglab train`, checked against the recipe."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ecglab.checkpoint_meta import CheckpointMeta


def teacher_folder(path: str | Path) -> Path:
    """The checkpoint folder of `path`: a run folder (its `checkpoint/`) or a checkpoint folder."""
    path = Path(path)
    for folder in (path / "checkpoint", path):
        if (folder / "config.json").is_file():
            return folder
    raise FileNotFoundError(
        f"distill: teacher: {path}: no run folder or checkpoint there (no checkpoint/config.json); "
        "train the 12-lead teacher first (`ecglab train RECIPE`) and name its run folder"
    )


def load_teacher(
    path: str | Path, dataset: str, task, fs: float, norm: str
) -> tuple[nn.Module, CheckpointMeta]:
    """The teacher model (eval mode, frozen) and its metadata.

    Its classes, task, sampling rate and normalisation must be the recipe's: the student learns
    from the teacher's outputs class by class, on the inputs the teacher was trained on.
    """
    from ecglab.train.checkpoint import load_checkpoint

    folder = teacher_folder(path)
    teacher, meta = load_checkpoint(folder)
    ours = {"task": task.name, "classes": tuple(task.classes), "fs": float(fs), "norm": norm}
    theirs = {"task": meta.task, "classes": tuple(meta.classes), "fs": float(meta.fs), "norm": meta.norm}
    differ = [key for key in ours if ours[key] != theirs[key]]
    if differ:
        raise ValueError(
            f"{folder}: the teacher was trained for {_describe(meta.dataset, theirs)}; the recipe trains "
            f"{_describe(dataset, ours)} ({', '.join(differ)} differ); train a teacher on the recipe's "
            "dataset, task and settings, or point distill.teacher at one"
        )
    return teacher.eval().requires_grad_(False), meta


def _describe(dataset: str | None, about: dict) -> str:
    classes = ", ".join(about["classes"])
    return f"{dataset}/{about['task']} (classes {classes}) at {about['fs']:g} Hz, norm {about['norm']}"
