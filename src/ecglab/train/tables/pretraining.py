"""`pretraining`: the self-supervised pretraining grid (issue 18), written from a bench grid's runs.

A run's row is told by its recipe: no `init` is supervised training from scratch, `init.path:
random` a randomly initialised frozen encoder under linear evaluation, and an encoder folder a
pretraining (named by its run folder, `<bench>/pretrain/<name>`) under linear evaluation or
fine-tuning. For each dataset one table: a row per (label fraction, model, pretraining,
evaluation, seed), and per task the test macro AUC with its 95% interval and the difference to
supervised training from scratch of the same model, fraction and seed, with a paired bootstrap
interval over the same test records (`ecglab.evaluate.paired`). A second table sets every linear
evaluation against the random frozen encoder, and a summary lists each comparison by verdict. Rows
run with several seeds get each seed's difference and their mean, with an interval that also counts
the spread between seeds (`seed_paired_difference`), and a verdict over seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecglab.evaluate.paired import seed_paired_difference, verdict
from ecglab.train.config import RANDOM_ENCODER
from ecglab.train.tables import register_tables
from ecglab.train.tables.common import interval, paired_cell, verdict_lines

SCRATCH, RANDOM = "scratch", "random init"


def describe(config) -> dict:
    """What a run is in the grid: its pretraining ('scratch', 'random init' or the run's name) and evaluation."""
    path = config.init.path
    if path is None:
        method, evaluation = SCRATCH, "supervised"
    else:
        method = RANDOM if path == RANDOM_ENCODER else Path(path).parent.name
        evaluation = "linear" if config.init.mode == "linear" else "fine-tune"
    return {"method": method, "evaluation": evaluation, "fraction": config.label_fraction,
            "model": config.model, "seed": config.seed}  # fmt: skip


def _rows(runs: list) -> list[dict]:
    rows = []
    for config, run_dir in runs:
        auc = json.loads((Path(run_dir) / "metrics.json").read_text())["test"]["macro_auc"]
        rows.append(describe(config) | {"dataset": config.dataset, "task": config.task or "default",
                                        "auc": auc, "run_dir": Path(run_dir),
                                        "resamples": 50 if config.dry_run else config.bootstrap})  # fmt: skip
    return rows


def _order(row: dict) -> tuple:
    rank = {SCRATCH: 0, RANDOM: 1}.get(row["method"], 2)
    return row["fraction"], row["model"], rank, row["method"], row["evaluation"] != "linear", row["seed"]


def _find(rows: list[dict], like: dict, method: str, evaluation: str) -> dict | None:
    same = ("dataset", "task", "model", "fraction", "seed")
    return next(
        (r for r in rows if r["method"] == method and r["evaluation"] == evaluation
         and all(r[k] == like[k] for k in same)), None,
    )  # fmt: skip


def _name(key: tuple) -> str:
    fraction, model, method, evaluation, seed = key
    return f"{method} {evaluation} ({model}, {100 * fraction:g}% of labels, seed {seed})"


@register_tables("pretraining")
def pretraining_tables(runs: list) -> str:
    """Markdown: per dataset, the grid against scratch, linear evaluations against a random encoder, a summary."""
    rows = _rows(runs)
    out = ["# Self-supervised pretraining: linear evaluation and fine-tuning by share of labels", ""]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        group = [r for r in rows if r["dataset"] == dataset]
        tasks = list(dict.fromkeys(r["task"] for r in group))
        verdicts: dict[str, list[tuple[str, tuple]]] = {}
        out += [f"## {dataset}", "", "### Against supervised training from scratch", ""]
        out += _grid(group, tasks, SCRATCH, "supervised", verdicts)
        linear = [r for r in group if r["evaluation"] == "linear"]
        if any(r["method"] != RANDOM for r in linear):
            out += ["### Linear evaluation against a random frozen encoder", ""]
            out += _grid(linear, tasks, RANDOM, "linear", {})
        out += _summary(verdicts, group)
    return "\n".join(out)


def _grid(group: list[dict], tasks: list[str], method: str, evaluation: str, verdicts: dict) -> list[str]:
    """A table of every (fraction, model, method, evaluation, seed) of `group`, one column pair per task."""
    reference = f"{method} ({evaluation})" if method != SCRATCH else "scratch"
    header = "| labels | model | pretraining | evaluation | seed |"
    header += "".join(
        f" {t} macro AUC [95% CI] | {t} minus {reference} [paired 95% CI] | differs? |" for t in tasks
    )
    lines = [header, "| ---: | --- | --- | --- | ---: |" + " --- | --- | --- |" * len(tasks)]
    keys = dict.fromkeys(
        (r["fraction"], r["model"], r["method"], r["evaluation"], r["seed"])
        for r in sorted(group, key=_order)
    )
    for key in keys:
        fraction, model, method_, evaluation_, seed = key
        line = f"| {100 * fraction:g}% | {model} | {method_} | {evaluation_} | {seed} |"
        for task in tasks:
            row = next((r for r in group if r["task"] == task and key == _key(r)), None)
            if row is None:
                line += " – | – | – |"
                continue
            cell, result = paired_cell(row, _find(group, row, method, evaluation))
            line += f" {interval(row['auc'])} | {cell} |"
            if result is not None:
                verdicts.setdefault(task, []).append((key, result))
        lines.append(line)
    return lines + [""]


def _key(row: dict) -> tuple:
    return row["fraction"], row["model"], row["method"], row["evaluation"], row["seed"]


def _summary(verdicts: dict, group: list[dict]) -> list[str]:
    """Per task, the comparisons with scratch grouped by verdict, then those run with several seeds
    over their seeds."""
    out = []
    for task, items in verdicts.items():
        out += [
            f"### Summary: {task}, against scratch",
            "",
            *verdict_lines([(_name(k), r) for k, r in items]),
            "",
        ]
    for task in verdicts:
        out += _over_seeds(task, [r for r in group if r["task"] == task])
    return out


def _over_seeds(task: str, rows: list[dict]) -> list[str]:
    """The rows run with several seeds against scratch of the same seed: each seed's difference, and
    their mean with an interval that counts the test records and the spread between seeds (a seed
    draws another label subset and another initialisation, which no single row's interval holds)."""
    pairs: dict[tuple, list[tuple[dict, dict]]] = {}
    for row in sorted(rows, key=_order):
        reference = _find(rows, row, SCRATCH, "supervised")
        if row["method"] != SCRATCH and reference is not None:
            pairs.setdefault(_key(row)[:-1], []).append((row, reference))
    several = {key: seeds for key, seeds in pairs.items() if len(seeds) > 1}
    if not several:
        return []
    out = [f"### Over seeds: {task}, against scratch of the same seed", "",
           "| labels | model | pretraining | evaluation | seeds | each seed's difference "
           "| mean [95% CI, test records and seeds] | differs? |",
           "| ---: | --- | --- | --- | ---: | --- | --- | --- |"]  # fmt: skip
    compared = []
    for (fraction, model, method, evaluation), seeds in several.items():
        each = ", ".join(
            f"{row['auc']['value'] - ref['auc']['value']:+.4f} (s{row['seed']})" for row, ref in seeds
        )
        value, lo, hi = seed_paired_difference(
            [row["run_dir"] for row, _ in seeds],
            [ref["run_dir"] for _, ref in seeds],
            seeds[0][0]["resamples"],
        )
        name = f"{method} {evaluation} ({model}, {100 * fraction:g}% of labels, {len(seeds)} seeds)"
        compared.append((name, (value, lo, hi)))
        out.append(f"| {100 * fraction:g}% | {model} | {method} | {evaluation} | {len(seeds)} | {each} "
                   f"| {value:+.4f} [{lo:+.4f}, {hi:+.4f}] | {verdict(lo, hi)} |")  # fmt: skip
    return out + ["", *verdict_lines(compared), ""]
