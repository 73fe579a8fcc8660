"""The evaluation report: ROC, precision-recall, confusion and training-curve PNGs, and one HTML page.

The page embeds the PNGs as base64, so `report.html` opens in a browser on its own; the PNGs
are also written beside it. matplotlib is imported here only, through its object API (no
pyplot), so drawing needs no display and keeps no global state.
"""

from __future__ import annotations

import base64
import csv
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ecglab.evaluate.metrics import (
    average_precision_score,
    confusion_matrix,
    multilabel_confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

DPI = 90


def _grid(n: int, panel: float = 2.4):
    from matplotlib.figure import Figure

    cols = min(n, 6)
    rows = math.ceil(n / cols)
    width, height = panel * cols + 0.6, panel * rows + 0.5
    fig = Figure(figsize=(width, height))
    # fixed margins in inches: faster than a layout engine, and the panels are all alike
    fig.subplots_adjust(left=0.6 / width, right=1 - 0.15 / width, bottom=0.5 / height, top=1 - 0.3 / height)
    fig.subplots_adjust(wspace=0.35, hspace=0.45)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[:n]:
        ax.set_xticks([0, 0.5, 1])
        ax.set_yticks([0, 0.5, 1])
    return fig, axes[:n]


def plot_roc(y_true, y_score, classes: Sequence[str], path: Path) -> Path:
    """One ROC panel per class, with its AUC; a class without positives or negatives is left blank."""
    fig, axes = _grid(len(classes))
    for k, (ax, cls) in enumerate(zip(axes, classes, strict=True)):
        ax.plot([0, 1], [0, 1], color="0.8", lw=0.8)
        y = np.asarray(y_true)[:, k]
        if 0 < y.sum() < len(y):
            fpr, tpr, _ = roc_curve(y, np.asarray(y_score)[:, k])
            ax.plot(fpr, tpr, lw=1.2)
            ax.set_title(f"{cls}  AUC {roc_auc_score(y, np.asarray(y_score)[:, k]):.3f}", fontsize=8)
        else:
            ax.set_title(f"{cls}  (undefined)", fontsize=8)
        ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal")
        ax.tick_params(labelsize=6)
    fig.supxlabel("false positive rate", fontsize=8)
    fig.supylabel("true positive rate", fontsize=8)
    return _save(fig, path)


def plot_pr(y_true, y_score, classes: Sequence[str], path: Path, *, y_pred=None) -> Path:
    """One precision-recall panel per class; a dot marks the operating point of the decisions `y_pred`."""
    fig, axes = _grid(len(classes))
    yt, ys = np.asarray(y_true), np.asarray(y_score)
    for k, (ax, cls) in enumerate(zip(axes, classes, strict=True)):
        if yt[:, k].sum() > 0:
            precision, recall, _ = precision_recall_curve(yt[:, k], ys[:, k])
            ax.step(recall, precision, where="post", lw=1.2)
            ax.axhline(yt[:, k].mean(), color="0.8", lw=0.8)  # a classifier with no skill
            ax.set_title(f"{cls}  AP {average_precision_score(yt[:, k], ys[:, k]):.3f}", fontsize=8)
            if y_pred is not None:
                p = np.asarray(y_pred)[:, k]
                tp = float((p * yt[:, k]).sum())
                ax.plot(tp / yt[:, k].sum(), tp / p.sum() if p.sum() else 1.0, "o", ms=4, color="C3")
        else:
            ax.set_title(f"{cls}  (no positives)", fontsize=8)
        ax.set(xlim=(0, 1), ylim=(0, 1.01))
        ax.tick_params(labelsize=6)
    fig.supxlabel("recall", fontsize=8)
    fig.supylabel("precision", fontsize=8)
    return _save(fig, path)


def plot_confusion(y_true, y_pred, classes: Sequence[str], path: Path, *, multilabel: bool) -> Path:
    """Multi-class: the K x K matrix, shaded by row share. Multi-label: one 2 x 2 matrix per class."""
    if multilabel:
        return _plot_confusion_per_class(multilabel_confusion_matrix(y_true, y_pred), classes, path)
    from matplotlib.figure import Figure

    cm = confusion_matrix(y_true, y_pred, num_classes=len(classes))
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = max(3.5, 0.5 * len(classes) + 1.5)
    fig = Figure(figsize=(size, size), layout="constrained")
    ax = fig.subplots()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(cm):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if share[i, j] > 0.5 else "black",
        )
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set(xlabel="predicted class", ylabel="true class")
    return _save(fig, path)


def _plot_confusion_per_class(cms: np.ndarray, classes: Sequence[str], path: Path) -> Path:
    fig, axes = _grid(len(classes), panel=1.8)
    for ax, cls, cm in zip(axes, classes, cms, strict=True):
        share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(cm):
            ax.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share[i, j] > 0.5 else "black",
            )
        ax.set_xticks([0, 1], ["pred -", "pred +"], fontsize=6)
        ax.set_ylim(1.5, -0.5)
        ax.set_yticks([0, 1], ["true -", "true +"], fontsize=6)
        ax.set_title(cls, fontsize=8)
    return _save(fig, path)


def read_history(path: Path) -> dict[str, np.ndarray]:
    """`history.csv` as columns of floats (empty cells become NaN)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {key: np.array([_float(r.get(key)) for r in rows]) for key in rows[0]}


def plot_history(history: Mapping[str, np.ndarray], path: Path) -> Path:
    """Losses, validation macro AUC and F1, and the learning rate against the epoch."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3))
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.9, wspace=0.3)
    loss_ax, score_ax, lr_ax = fig.subplots(1, 3)
    epoch = history.get("epoch", np.arange(1, len(next(iter(history.values()))) + 1))
    for ax, keys, title in (
        (loss_ax, ("train_loss", "val_loss"), "loss"),
        (score_ax, ("val_macro_auc", "val_macro_f1"), "validation scores"),
        (lr_ax, ("lr",), "learning rate"),
    ):
        for key in keys:
            if key in history and np.isfinite(history[key]).any():
                ax.plot(epoch, history[key], marker=".", label=key)
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.lines:
            ax.legend(fontsize=7)
    if lr_ax.lines and np.all(history["lr"][np.isfinite(history["lr"])] > 0):
        lr_ax.set_yscale("log")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _float(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def write_report(
    out_dir: str | Path,
    metrics: Mapping,
    *,
    y_true,
    y_score,
    y_pred,
    history: str | Path | None = None,
    config_text: str | None = None,
) -> Path:
    """Draw the plots of the test fold into `out_dir` and write `report.html`; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes, multilabel = metrics["run"]["classes"], metrics["run"]["multilabel"]
    images = {
        "ROC curves (test)": plot_roc(y_true, y_score, classes, out / "roc.png"),
        "Precision-recall curves (test)": plot_pr(y_true, y_score, classes, out / "pr.png", y_pred=y_pred),
        "Confusion (test)": plot_confusion(
            y_true, y_pred, classes, out / "confusion.png", multilabel=multilabel
        ),
    }
    if history is not None and Path(history).is_file() and (columns := read_history(Path(history))):
        images["Training curves"] = plot_history(columns, out / "training_curves.png")
    page = out / "report.html"
    page.write_text(render_html(metrics, images, config_text=config_text), encoding="utf-8")
    return page


# ------------------------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
"""

_CONFUSION_NOTE = {
    True: "Multi-label: one 2x2 matrix per class (rows: truly negative / positive; columns: decided negative / "
    "positive at the class's threshold); cells hold record counts, shaded by row share.",
    False: "Multi-class: rows are the true classes, columns the argmax decisions; cells hold record counts, "
    "shaded by the share of the row.",
}


def _esc(x) -> str:
    return html.escape(str(x))


def _fmt(entry) -> str:
    """`value [lo, hi]` for a bootstrapped metric, the value alone for a point estimate, n/a for null."""
    if isinstance(entry, Mapping):
        if entry.get("value") is None:
            return "n/a"
        if entry.get("lo") is None:
            return f"{entry['value']:.3f}"
        return f"{entry['value']:.3f} [{entry['lo']:.3f}, {entry['hi']:.3f}]"
    return "n/a" if entry is None else f"{entry:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _summary_table(metrics: Mapping) -> str:
    test, val = metrics["test"], metrics["val"]
    names = [
        k for k, v in test.items() if isinstance(v, Mapping) and k not in ("per_class", "excluded_from_macro")
    ]
    names += [k for k, v in test.items() if isinstance(v, int | float | type(None)) and k != "n_records"]
    rows = [(name, _fmt(test[name]), _fmt(val.get(name))) for name in names]
    return _table(("metric", "test, value [95% CI]", "val (point estimate)"), rows)


def _class_table(metrics: Mapping) -> str:
    thresholds = metrics["thresholds"]["values"] or {}
    cols = ("f1", "precision", "recall", "auc", "average_precision")
    rows = []
    for cls, entry in metrics["test"]["per_class"].items():
        t = thresholds.get(cls)
        rows.append(
            (cls, *(_fmt(entry[c]) for c in cols), entry["support"], "argmax" if t is None else f"{t:.4f}")
        )
    return _table(("class", "F1", "precision", "recall", "AUC", "AP", "support", "threshold"), rows)


def _run_table(run: Mapping) -> str:
    keys = ("dataset", "task", "model", "model_kwargs", "num_classes", "in_chans", "fs", "window_samples")
    keys += (
        "data_manifest_hash",
        "git_commit",
        "ecglab_version",
        "evaluated_with",
        "evaluated_at",
        "run_dir",
    )
    return _table(("", ""), [(k, run.get(k)) for k in keys])


def _image(title: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<h3>{_esc(title)}</h3>\n<img alt="{_esc(title)}" title="{_esc(Path(path).name)}" src="data:image/png;base64,{data}">'


def render_html(metrics: Mapping, images: Mapping[str, Path], *, config_text: str | None = None) -> str:
    """The report page: run details, thresholds, metrics with CIs, per-class table, notes and plots."""
    run, th, boot = metrics["run"], metrics["thresholds"], metrics["bootstrap"]
    excluded = metrics["test"].get("excluded_from_macro") or {}
    parts = [
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>ecglab evaluation: {_esc(run.get('model'))} "
        f"on {_esc(run.get('dataset'))}</title><style>{_CSS}</style></head><body>",
        f"<h1>Evaluation: {_esc(run.get('model'))} on {_esc(run.get('dataset'))} / {_esc(run.get('task'))}</h1>",
        _run_table(run),
        "<h2>Decision thresholds</h2>",
        f"<p>Method: <b>{_esc(th['method'])}</b>; chosen on: <b>{_esc(th['source'] or 'nothing (argmax)')}</b>. "
        f"<span class='note'>{_esc(th['note'])}</span></p>",
        "<h2>Test metrics</h2>",
        f"<p class='note'>{metrics['test']['n_records']} test records; 95% CIs from {boot['n_resamples']} bootstrap "
        f"resamples ({_esc(boot.get('interval', ''))}).</p>",
        _summary_table(metrics),
        "<h2>Per class (test)</h2>",
        _class_table(metrics),
    ]
    if excluded:
        parts.append(_table(("left out of the macro averages", "why"), list(excluded.items())))
    if challenge := metrics.get("challenge"):
        parts.append(_table(("challenge", ""), list(challenge.items())))
    notes = list(metrics.get("notes", [])) + [_CONFUSION_NOTE[bool(run["multilabel"])]]
    parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Plots</h2>")
    parts += [_image(title, path) for title, path in images.items()]
    if config_text:
        parts.append(
            f"<h2>Training config</h2><details><summary>config.yaml</summary><pre>{_esc(config_text)}</pre></details>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)
