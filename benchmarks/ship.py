"""Build a shipped model from finished training runs, choosing on fold 9 only, scoring fold 10 once.

    python benchmarks/ship.py --name ptbxl_rhythm --runs 'runs/shipped/shipped_ptbxl/*-ptbxl-rhythm-s*' \
        --out src/ecglab/weights/ptbxl_rhythm --card docs/model_card/ptbxl_rhythm.md

1. Candidates: every run alone; an ensemble of the seeds of each model with several; an ensemble of
   all runs. Each is scored on fold 9 by running its network (an ensemble is the `ensemble` model,
   the mean of its members' logits) over the val windows with training's own `predict_records`;
   a single run's probabilities must equal the ones its training wrote, or the data differ.
2. The best by fold-9 macro AUC wins; candidates within `--tie` of it count as tied, and the one
   with the fewest parameters among them is chosen.
3. Its temperature is fitted on fold 9 and its per-class thresholds tuned on the calibrated fold-9
   probabilities (`ecglab evaluate`'s rule; argmax for one-of-K tasks).
4. Only then is fold 10 scored, once, with `ecglab evaluate`'s metrics and bootstrap intervals;
   the expected calibration error before and after is reported on both folds.
5. The weights folder (model.safetensors + config.json with the temperature and thresholds) is
   replaced atomically; a reliability diagram (fold 10) and a markdown fragment for
   docs/model_card.md are written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import yaml

from ecglab.atomic import atomic_folder, write_text
from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.data import get_reader
from ecglab.data.cache import prepare
from ecglab.evaluate import calibration as C
from ecglab.evaluate.bootstrap import draw_resamples
from ecglab.evaluate.evaluate import choose_thresholds, decide, extra_scores, score_split
from ecglab.models import create_model
from ecglab.train.checkpoint import load_checkpoint, save_checkpoint
from ecglab.train.config import from_dict
from ecglab.train.loop import cache_dir_for, cache_settings, evaluation_sets, predict_records, val_scores

# what every member of an ensemble must share with the others (the checkpoint's and the recipe's)
SAME_META = ("classes", "lead_names", "multilabel", "fs", "window_samples", "norm", "filter", "aggregate",
             "dataset", "task", "data_manifest_hash")  # fmt: skip
SAME_RECIPE = ("root", "cache", "seconds", "crop_seconds", "eval_stride_seconds", "val_fold", "test_fold")
SAVED_PROBS_TOLERANCE = 1e-4


@dataclass
class TrainedRun:
    folder: Path
    recipe: object  # TrainConfig
    meta: CheckpointMeta
    model: torch.nn.Module

    @property
    def label(self) -> str:
        return self.recipe.label or self.recipe.model

    @property
    def spec(self) -> dict:
        return {"model": self.meta.model, "kwargs": dict(self.meta.model_kwargs)}


@dataclass
class Candidate:
    name: str
    runs: list[TrainedRun]
    network: torch.nn.Module
    params: int
    val_auc: float = float("nan")
    val_f1: float = float("nan")
    val_probs: np.ndarray | None = None
    val_logits: np.ndarray | None = None


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="the shipped model's name (its folder's name)")
    p.add_argument("--runs", required=True, action="append", help="glob of run folders (repeatable)")
    p.add_argument("--out", required=True, type=Path, help="weights folder to write (replaced atomically)")
    p.add_argument("--card", required=True, type=Path, help="markdown fragment to write")
    p.add_argument("--diagram", type=Path, help="reliability diagram PNG (default: beside --card)")
    p.add_argument("--tie", type=float, default=0.001, help="fold-9 macro AUC gap counted as a tie")
    p.add_argument("--bootstrap", type=int, default=1000, help="test resamples for the 95%% intervals")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--train-command", action="append", default=[],
                   help="the command that trained the runs, for the card (repeatable)")  # fmt: skip
    return p.parse_args(argv)


def find_runs(patterns: list[str]) -> list[TrainedRun]:
    """Every finished run folder the globs match (a checkpoint and predictions), sorted by path."""
    folders = sorted({Path(f) for pattern in patterns for f in glob.glob(pattern)})
    runs = []
    for folder in folders:
        if not (folder / "checkpoint" / "config.json").is_file() or not (folder / "predictions").is_dir():
            print(f"skipped {folder}: no checkpoint/ and predictions/ (an unfinished run?)", file=sys.stderr)
            continue
        recipe = from_dict(yaml.safe_load((folder / "config.yaml").read_text()), str(folder / "config.yaml"))
        model, meta = load_checkpoint(folder / "checkpoint")
        runs.append(TrainedRun(folder, recipe, meta, model))
    if not runs:
        raise SystemExit(f"error: no finished run folder matches {', '.join(patterns)}")
    check_compatible(runs)
    return runs


def check_compatible(runs: list[TrainedRun]) -> None:
    """Every run must score the same records the same way, or the candidates are not comparable."""
    first = runs[0]
    for run in runs[1:]:
        for key in SAME_META:
            if getattr(run.meta, key) != getattr(first.meta, key):
                raise SystemExit(f"error: {run.folder}: {key} {getattr(run.meta, key)!r} differs from "
                                 f"{first.folder}'s {getattr(first.meta, key)!r}; pass runs of one task and recipe")  # fmt: skip
        for key in SAME_RECIPE:
            if getattr(run.recipe, key) != getattr(first.recipe, key):
                raise SystemExit(f"error: {run.folder}/config.yaml: {key} {getattr(run.recipe, key)!r} differs "
                                 f"from {first.folder}'s {getattr(first.recipe, key)!r}; the val windows would differ")  # fmt: skip


def training_cache(recipe, meta: CheckpointMeta, reader) -> Path:
    """The prepared cache the runs read: reused when its manifest holds the data hash the checkpoints
    record (no re-hashing of the raw files), else prepared again (`check_saved` then catches a change)."""
    cache_dir = cache_dir_for(recipe)
    manifest = cache_dir / "manifest.json"
    if (
        not manifest.is_file()
        or json.loads(manifest.read_text()).get("inputs_hash") != meta.data_manifest_hash
    ):
        prepare(reader, cache_dir, cache_settings(recipe))
    return cache_dir


def ensemble_network(runs: list[TrainedRun]) -> torch.nn.Module:
    """The registered `ensemble` of the runs' networks, holding their trained weights."""
    meta = runs[0].meta
    net = create_model("ensemble", meta.num_classes, meta.in_chans, members=[r.spec for r in runs])
    state = {f"members.{i}.{k}": v for i, r in enumerate(runs) for k, v in r.model.state_dict().items()}
    net.load_state_dict(state, strict=True)
    return net.eval()


def candidates(runs: list[TrainedRun]) -> list[Candidate]:
    """Each run; the seeds of each model with several; all runs (when that is a new combination)."""
    out = [Candidate(r.folder.name, [r], r.model, count_params(r.model)) for r in runs]
    groups: dict[str, list[TrainedRun]] = {}
    for r in runs:
        groups.setdefault(f"{r.label} {r.meta.model_kwargs}", []).append(r)
    combos = [(f"ensemble: {g[0].label} x{len(g)} seeds", g) for g in groups.values() if len(g) > 1]
    if len(runs) > 1 and all(len(g) != len(runs) for _, g in combos):
        combos.append((f"ensemble: all {len(runs)} runs", runs))
    for name, group in combos:
        net = ensemble_network(group)
        out.append(Candidate(name, group, net, count_params(net)))
    return out


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def score_on_val(cands: list[Candidate], val_set, meta: CheckpointMeta, batch_size: int) -> None:
    """Fold-9 probabilities and window logits of every candidate, as training's validation computes them."""
    for c in cands:
        probs, y, logits = predict_records(c.network, val_set, meta.multilabel, batch_size, meta.aggregate)
        if len(c.runs) == 1:
            check_saved(c.runs[0], probs)
        c.val_probs, c.val_logits = probs, logits
        c.val_auc, c.val_f1 = val_scores(y, probs, meta.multilabel)
        print(f"fold 9: {c.name}: macro AUC {c.val_auc:.4f}", file=sys.stderr)


def check_saved(run: TrainedRun, probs: np.ndarray) -> None:
    saved = np.load(run.folder / "predictions" / "val_probs.npy")
    if saved.shape != probs.shape or np.abs(saved - probs).max() > SAVED_PROBS_TOLERANCE:
        raise SystemExit(f"error: {run.folder}: its fold-9 probabilities differ from predictions/val_probs.npy; "
                         "the prepared cache or the data changed since training")  # fmt: skip


def choose(cands: list[Candidate], tie: float) -> Candidate:
    """The best fold-9 macro AUC; among candidates within `tie` of it, the fewest parameters."""
    best = max(c.val_auc for c in cands)
    tied = [c for c in cands if c.val_auc >= best - tie]
    return min(tied, key=lambda c: (c.params, -c.val_auc))


def shipped_meta(winner: Candidate, temperature: float, choice: dict) -> CheckpointMeta:
    meta = winner.runs[0].meta
    thresholds = None if choice["values"] is None else tuple(choice["values"].values())
    if len(winner.runs) > 1:
        meta = replace(
            meta, model="ensemble", model_kwargs={"members": [r.spec for r in winner.runs]}, epoch=None
        )
    return replace(meta, temperature=temperature, thresholds=thresholds, weights_sha256=None)


def write_weights(out: Path, network: torch.nn.Module, meta: CheckpointMeta, check: np.ndarray) -> None:
    """Save the checkpoint into a fresh folder, reload it, compare its logits, then swap it into place."""
    with atomic_folder(out) as tmp:
        save_checkpoint(tmp, network, meta)
        reloaded, _ = load_checkpoint(tmp)
        with torch.no_grad():
            x = torch.from_numpy(check)
            if not torch.allclose(reloaded(x), network(x), atol=1e-5):
                raise SystemExit(f"error: {out}: the saved weights do not reproduce the chosen network")


def first_windows(ds, n: int = 4) -> np.ndarray:
    return np.stack([ds[i][0].numpy() for i in range(min(n, len(ds)))])


def ci(entry: dict, digits: int = 3) -> str:
    """`value [lo, hi]`; n/a for a metric that is undefined (a class without test positives)."""
    if entry["value"] is None or not np.isfinite(entry["value"]):
        return "n/a"
    if entry["lo"] is None or not np.isfinite(entry["lo"]):
        return f"{entry['value']:.{digits}f}"
    return f"{entry['value']:.{digits}f} [{entry['lo']:.{digits}f}, {entry['hi']:.{digits}f}]"


def card(args, runs, cands, winner, temperature, choice, test, eces, diagram: Path, commands) -> str:
    """The markdown fragment for docs/model_card.md."""
    meta = runs[0].meta
    lines = [f"### `{args.name}`: chosen on fold 9, scored once on fold 10", "",
             f"{meta.dataset} / {meta.task}: {len(meta.classes)} classes ({', '.join(meta.classes)}), "
             f"{'multi-label' if meta.multilabel else 'one of K'}, {len(meta.lead_names)} lead(s) at {meta.fs:g} Hz, "
             f"{meta.window_samples / meta.fs:g}-s windows ({meta.aggregate} over a record's windows). "
             f"Built {dt.date.today().isoformat()} from {len(runs)} run(s).", "",
             "Candidates on fold 9 (validation; chosen by macro AUC, a tie within "
             f"{args.tie:g} goes to fewer parameters):", "",
             "| candidate | params | fold-9 macro AUC | fold-9 macro F1 (0.5 / argmax) |", "|---|---:|---:|---:|"]  # fmt: skip
    for c in sorted(cands, key=lambda c: -c.val_auc):
        mark = " **(chosen)**" if c is winner else ""
        lines.append(f"| {c.name}{mark} | {c.params:,} | {c.val_auc:.4f} | {c.val_f1:.4f} |")
    lines += ["", f"Chosen: **{winner.name}** ({', '.join(str(r.folder) for r in winner.runs)}). "
              f"Recipe of its run(s): {_recipes(winner.runs)}.", "",
              f"Calibration: temperature T = {temperature:.3f} fitted on fold 9 (logits / T before "
              f"{'sigmoid' if meta.multilabel else 'softmax'}); decision rule: {choice['note']}.", "",
              "| expected calibration error | before (T = 1) | after |", "|---|---:|---:|"]  # fmt: skip
    for split, (before, after) in eces.items():
        lines.append(f"| {split} | {before:.4f} | {after:.4f} |")
    lines += ["", f"![reliability diagram, fold 10]({_relative(diagram, args.card)})", "",
              f"Fold 10 (test, {test['n_records']} records, scored once after every choice; 95% bootstrap "
              f"intervals over {args.bootstrap} resamples):", ""]  # fmt: skip
    for key, label in (("macro_auc", "macro AUC"), ("macro_f1", "macro F1"), ("cinc2017_score",
                       "CinC 2017 score (mean F1 of N, A, O)"), ("accuracy", "accuracy")):  # fmt: skip
        if key in test:
            lines.append(f"- {label}: {ci(test[key])}")
    common = [row["auc"]["value"] for row in test["per_class"].values() if row["support"] >= 5]
    if common and len(common) < len(test["per_class"]):
        lines.append(f"- macro AUC over the {len(common)} classes with at least 5 test positives (no interval): "
                     f"{np.nanmean(common):.3f}")  # fmt: skip
    reasons: dict[str, list[str]] = {}
    for c, why in test["excluded_from_macro"].items():
        reasons.setdefault(why, []).append(c)
    lines += [f"- left out ({why}): {', '.join(names)}" for why, names in reasons.items()]
    lines += [
        "",
        "| class | test positives | AUC | F1 | precision | recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c, row in test["per_class"].items():
        cells = [ci(row[m]) if row["in_macro"] else "n/a" for m in ("auc", "f1")]
        cells += [f"{row[m]['value']:.3f}" if row["in_macro"] else "n/a" for m in ("precision", "recall")]
        lines.append(f"| {c} | {row['support']} | {' | '.join(cells)} |")
    lines += ["", "Built with:", "", "```", *commands, "```", ""]
    return "\n".join(lines)


def _recipes(runs) -> str:
    """Each distinct recipe among `runs`, with the seeds that ran it."""
    seeds: dict[str, list[str]] = {}
    for run in runs:
        r = run.recipe
        text = (f"{r.model}{f' {r.model_kwargs}' if r.model_kwargs else ''}, {r.epochs} epochs, batch {r.batch_size}, "
                f"lr {r.lr:g}, crop {r.crop_seconds or r.seconds:g} s, augment {_augment(r)}")  # fmt: skip
        seeds.setdefault(text, []).append(str(r.seed))
    return "; ".join(f"{text} (seed {', '.join(s)})" for text, s in seeds.items())


def _augment(recipe) -> str:
    on = {k: v for k, v in vars(recipe.augment).items() if v and not k.endswith("_max")}
    return ", ".join(f"{k} {v:g}" for k, v in on.items()) or "none"


def _relative(path: Path, card_path: Path) -> str:
    try:
        return path.resolve().relative_to(card_path.resolve().parent).as_posix()
    except ValueError:
        return str(path)


def calibrate(winner: Candidate, val_set, meta: CheckpointMeta) -> tuple[float, np.ndarray, dict]:
    """Fold 9 only: the temperature, the calibrated probabilities and the thresholds tuned on them."""
    y, owner = val_set.y, val_set.record_index
    temperature = C.fit_temperature(winner.val_logits, y, meta.multilabel, owner, meta.aggregate)
    after = C.record_probabilities(
        winner.val_logits, owner, len(y), meta.multilabel, meta.aggregate, temperature
    )
    choice = choose_thresholds(
        y, after, classes=list(meta.classes), multilabel=meta.multilabel, method="per_class"
    )
    return temperature, after, choice


def score_test(winner: Candidate, test_set, meta: CheckpointMeta, temperature: float, choice: dict, args):
    """Fold 10, once: `evaluate`'s metrics with bootstrap intervals on the calibrated probabilities,
    and the uncalibrated and calibrated probabilities themselves."""
    _, y, logits = predict_records(winner.network, test_set, meta.multilabel, args.batch_size, meta.aggregate)
    owner, classes = test_set.record_index, list(meta.classes)
    before = C.record_probabilities(logits, owner, len(y), meta.multilabel, meta.aggregate)
    after = C.record_probabilities(logits, owner, len(y), meta.multilabel, meta.aggregate, temperature)
    extras, _ = extra_scores(meta, classes, None)
    resamples = draw_resamples(y, n_resamples=args.bootstrap, seed=args.seed) if args.bootstrap > 0 else None
    test = score_split(
        y, after, decide(after, choice), classes, meta.multilabel, extras, resamples, intervals=True
    )
    return test, y, before, after


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = find_runs(args.runs)
    meta, recipe = runs[0].meta, runs[0].recipe
    reader = get_reader(recipe.dataset, recipe.root, recipe.fs)
    sets = evaluation_sets(recipe, training_cache(recipe, meta, reader), reader.task(recipe.task))
    cands = candidates(runs)
    score_on_val(cands, sets["val"], meta, args.batch_size)
    winner = choose(cands, args.tie)
    temperature, val_after, choice = calibrate(winner, sets["val"], meta)
    test, y_test, test_before, test_after = score_test(winner, sets["test"], meta, temperature, choice, args)
    ece = lambda y, p: C.expected_calibration_error(y, p, meta.multilabel)  # noqa: E731
    eces = {"fold 9 (validation, where T was fitted)": (ece(sets["val"].y, winner.val_probs), ece(sets["val"].y, val_after)),
            "fold 10 (test)": (ece(y_test, test_before), ece(y_test, test_after))}  # fmt: skip
    write_weights(
        args.out, winner.network, shipped_meta(winner, temperature, choice), first_windows(sets["val"])
    )
    diagram = args.diagram or args.card.with_name(f"{args.name}_reliability.png")
    C.reliability_diagram(diagram, y_test, {"before (T = 1)": test_before, f"after (T = {temperature:.2f})": test_after},
                          meta.multilabel, f"{args.name}: fold 10 (test)")  # fmt: skip
    command = shlex.join(["python", "benchmarks/ship.py", *(argv if argv is not None else sys.argv[1:])])
    args.card.parent.mkdir(parents=True, exist_ok=True)
    write_text(
        args.card,
        card(
            args,
            runs,
            cands,
            winner,
            temperature,
            choice,
            test,
            eces,
            diagram,
            [*args.train_command, command],
        ),
    )
    print(f"{args.name}: chose {winner.name} (fold-9 macro AUC {winner.val_auc:.4f}), T = {temperature:.3f}; "
          f"fold 10 macro AUC {ci(test['macro_auc'])}; wrote {args.out}, {args.card}, {diagram}")  # fmt: skip


if __name__ == "__main__":
    main()
