"""`ecglab evaluate RUN`: thresholds from the validation fold, test metrics with bootstrap CIs, a report.

The validation predictions are read, and the thresholds chosen, before the test predictions
are opened: nothing on the test fold can influence a choice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

import ecglab
from ecglab.atomic import write_text
from ecglab.checkpoint_meta import CheckpointMeta, read_meta
from ecglab.evaluate import metrics as M
from ecglab.evaluate.bootstrap import draw_resamples, percentile_interval, weight_blocks
from ecglab.evaluate.thresholds import METHODS, apply_thresholds, argmax_predictions, tune_thresholds

CINC2017_CLASSES = frozenset({"N", "A", "O", "~"})
NORMAL_CODE = "426783006"  # SNOMED-CT sinus rhythm: the challenges' "normal" class
PER_CLASS = ("f1", "precision", "recall", "auc", "average_precision")
_CHUNK = 2_000_000  # elements per (resamples, records) block while scoring resamples


def evaluate_run(
    run_dir: str | Path,
    *,
    threshold: str = "per_class",
    n_bootstrap: int = 1000,
    seed: int = 0,
    challenge_weights: str | Path | None = None,
    report: bool = True,
) -> dict:
    """Evaluate a training run folder; writes `metrics.json`, the thresholds and `report/`.

    `threshold` is "per_class" (each class's F1 maximised on val) or "global" (one threshold
    maximising val macro F1); multi-class runs use the argmax instead. `challenge_weights` is
    the CinC 2020/2021 `weights.csv` for a cinc2020 run (default: under the data root).
    Returns the dictionary written to `metrics.json` (NaN as None).
    """
    if threshold not in METHODS:
        raise ValueError(f"threshold={threshold!r}; expected one of {METHODS}")
    run = Path(run_dir)
    config = read_checkpoint_config(run)
    classes, multilabel = list(config.classes), config.multilabel
    val_true, val_probs = load_predictions(run, "val", classes)
    choice = choose_thresholds(val_true, val_probs, classes=classes, multilabel=multilabel, method=threshold)
    # the test predictions are opened only now, after every choice is made
    test_true, test_probs = load_predictions(run, "test", classes)
    extras, notes = extra_scores(config, classes, challenge_weights)
    val_pred, test_pred = decide(val_probs, choice), decide(test_probs, choice)
    resamples = draw_resamples(test_true, n_resamples=n_bootstrap, seed=seed) if n_bootstrap > 0 else None
    result = {
        "run": run_info(run, config),
        "thresholds": choice,
        "test": score_split(
            test_true, test_probs, test_pred, classes, multilabel, extras, resamples, intervals=True
        ),
        "val": score_split(val_true, val_probs, val_pred, classes, multilabel, extras, None, intervals=False),
        "bootstrap": bootstrap_info(resamples, classes, n_bootstrap, seed),
        "challenge": {k: v for k, v in extras.items() if k != "weights_matrix"},
        "notes": notes + split_notes(choice, multilabel),
    }
    result = _clean(result)
    if report:
        from ecglab.evaluate.report import write_report

        html = write_report(
            run / "report",
            result,
            y_true=test_true,
            y_score=test_probs,
            y_pred=test_pred,
            history=run / "history.csv",
            config_text=_read_text(run / "config.yaml"),
        )
        result["report"] = html.relative_to(run).as_posix()
    write_json(run / "metrics.json", result)
    save_thresholds(run, choice)
    return result


def read_checkpoint_config(run: Path) -> CheckpointMeta:
    path = run / "checkpoint" / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found; point evaluate at a run folder written by `ecglab train`"
        )
    return read_meta(path)


def load_predictions(run: Path, split: str, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`(y_true, probs)` of one split from `RUN/predictions/`, checked against the class list."""
    arrays = []
    for kind in ("true", "probs"):
        path = run / "predictions" / f"{split}_{kind}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found; training writes it after the last epoch")
        a = np.load(path, allow_pickle=False)
        if a.ndim != 2 or a.shape[1] != len(classes):
            raise ValueError(
                f"{path}: expected shape (records, {len(classes)}) for classes {classes}, got {a.shape}"
            )
        arrays.append(a)
    y_true, probs = arrays
    if len(y_true) != len(probs):
        raise ValueError(
            f"{run / 'predictions'}: {split}_true has {len(y_true)} records, {split}_probs {len(probs)}"
        )
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError(f"{run / 'predictions' / f'{split}_true.npy'}: labels must be 0/1")
    if not np.isfinite(probs).all():
        raise ValueError(f"{run / 'predictions' / f'{split}_probs.npy'}: contains NaN or infinite values")
    return y_true, probs


def choose_thresholds(val_true, val_probs, *, classes: Sequence[str], multilabel: bool, method: str) -> dict:
    """The decision rule, from validation arrays only: tuned thresholds, or argmax for multi-class."""
    if not multilabel:
        return {
            "method": "argmax",
            "values": None,
            "source": None,
            "note": "multi-class task: each record gets its highest-probability class (argmax); thresholds do not apply",
        }
    values = tune_thresholds(val_true, val_probs, method=method)
    no_pos = [c for c, p in zip(classes, np.asarray(val_true).sum(0), strict=True) if p == 0]
    criterion = (
        "F1 of each class" if method == "per_class" else "macro F1 over classes (one threshold for all)"
    )
    note = f"maximising the {criterion} on the validation fold; a record is positive when its probability >= the threshold"
    if no_pos:
        note += f"; no validation positive for {', '.join(no_pos)}: default 0.5"
    return {
        "method": method,
        "values": {c: float(t) for c, t in zip(classes, values, strict=True)},
        "source": "val",
        "note": note,
    }


def decide(probs: np.ndarray, choice: Mapping) -> np.ndarray:
    if choice["values"] is None:
        return argmax_predictions(probs)
    return apply_thresholds(probs, list(choice["values"].values()))


def extra_scores(config: CheckpointMeta, classes: Sequence[str], weights_path) -> tuple[dict, list[str]]:
    """Which challenge scores the dataset calls for, with what they need; and notes on any skipped."""
    extras: dict = {}
    if set(classes) == CINC2017_CLASSES:
        extras["cinc2017_score"] = (
            "PhysioNet/CinC 2017: mean F1 of N, A and O (the noise class ~ is not scored)"
        )
    if config.dataset != "cinc2020":
        return extras, []
    year = "2021" if "2021" in str(config.task or "") else "2020"
    if weights_path is None:
        from ecglab.paths import data_root

        weights_path = data_root() / "cinc2020" / f"evaluation-{year}" / "weights.csv"
    if not Path(weights_path).is_file():
        return extras, [
            f"challenge score skipped: no weights table at {weights_path}; pass challenge_weights="
        ]
    aliases = _cinc_aliases()
    try:
        matrix = M.challenge_weights(weights_path, classes, aliases=aliases)
        normal = next(
            i for i, c in enumerate(classes) if NORMAL_CODE in {c, *aliases.get(c, ())} or c == "NSR"
        )
    except (ValueError, StopIteration) as e:
        return extras, [f"challenge score skipped: {e or 'no normal sinus rhythm class (426783006)'}"]
    extras["challenge_score"] = f"PhysioNet/CinC Challenge {year} normalised score"
    extras.update(weights=str(weights_path), normal_class=classes[normal], weights_matrix=matrix)
    return extras, []


def _cinc_aliases() -> dict[str, tuple[str, ...]]:
    from ecglab.data.cinc_scored import SCORED_2020, SCORED_2021

    return {cls: codes for table in (SCORED_2020, SCORED_2021) for cls, codes in table}


def macro_masks(y_true: np.ndarray) -> dict[str, np.ndarray]:
    """Classes that enter the macro averages: with a positive (F1, precision, recall); and a negative too (AUC, AP)."""
    pos = np.asarray(y_true).sum(0)
    return {"decision": pos > 0, "ranking": (pos > 0) & (pos < len(y_true))}


def metric_suite(y_true, y_score, y_pred, *, classes, multilabel, extras, masks, sample_weight=None) -> dict:
    """Every metric of one split under `sample_weight` (n,) or (B, n): per-class `(…, K)` and scalar `(…)` arrays."""
    kw = {"average": None, "sample_weight": sample_weight}
    out = {
        "f1": M.f1_score(y_true, y_pred, **kw),
        "precision": M.precision_score(y_true, y_pred, **kw),
        "recall": M.recall_score(y_true, y_pred, **kw),
    }
    out["auc"], out["average_precision"] = M.ranking_scores(y_true, y_score, sample_weight=sample_weight)
    for name in PER_CLASS:
        mask = masks["ranking" if name in ("auc", "average_precision") else "decision"]
        out[f"macro_{name}"] = _masked_mean(out[name], mask)
    out["micro_f1"] = M.f1_score(y_true, y_pred, average="micro", sample_weight=sample_weight)
    if multilabel:
        out["exact_match_accuracy"] = M.accuracy_score(y_true, y_pred, sample_weight=sample_weight)
        out["label_accuracy"] = M.label_accuracy_score(y_true, y_pred, sample_weight=sample_weight)
    else:
        out["accuracy"] = M.accuracy_score(y_true, y_pred, sample_weight=sample_weight)
    if "cinc2017_score" in extras:
        out["cinc2017_score"] = M.cinc2017_score(y_true, y_pred, classes=classes, sample_weight=sample_weight)
    if "challenge_score" in extras:
        out["challenge_score"] = M.challenge_score(
            y_true,
            y_pred,
            weights=extras["weights_matrix"],
            normal_index=classes.index(extras["normal_class"]),
            sample_weight=sample_weight,
        )
    return out


def bootstrap_suite(y_true, y_score, y_pred, resamples, **kw) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Percentile intervals of every metric over the resamples, scored a block of resamples at a time."""
    blocks = [
        metric_suite(y_true, y_score, y_pred, sample_weight=weights, **kw)
        for weights in weight_blocks(resamples, len(y_true), _CHUNK)
    ]
    return {k: percentile_interval(np.concatenate([np.atleast_1d(b[k]) for b in blocks])) for k in blocks[0]}


def score_split(y_true, y_score, y_pred, classes, multilabel, extras, resamples, *, intervals: bool) -> dict:
    """One split's metrics for metrics.json: `{"value", "lo", "hi"}` entries, or bare values without `intervals`.

    Without `resamples` the intervals are null.
    """
    masks = macro_masks(y_true)
    kw = dict(classes=classes, multilabel=multilabel, extras=extras, masks=masks)
    point = metric_suite(y_true, y_score, y_pred, **kw)
    ci = bootstrap_suite(y_true, y_score, y_pred, resamples, **kw) if resamples is not None else None

    def entry(name, k=None):
        value = point[name] if k is None else point[name][k]
        if not intervals:
            return _num(value)
        if ci is None:
            return {"value": _num(value), "lo": None, "hi": None}
        lo, hi = ci[name] if k is None else (ci[name][0][k], ci[name][1][k])
        return {"value": _num(value), "lo": _num(lo), "hi": _num(hi)}

    out: dict = {"n_records": len(y_true)}
    out.update({name: entry(name) for name in point if name not in PER_CLASS})
    support = np.asarray(y_true).sum(0)
    out["per_class"] = {
        c: {
            **{m: entry(m, k) for m in PER_CLASS},
            "support": int(support[k]),
            "in_macro": bool(masks["decision"][k]),
        }
        for k, c in enumerate(classes)
    }
    out["excluded_from_macro"] = excluded_classes(classes, y_true, masks)
    return out


def excluded_classes(classes, y_true, masks) -> dict[str, str]:
    out = {}
    for k, c in enumerate(classes):
        if not masks["decision"][k]:
            out[c] = (
                "no positive record: F1, precision, recall, AUC and AP undefined, left out of every macro"
            )
        elif not masks["ranking"][k]:
            out[c] = f"all {len(y_true)} records positive: AUC and AP undefined, left out of their macros"
    return out


def bootstrap_info(resamples, classes, n_bootstrap: int, seed: int) -> dict:
    if resamples is None:
        return {"n_resamples": 0, "note": "no bootstrap: test values have no interval"}
    return {
        "n_resamples": n_bootstrap,
        "seed": seed,
        "confidence": 0.95,
        "interval": "percentile (2.5th, 97.5th) over resamples of test records drawn with replacement",
        "kept_present": [c for c, g in zip(classes, resamples.guarded, strict=True) if g],
        "redrawn": resamples.redrawn,
        "unguarded": resamples.unguarded,
        "note": "a resample in which a kept class lost all its positives or negatives was drawn again",
    }


def split_notes(choice: Mapping, multilabel: bool) -> list[str]:
    if multilabel:
        return ["val metrics use the thresholds tuned on val, so they are optimistic; report the test ones"]
    return [
        choice["note"]
        + "; F1, precision and recall are one-vs-rest on those decisions, AUC on the probabilities"
    ]


def run_info(run: Path, config: CheckpointMeta) -> dict:
    keys = (
        "dataset",
        "task",
        "model",
        "model_kwargs",
        "classes",
        "multilabel",
        "num_classes",
        "in_chans",
        "fs",
    )
    saved = config.to_json()
    info = {k: saved[k] for k in keys}
    info.update(
        {k: saved[k] for k in ("window_samples", "data_manifest_hash", "git_commit", "ecglab_version")}
    )
    info["run_dir"] = str(run.resolve())
    info["evaluated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info["evaluated_with"] = ecglab.__version__
    return info


def save_thresholds(run: Path, choice: Mapping) -> None:
    """Write the thresholds (a list in class order, or null for argmax) into the checkpoint config for `predict`."""
    path = run / "checkpoint" / "config.json"
    thresholds = None if choice["values"] is None else tuple(choice["values"].values())
    write_json(path, replace(read_meta(path), thresholds=thresholds).to_json())


def write_json(path: Path, data) -> None:
    """Write JSON atomically; NaN becomes null, as JSON has no NaN."""
    write_text(path, json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")


def _clean(x):
    if isinstance(x, Mapping):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, np.generic):
        return _clean(x.item())
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def _masked_mean(per_class: np.ndarray, mask: np.ndarray):
    """Mean over the masked classes, skipping NaNs; NaN when nothing is left."""
    keep = mask & ~np.isnan(per_class)
    count = keep.sum(-1)
    total = np.where(keep, per_class, 0.0).sum(-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _num(x) -> float:
    return float(np.asarray(x))


def _read_text(path: Path) -> str | None:
    return path.read_text(errors="replace") if path.is_file() else None
