"""`distill`: the distillation-to-one-lead table (issue 18), written from a bench grid's runs.

One table per dataset and task. A run is a 12-lead teacher (another run of the group names it in
`distill.teacher`), a student distilled from it, a run started from another run's weights
(`init.path`), or a network trained from scratch. Every row has its leads, parameters, MACs,
seconds per epoch, test macro AUC and F1 (and the dataset's challenge score) with 95% intervals,
and two paired differences of macro AUC over the same test records: minus the same network trained
from scratch on the same leads and seed (what the teacher or the start adds), and minus the group's
12-lead teacher (the gap one lead leaves).
"""

from __future__ import annotations

import json
from pathlib import Path

from ecglab.checkpoint_meta import read_meta
from ecglab.train.tables import register_tables
from ecglab.train.tables.common import bench_row, ci, interval, paired_cell


def _row(config, run_dir: Path) -> dict:
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    meta = read_meta(Path(run_dir) / "checkpoint/config.json")
    if config.distill.teacher:
        start = f"{config.distill.method} distillation from {Path(config.distill.teacher).name}"
    elif config.init.path:
        start = f"{config.init.mode} from {Path(config.init.path).parent.name}"
    else:
        start = "scratch"
    return bench_row(config, run_dir) | {
        "name": Path(run_dir).name, "leads": tuple(meta.lead_names), "start": start,
        "teacher": Path(config.distill.teacher).name if config.distill.teacher else None,
        "scores": {name: metrics["test"][name] for name in metrics.get("challenge", {})},
    }  # fmt: skip


@register_tables("distill")
def distill_tables(runs: list[tuple[object, Path]]) -> str:
    """Markdown: per (dataset, task), every run against scratch on its leads and against the teacher."""
    groups: dict[tuple, list[dict]] = {}
    for config, run_dir in runs:
        row = _row(config, run_dir)
        groups.setdefault((row["dataset"], row["task"]), []).append(row)
    out = ["# Distillation to one lead", ""]
    for (dataset, task), group in groups.items():
        out += [f"## {dataset} · {task}", ""]
        teachers = {row["teacher"] for row in group if row["teacher"]}
        scores = list(dict.fromkeys(name for row in group for name in row["scores"]))
        out += _header(scores)
        for row in group:
            out.append(_line(row, group, teachers, scores))
        out.append("")
    return "\n".join(out)


def _header(scores: list[str]) -> list[str]:
    columns = ["run", "seed", "leads", "start", "params", "MACs", "s/epoch", "epochs", "macro AUC [95% CI]",
               "macro F1 [95% CI]", *(f"{name} [95% CI]" for name in scores),
               "AUC minus scratch, same leads [paired 95% CI]", "differs?",
               "AUC minus 12-lead teacher [paired 95% CI]", "differs?"]  # fmt: skip
    align = ["---", "---:", "---", "---", "---:", "---:", "---:", "---:"] + ["---"] * (len(columns) - 8)
    return ["| " + " | ".join(columns) + " |", "| " + " | ".join(align) + " |"]


def _line(row: dict, group: list[dict], teachers: set[str], scores: list[str]) -> str:
    if row["name"] in teachers:
        against_scratch = against_teacher = "– | teacher"
    else:
        scratch = [r for r in group if r["start"] == "scratch" and r["name"] not in teachers
                   and r["leads"] == row["leads"] and r["seed"] == row["seed"]]  # fmt: skip
        teacher = [r for r in group if r["name"] in teachers and r["seed"] == row["seed"]]
        against_scratch = paired_cell(row, (scratch or [None])[0])[0]
        against_teacher = paired_cell(row, teacher[0])[0] if teacher else "no teacher on these records | "
    leads = ", ".join(row["leads"]) if len(row["leads"]) < 4 else f"{len(row['leads'])} leads"
    cells = [row["model"], row["seed"], leads, row["start"], f"{row['params'] / 1e6:.2f} M",
             f"{row['macs'] / 1e6:.0f} M", row["seconds_per_epoch"], row["epochs"], ci(row, "macro_auc"),
             ci(row, "macro_f1"), *(interval(row["scores"].get(name)) for name in scores)]  # fmt: skip
    return "| " + " | ".join(str(c) for c in cells) + f" | {against_scratch} | {against_teacher} |"
