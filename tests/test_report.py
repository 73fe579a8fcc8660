"""The HTML report: self-contained, every plot embedded, the metrics and thresholds on the page."""

from __future__ import annotations

import base64
import html
import json

import numpy as np

from ecglab.evaluate import evaluate_run
from ecglab.evaluate.report import plot_history, read_history, render_html
from test_evaluate import CINC2017, make_run


def test_report_embeds_every_plot_and_shows_the_metrics(tmp_path):
    run = make_run(tmp_path)
    result = evaluate_run(run, n_bootstrap=50)
    assert result["report"] == "report/report.html"
    page = (run / "report" / "report.html").read_text()
    pngs = sorted(p.name for p in (run / "report").glob("*.png"))
    assert pngs == ["confusion.png", "pr.png", "roc.png", "training_curves.png"]
    for name in pngs:
        png = (run / "report" / name).read_bytes()
        assert png.startswith(b"\x89PNG")
        assert base64.b64encode(png).decode() in page, name
    assert page.count("<img ") == 4 and 'src="data:image/png;base64,' in page
    test = result["test"]
    for key in ("macro_f1", "macro_auc", "exact_match_accuracy"):
        entry = test[key]
        assert f"{entry['value']:.3f} [{entry['lo']:.3f}, {entry['hi']:.3f}]" in page, key
    for cls, t in result["thresholds"]["values"].items():
        assert f"<td>{cls}</td>" in page and f"{t:.4f}" in page
    for text in ("per_class", "val", "resnet1d18", "ptbxl", "0123456789abcdef", "abc123", "epochs: 3"):
        assert html.escape(text) in page, text
    assert json.loads((run / "metrics.json").read_text())["report"] == "report/report.html"


def test_multiclass_report_without_history(tmp_path):
    run = make_run(tmp_path, classes=CINC2017, multilabel=False, dataset="cinc2017", history=False)
    result = evaluate_run(run, n_bootstrap=20)
    page = (run / "report" / "report.html").read_text()
    assert not (run / "report" / "training_curves.png").exists()
    assert page.count("<img ") == 3
    assert "cinc2017_score" in page and "argmax" in page
    assert html.escape("~") in page and f"{result['test']['accuracy']['value']:.3f}" in page


def test_render_html_copes_with_missing_values(tmp_path):
    metrics = {
        "run": {"model": "m<1>", "dataset": "d", "task": "t", "classes": ["A"], "multilabel": True},
        "thresholds": {"method": "per_class", "source": "val", "note": "n", "values": {"A": 0.5}},
        "bootstrap": {"n_resamples": 0},
        "test": {
            "n_records": 3,
            "macro_f1": {"value": None, "lo": None, "hi": None},
            "macro_auc": {"value": 0.5, "lo": None, "hi": None},
            "per_class": {
                "A": {k: {"value": None} for k in ("f1", "precision", "recall", "auc", "average_precision")}
                | {"support": 0},
            },
            "excluded_from_macro": {"A": "no positive record"},
        },
        "val": {"macro_f1": None},
        "notes": [],
    }
    page = render_html(metrics, {})
    assert "m&lt;1&gt;" in page and "n/a" in page and "0.500" in page and "no positive record" in page


def test_history_reader_and_plot(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(
        "epoch,train_loss,val_loss,val_macro_auc,val_macro_f1,lr,seconds\n1,0.9,1.0,0.7,,0.001,3\n2,0.5,0.8,0.8,0.6,0.0005,3\n"
    )
    history = read_history(path)
    np.testing.assert_array_equal(history["epoch"], [1, 2])
    assert np.isnan(history["val_macro_f1"][0])
    out = plot_history(history, tmp_path / "curves.png")
    assert out.read_bytes().startswith(b"\x89PNG")
