"""Paired comparison of the benchmark's models: each model's test macro AUC minus the group leader's.

For every (dataset, task, budget) group of `benchmarks/results.csv`, the model with the highest test
macro AUC is the leader (or the `--reference` model, where one is named); every other model gets the
difference to it with a paired bootstrap 95%
interval (the same resampled test records for both models, every class kept present), from the
record-level test predictions in the run folders. An interval that excludes 0 is a real difference
on this test fold; one that straddles 0 is not.

    .venv/bin/python benchmarks/compare.py --budget 15 --out benchmarks/comparison.md
    .venv/bin/python benchmarks/compare.py --budget 60 --out benchmarks/comparison_60min.md
    .venv/bin/python benchmarks/compare.py --budget 60 --task superdiagnostic --out benchmarks/comparison_60min_superdiagnostic.md
    .venv/bin/python benchmarks/compare.py --budget 15 --dataset ptbxl --task rhythm --seed 1 --out benchmarks/comparison_rhythm_seed1.md
    .venv/bin/python benchmarks/compare.py --dataset cinc2017 --out benchmarks/comparison_cinc2017.md
    .venv/bin/python benchmarks/compare.py --results benchmarks/results.csv benchmarks/literature_reference.csv \
        --budget 15 --seed 0 --reference mobilenetv2_1d --out benchmarks/comparison_literature.md

The run folders are not committed, but bench archives what pairing reads of each (predictions
without labels, under `benchmarks/archive/`), so rows of earlier sessions pair on any machine with the
data. Rows with neither (measured before the archive existed, or overwritten by a later run of the
same cell) are named under their group, not paired.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import numpy as np

from ecglab.evaluate.paired import run_difference, verdict
from ecglab.train.bench import cells, model_label, read_results, read_spec
from ecglab.train.run_archive import archive_root, run_folder


def run_dir(row: dict) -> Path | None:
    """The run folder of a results row: its cell in the spec named by the row's command, on this
    machine or archived beside the spec's results table (ecglab.train.run_archive); None if neither."""
    spec_path = Path(next(a for a in shlex.split(row["command"]) if a.endswith((".yaml", ".yml"))))
    spec = read_spec(spec_path)
    archive = archive_root(Path(spec.get("results", "benchmarks/results.csv")), spec_path)
    for config in cells(spec, spec_path):
        same = (model_label(config), config.dataset, str(config.seed)) == (
            row["model"],
            row["dataset"],
            row["seed"],
        )
        if same and config.task in (row["task"], None):
            return run_folder(config, archive)
    raise ValueError(f"{spec_path}: no cell for {row['model']} on {row['dataset']}/{row['task']}")


def row_run_dir(row: dict) -> Path | None:
    """The row's run folder if it is on this machine or archived and holds that row's run (the same
    test macro AUC in its metrics.json: a later run of the same cell overwrites the folder); otherwise None."""
    try:
        folder = run_dir(row)
        if folder is None:
            return None
        tested = json.loads((folder / "metrics.json").read_text())["test"]["macro_auc"]["value"]
    except (ValueError, OSError, KeyError):
        return None
    return folder if np.isclose(tested, float(row["macro_auc"])) else None


def compare(
    rows: list[dict],
    n_resamples: int = 1000,
    resample_seed: int = 0,
    budget: str | None = None,
    task: str | None = None,
    seed: str | None = None,
    dataset: str | None = None,
    reference: str | None = None,
) -> str:
    """Markdown tables, one per (dataset, task, budget) group; only the groups of `budget` minutes,
    `task` and `dataset`, and only the rows of `seed`, if given. Differences are taken against the
    `reference` model's run present on this machine where given, else against the group's leader."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if budget is not None and f"{float(row.get('budget_minutes') or 0):g}" != f"{float(budget):g}":
            continue
        if task is not None and row["task"] != task:
            continue
        if seed is not None and str(row["seed"]) != str(seed):
            continue
        if dataset is not None and row["dataset"] != dataset:
            continue
        groups.setdefault((row["dataset"], row["task"], row.get("budget_minutes", "")), []).append(row)
    out = []
    for (dataset, task, budget), group in groups.items():
        group = sorted(group, key=lambda r: -float(r["macro_auc"]))
        located = [(row, row_run_dir(row)) for row in group]
        present = [(row, folder) for row, folder in located if folder is not None]
        absent = [row for row, folder in located if folder is None]
        title = f"{dataset} · {task}" + (f" · {float(budget):g}-minute budget" if budget else "")
        out += [f"### {title}", ""]
        if absent:
            runs = ", ".join(
                f"`{r['model']}` (seed {r['seed']}, {float(r['macro_auc']):.4f}, commit {r['commit'][:7]})"
                for r in absent
            )
            out += [f"Not paired, their run folders are not on this machine: {runs}.", ""]
        if len(present) < 2:
            continue
        anchor = next((i for i, (row, _) in enumerate(present) if row["model"] == reference), 0)
        (leader, lead_dir), followers = present[anchor], present[:anchor] + present[anchor + 1 :]
        role = "Reference" if leader["model"] == reference else "Leader"
        out += [f"{role}{' of the runs present' if absent else ''}: `{leader['model']}`, test macro AUC {float(leader['macro_auc']):.4f}.", "",
                f"| model | macro AUC | minus the {role.lower()}'s [paired 95% CI] | differs? |", "| --- | ---: | --- | --- |"]  # fmt: skip
        for row, folder in followers:
            value, lo, hi = run_difference(folder, lead_dir, n_resamples, resample_seed)
            out.append(
                f"| {row['model']} | {float(row['macro_auc']):.4f} | {value:+.4f} [{lo:+.4f}, {hi:+.4f}] | {verdict(lo, hi)} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", default=["benchmarks/results.csv"], help="results table(s)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--budget", help="compare only the rows of this training budget (minutes)")
    parser.add_argument("--task", help="compare only the rows of this task")
    parser.add_argument("--dataset", help="compare only the rows of this dataset")
    parser.add_argument("--seed", help="compare only the rows of this seed (pairs runs of one seed)")
    parser.add_argument("--reference", help="pair every model with this model's run instead of the leader's")
    parser.add_argument("--out", help="write the tables to this markdown file")
    args = parser.parse_args(argv)
    rows = [row for path in args.results for row in read_results(Path(path))]
    text = compare(
        rows,
        args.resamples,
        budget=args.budget,
        task=args.task,
        seed=args.seed,
        dataset=args.dataset,
        reference=args.reference,
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
