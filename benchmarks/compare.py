"""Paired comparison of the benchmark's models: each model's test macro AUC minus the group leader's.

For every (dataset, task, budget) group of `benchmarks/results.csv`, the model with the highest test
macro AUC is the leader; every other model gets the difference to it with a paired bootstrap 95%
interval (the same resampled test records for both models, every class kept present), from the
record-level test predictions in the run folders. An interval that excludes 0 is a real difference
on this test fold; one that straddles 0 is not.

    .venv/bin/python benchmarks/compare.py --budget 15 --out benchmarks/comparison.md
    .venv/bin/python benchmarks/compare.py --budget 60 --out benchmarks/comparison_60min.md
    .venv/bin/python benchmarks/compare.py --budget 60 --task superdiagnostic --out benchmarks/comparison_60min_superdiagnostic.md
    .venv/bin/python benchmarks/compare.py --budget 15 --task rhythm --seed 1 --out benchmarks/comparison_rhythm_seed1.md

The run folders must be on this machine (they are not committed): run it where the bench ran.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import numpy as np

from ecglab.evaluate.bootstrap import bootstrap_ci
from ecglab.evaluate.metrics import roc_auc_score
from ecglab.train.bench import cells, model_label, read_results, read_spec


def run_dir(row: dict) -> Path:
    """The run folder of a results row: its cell in the spec named by the row's command."""
    spec_path = Path(next(a for a in shlex.split(row["command"]) if a.endswith((".yaml", ".yml"))))
    for config in cells(read_spec(spec_path), spec_path):
        same = (model_label(config), config.dataset, str(config.seed)) == (
            row["model"],
            row["dataset"],
            row["seed"],
        )
        if same and config.task in (row["task"], None):
            return Path(config.out) / config.run_name
    raise ValueError(f"{spec_path}: no cell for {row['model']} on {row['dataset']}/{row['task']}")


def macro_auc_difference(y_true: np.ndarray, a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int):
    """Macro AUC of `a` minus that of `b` over the classes with positives and negatives: (value, lo, hi)."""
    keep = (y_true.sum(0) > 0) & (y_true.sum(0) < len(y_true))

    def difference(y, pa, pb):
        return roc_auc_score(y[:, keep], pa[:, keep]) - roc_auc_score(y[:, keep], pb[:, keep])

    return bootstrap_ci(difference, y_true, a, b, n_resamples=n_resamples, seed=seed)


def compare(
    rows: list[dict],
    n_resamples: int = 1000,
    resample_seed: int = 0,
    budget: str | None = None,
    task: str | None = None,
    seed: str | None = None,
) -> str:
    """Markdown tables, one per (dataset, task, budget) group; only the groups of `budget` minutes
    and of `task`, and only the rows of `seed`, if given."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if budget is not None and f"{float(row.get('budget_minutes') or 0):g}" != f"{float(budget):g}":
            continue
        if task is not None and row["task"] != task:
            continue
        if seed is not None and str(row["seed"]) != str(seed):
            continue
        groups.setdefault((row["dataset"], row["task"], row.get("budget_minutes", "")), []).append(row)
    out = []
    for (dataset, task, budget), group in groups.items():
        group = sorted(group, key=lambda r: -float(r["macro_auc"]))
        leader = group[0]
        lead_dir = run_dir(leader)
        y = np.load(lead_dir / "predictions/test_true.npy")
        lead_probs = np.load(lead_dir / "predictions/test_probs.npy")
        title = f"{dataset} · {task}" + (f" · {float(budget):g}-minute budget" if budget else "")
        out += [f"### {title}", "", f"Leader: `{leader['model']}`, test macro AUC {float(leader['macro_auc']):.4f}.", "",
                "| model | macro AUC | minus the leader's [paired 95% CI] | differs? |", "| --- | ---: | --- | --- |"]  # fmt: skip
        for row in group[1:]:
            folder = run_dir(row)
            probs = np.load(folder / "predictions/test_probs.npy")
            if not np.array_equal(np.load(folder / "predictions/test_true.npy"), y):
                raise ValueError(f"{folder}: other test records than {lead_dir}; cannot pair them")
            value, lo, hi = macro_auc_difference(y, probs, lead_probs, n_resamples, resample_seed)
            verdict = "lower" if hi < 0 else "not distinguishable"
            out.append(
                f"| {row['model']} | {float(row['macro_auc']):.4f} | {value:+.4f} [{lo:+.4f}, {hi:+.4f}] | {verdict} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="benchmarks/results.csv")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--budget", help="compare only the rows of this training budget (minutes)")
    parser.add_argument("--task", help="compare only the rows of this task")
    parser.add_argument("--seed", help="compare only the rows of this seed (pairs runs of one seed)")
    parser.add_argument("--out", help="write the tables to this markdown file")
    args = parser.parse_args(argv)
    rows = read_results(Path(args.results))
    text = compare(rows, args.resamples, budget=args.budget, task=args.task, seed=args.seed)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
