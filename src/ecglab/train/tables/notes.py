"""The notes' tables: per-class test F1 with macro F1 and AUC, per dataset, under two decision rules.

The notes report each model as a row of per-class F1 on the test fold beside the macro F1 and AUC,
once at thresholds tuned on the validation fold and once at the fixed 0.5. Both rules come from
the run folder: the tuned thresholds are those `ecglab evaluate` chose on validation predictions
only (metrics.json), and 0.5 needs no choice. A multi-class task (Chapman) decides by argmax under
both rules, so its two tables agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ecglab.checkpoint_meta import read_meta
from ecglab.evaluate.evaluate import decide, load_predictions, score_split
from ecglab.train.bench import model_label
from ecglab.train.tables import register_tables

FIXED = 0.5


def rules(meta, metrics: dict, val_fold: int) -> list[tuple[str, dict]]:
    """(title, decision rule) pairs: the thresholds tuned on validation, then the fixed 0.5."""
    tuned = metrics["thresholds"]
    if not meta.multilabel:
        return [("argmax (multi-class: no threshold applies)", tuned)]
    fixed = {"values": {c: FIXED for c in meta.classes}}
    return [(f"thresholds tuned on fold {val_fold}", tuned), (f"fixed threshold {FIXED:g}", fixed)]


def run_scores(config, run: Path) -> dict:
    """One run's test scores under each rule: per-class F1, macro F1, macro AUC, and the classes."""
    meta = read_meta(run / "checkpoint" / "config.json")
    metrics = json.loads((run / "metrics.json").read_text())
    classes = list(meta.classes)
    y_true, probs = load_predictions(run, "test", classes)
    out = {}
    for title, rule in rules(meta, metrics, config.val_fold):
        scores = score_split(
            y_true, probs, decide(probs, rule), classes, meta.multilabel, {}, None, intervals=False
        )
        f1 = {c: scores["per_class"][c]["f1"] for c in classes}
        out[title] = {"f1": f1, "macro_f1": scores["macro_f1"], "macro_auc": scores["macro_auc"]}
    return {"classes": classes, "records": len(y_true), "rules": out}


@register_tables("notes")
def notes_tables(runs: list) -> str:
    """Markdown: for each (dataset, task), one table per decision rule, a row per model."""
    groups: dict[tuple[str, str], list] = {}
    for config, run in runs:
        groups.setdefault((config.dataset, config.task or "default"), []).append((config, run))
    out = ["# The notes' tables", "",
           "Test fold F1 per class, with macro F1 and macro AUC (AUC does not depend on the threshold).", ""]  # fmt: skip
    for (dataset, task), group in groups.items():
        scored = [(config, run_scores(config, run)) for config, run in group]
        classes = scored[0][1]["classes"]
        out += [
            f"## {dataset} · {task} · {len(classes)} classes · {scored[0][1]['records']} test records",
            "",
        ]
        for title in scored[0][1]["rules"]:
            out += [f"### {title}", "", _header(classes)]
            for config, scores in scored:
                out.append(_row(model_label(config), classes, scores["rules"][title]))
            out.append("")
    return "\n".join(out)


def _header(classes: list[str]) -> str:
    names = ["model", *classes, "macro F1", "macro AUC"]
    return "| " + " | ".join(names) + " |\n| --- |" + " ---: |" * (len(names) - 1)


def _row(label: str, classes: list[str], scores: dict) -> str:
    values = [*(scores["f1"][c] for c in classes), scores["macro_f1"], scores["macro_auc"]]
    return f"| {label} | " + " | ".join(_fmt(v) for v in values) + " |"


def _fmt(value) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.4f}"
