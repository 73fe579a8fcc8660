"""One record explained, the same for `ecglab explain` and the server: predict, pick the class,
compute the relevance, title the figure and draw it on ECG paper.

The caller saves the figure (`plot.save_figure`) where it wants it. A server passes its locks:
`network` is held while the model runs (Grad-CAM hooks fire on every forward pass), `drawing`
while matplotlib draws (it shares cached fonts between figures).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from ecglab.infer.files import Recording, select_leads
from ecglab.infer.predictor import Prediction, Predictor


@dataclass(frozen=True)
class Explanation:
    prediction: Prediction
    target: str  # the class explained
    probability: float
    method: str  # e.g. "Grad-CAM at stages.2", "attention"
    figure: Any  # a matplotlib Figure


def check_class(predictor: Predictor, class_name: str | None) -> None:
    """A ValueError naming the model's classes when `class_name` is given and not one of them."""
    if class_name is not None and class_name not in predictor.classes:
        raise ValueError(f"unknown class {class_name!r}; the model's classes: {', '.join(predictor.classes)}")


def explain_record(
    predictor: Predictor, rec: Recording, record: str, class_name: str | None = None, *,
    layer: str | None = None, attention: bool = False,
    network: contextlib.AbstractContextManager | None = None,
    drawing: contextlib.AbstractContextManager | None = None,
) -> Explanation:  # fmt: skip
    """Explain `class_name` (default: the top-scoring class) for `rec`, named `record` in the result and title."""
    from ecglab.explain.plot import plot_ecg
    from ecglab.explain.relevance import record_relevance

    check_class(predictor, class_name)
    with network or contextlib.nullcontext():
        result = predictor.predict(rec, record)
        probs = result.probabilities
        target = class_name or max(probs, key=probs.get)
        relevance, method = record_relevance(
            predictor, rec, predictor.classes.index(target), layer, attention
        )
    title = f"{record}   ·   {target}  p = {probs[target]:.2f}   ·   {method}   ·   model {predictor.name}"
    note = "; ".join(
        [f"shaded: {method} relevance for {target}", *(f"WARNING: {w}" for w in result.warnings)]
    )
    leads = predictor.lead_names
    with drawing or contextlib.nullcontext():
        figure = plot_ecg(select_leads(rec, leads), rec.fs, leads, relevance, title=title, note=note)
    return Explanation(result, target, probs[target], method, figure)
