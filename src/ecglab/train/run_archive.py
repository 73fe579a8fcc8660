"""A bench cell's run folder, slimmed to what its tables and paired comparisons read, kept beside the
results table so a grid can span sessions and machines.

A grid can take more sessions than a machine lives; its rows survive in the
results table, but the paired comparisons and the spec's tables read run folders (metrics,
history, recipe, checkpoint metadata, record-level predictions). `archive_run` keeps those files
(about 20 kB a cell) under `<results folder>/archive/<spec stem>/<run name>/`, without the weights
and without the labels: `labels.json` holds a hash of each split's label matrix instead. On
another machine `run_folder` restores an archived run into `<out>/<spec stem>/.archived/<run name>/`,
rebuilding the validation and test labels from the user's own prepared data and refusing labels
whose hash differs (other data, another version of the dataset).
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from ecglab.atomic import file_lock

# What a table or a paired comparison reads of a run folder; never weights or labels.
ARCHIVED = ("config.yaml", "history.csv", "log.txt", "metrics.json", "checkpoint/config.json",
            "predictions/val_probs.npy", "predictions/test_probs.npy")  # fmt: skip
SPLITS = ("val", "test")


def archive_root(results_path: Path, spec_path: Path) -> Path:
    """Where the archived runs of a spec's cells go: beside its results table."""
    return Path(results_path).parent / "archive" / Path(spec_path).stem


def labels_hash(y: np.ndarray) -> str:
    """A label matrix's fingerprint: its shape and its 0/1 entries."""
    y = np.asarray(y)
    return hashlib.sha256(
        f"{y.shape}".encode() + np.ascontiguousarray(y, dtype=np.uint8).tobytes()
    ).hexdigest()


def _copy_archived(source: Path, dest: Path) -> None:
    for name in ARCHIVED:
        if (source / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, dest / name)


def archive_run(run_dir: Path, dest: Path) -> Path:
    """Copy the archived files of a finished run folder to `dest`, with the hash of its labels."""
    run_dir, dest = Path(run_dir), Path(dest)
    _copy_archived(run_dir, dest)
    hashes = {split: labels_hash(np.load(run_dir / f"predictions/{split}_true.npy")) for split in SPLITS}
    (dest / "labels.json").write_text(json.dumps(hashes, indent=1) + "\n")
    return dest


def split_labels(config) -> dict[str, np.ndarray]:
    """The validation and test label matrices a run of `config` is scored on, from the prepared data."""
    from ecglab.data import get_reader
    from ecglab.data.cache import prepare
    from ecglab.train.loop import cache_dir_for, cache_settings, evaluation_sets

    reader = get_reader(config.dataset, config.root, config.fs)
    cache = cache_dir_for(config)
    prepare(reader, cache, cache_settings(config))
    sets = evaluation_sets(config, cache, reader.task(config.task))
    return {split: sets[split].y for split in SPLITS}


def restore_run(archived: Path, dest: Path, config) -> Path:
    """An archived run as a run folder at `dest`, its labels rebuilt from the data and checked."""
    archived, dest = Path(archived), Path(dest)
    hashes = json.loads((archived / "labels.json").read_text())
    labels = split_labels(config)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _copy_archived(archived, tmp)
    for split in SPLITS:
        n = len(np.load(tmp / f"predictions/{split}_probs.npy"))  # a dry run predicts the first records only
        y = labels[split][:n]
        if labels_hash(y) != hashes[split]:
            shutil.rmtree(tmp)
            raise ValueError(
                f"{archived}: the {split} labels of {config.dataset}/{config.task} under "
                f"{config.root or 'the data root'} are not the ones this run was scored on "
                "(other data or another version of the dataset); it cannot be restored"
            )
        np.save(tmp / f"predictions/{split}_true.npy", y)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def run_folder(config, archive: Path | None) -> Path | None:
    """The finished run folder of a cell: its own, else its archived copy restored (once) under
    `.archived/` beside it; None if neither exists."""
    own = Path(config.out) / config.run_name
    if (own / "metrics.json").is_file():
        return own
    archived = archive / config.run_name if archive is not None else None
    if archived is None or not (archived / "metrics.json").is_file():
        return None
    restored = Path(config.out) / ".archived" / config.run_name
    with file_lock(restored):  # bench shards may write their tables at the same time
        fresh = (restored / "metrics.json").is_file() and filecmp.cmp(
            restored / "metrics.json", archived / "metrics.json", shallow=False
        )
        return restored if fresh else restore_run(archived, restored, config)
