"""`ablation`: the notes' ablation tables of InceptionFormer, written from a bench grid's runs.

Each table sets a group of variants against the default `inceptionformer` on the same dataset and
task: parameters, MACs, seconds per epoch, test macro AUC and F1 with 95% intervals, and the macro
AUC minus the default's with a paired bootstrap interval over the same test records (the reference
run of the same seed, else its first seed). That interval counts the test records only; each group
ends in a summary over seeds whose intervals also count the training noise, the spread of one
model's test AUC between seeds, pooled over the models run with several. Rows are found by their
bench label (`model_label`: the item's `label`, else the model name), as benchmarks/ablation.yaml
names them. A run that is in no table is listed under "Other runs", so nothing is dropped.
"""

from __future__ import annotations

from pathlib import Path

from ecglab.evaluate.paired import seed_mean_difference, seed_variance, verdict
from ecglab.train.tables import register_tables
from ecglab.train.tables.common import bench_row, ci, paired_cell, verdict_lines

REFERENCE = "inceptionformer"

# The notes' ablations, each a table: its title and the labels of its rows, in order.
TABLES: dict[str, list[str]] = {
    "Attention variants": [
        "inceptionformer", "inceptionformer_sr", "inceptionformer_biformer", "inceptionformer_window",
        "inceptionformer_swin", "inceptionformer_mobilevit", "inceptionformer_shunted",
        "inceptionformer_shunted-dw", "inceptionformer_hilo", "inceptionformer_convmod",
        "inceptionformer_convmod_cls",
    ],
    "Position encodings": [
        "inceptionformer", "inceptionformer_ape", "inceptionformer_rpb", "inceptionformer_cpe",
        "inceptionformer_lepe",
    ],
    "Stacking: cross, serial, parallel": ["inceptionformer", "inceptionformer_serial", "inceptionformer_parallel"],
    "Depths and widths": [
        "inceptionformer", "inceptionformer_d2482", "inceptionformer_s3", "inceptionformer_tiny",
    ],
    "Channel recalibration: SE, CA": ["inceptionformer", "inceptionformer_se", "inceptionformer_ca"],
    "SandwichNet": ["inceptionformer", "sandwichnet", "sandwichpro", "sandwichpro-dwffn"],
    "Fewer tokens and heads": [
        "inceptionformer", "inceptionformer_sparse", "inceptionformer-token-keep", "inceptionformer-head-keep",
    ],
    "Normalisation": ["inceptionformer", "inceptionformer-layernorm"],
    "Inputs: time, STFT, two-stream": ["inceptionformer", "resnet1d34", "stft_resnet34", "twostream_resnet"],
    "Augmentations": ["inceptionformer", "inceptionformer-augment"],
    "Learning-rate schedule: cosine, StepLR": ["inceptionformer", "inceptionformer-steplr"],
    "Baselines": ["inceptionformer", "resnet1d18", "resnet1d34", "mobilenetv2_1d"],
}  # fmt: skip

HEADER = [
    "| model | seed | params | MACs | s/epoch | macro AUC [95% CI] | macro F1 [95% CI] "
    f"| AUC minus {REFERENCE} [paired 95% CI] | differs? |",
    "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- |",
]


@register_tables("ablation")
def ablation_tables(runs: list[tuple[object, Path]]) -> str:
    """One section per (dataset, task, budget: minutes, else epochs), one table per ablation of the notes."""
    groups: dict[tuple, list[dict]] = {}
    for config, run_dir in runs:
        row = bench_row(config, run_dir)
        budget = f"{config.max_minutes:g}-minute budget" if config.max_minutes else f"{config.epochs} epochs"
        groups.setdefault((row["dataset"], row["task"], budget), []).append(row)
    out = ["# InceptionFormer ablations", ""]
    for (dataset, task, budget), group in groups.items():
        out += [f"## {dataset} · {task} · {budget}", ""]
        references = sorted((r for r in group if r["model"] == REFERENCE), key=lambda r: r["seed"])
        if not references:
            out += [f"No `{REFERENCE}` run in this group: differences are not paired.", ""]
        for title, labels in [*TABLES.items(), ("Other runs", None)]:
            rows = _table_rows(group, labels)
            if any(row["model"] != REFERENCE for row in rows):  # a table of the reference alone says nothing
                out += [f"### {title}", "", *HEADER]
                out += [_line(row, _reference(references, row)) for row in rows] + [""]
        if references and len(group) > len(references):
            out += _over_seeds(group, references)
    return "\n".join(out)


def _over_seeds(group: list[dict], references: list[dict]) -> list[str]:
    """The group's summary: each variant's mean test macro AUC over its seeds against the default's,
    with an interval that counts the test records and the training noise, then the verdicts."""
    by_model: dict[str, list[dict]] = {}
    for row in group:
        by_model.setdefault(row["model"], []).append(row)
    variance, dof = seed_variance([[r["macro_auc"] for r in rows] for rows in by_model.values()])
    out = [f"### Summary over seeds: every variant against {REFERENCE}", ""]
    if not dof:
        return out + [
            "No model has two seeds yet, so the training noise is unknown and no verdict is given.",
            "",
        ]
    several = sum(len(rows) > 1 for rows in by_model.values())
    out += [
        f"Training noise: one model's test macro AUC differs between seeds by a pooled SD of {variance**0.5:.4f} "
        f"(models with several seeds: {several}; degrees of freedom: {dof}). Each interval adds it to the paired "
        "bootstrap over the test records, so a difference is called only where reseeding alone would not "
        "explain it. The rows above pair one seed with one seed on the test records only.",
        "",
        f"| model | seeds | mean macro AUC | minus {REFERENCE}'s mean [95% CI, test records and seeds] | differs? |",
        "| --- | --- | ---: | --- | --- |",
    ]
    compared = []
    for model, rows in by_model.items():
        if model == REFERENCE:
            continue
        rows = sorted(rows, key=lambda r: r["seed"])
        value, lo, hi = seed_mean_difference(
            [r["run_dir"] for r in rows],
            [r["run_dir"] for r in references],
            (variance, dof),
            rows[0]["resamples"],
        )
        compared.append((model, (value, lo, hi)))
        mean = sum(r["macro_auc"] for r in rows) / len(rows)
        seeds = ", ".join(str(r["seed"]) for r in rows)
        out.append(
            f"| {model} | {seeds} | {mean:.4f} | {value:+.4f} [{lo:+.4f}, {hi:+.4f}] | {verdict(lo, hi)} |"
        )
    return out + ["", *verdict_lines(compared), ""]


def _table_rows(group: list[dict], labels: list[str] | None) -> list[dict]:
    """The group's rows of these labels in their order (seeds ascending); None: rows in no table."""
    if labels is None:
        listed = {label for names in TABLES.values() for label in names}
        return sorted((r for r in group if r["model"] not in listed), key=lambda r: (r["model"], r["seed"]))
    rows = [r for r in group if r["model"] in labels]
    return sorted(rows, key=lambda r: (labels.index(r["model"]), r["seed"]))


def _reference(references: list[dict], row: dict) -> dict | None:
    same_seed = [r for r in references if r["seed"] == row["seed"]]
    return (same_seed or references or [None])[0]


def _line(row: dict, reference: dict | None) -> str:
    """The row's table line, with its difference from the reference paired on the test records."""
    seed = "" if reference is None or reference["seed"] == row["seed"] else f" (seed {reference['seed']})"
    paired, _ = paired_cell(row, reference, seed)
    return (
        f"| {row['model']} | {row['seed']} | {row['params'] / 1e6:.2f} M | {row['macs'] / 1e6:.0f} M "
        f"| {row['seconds_per_epoch']} | {ci(row, 'macro_auc')} | {ci(row, 'macro_f1')} | {paired} |"
    )
