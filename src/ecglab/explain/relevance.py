"""The relevance of every sample of a recording, computed as `ecglab predict` sees the recording."""

from __future__ import annotations

import numpy as np

from ecglab.data.preprocess import normalize
from ecglab.explain.attention import attention_relevance
from ecglab.explain.gradcam import default_layer, grad_cam, grad_cam_leads, keeps_leads


def record_relevance(predictor, rec, class_index: int, layer: str | None = None, attention: bool = False):
    """The relevance map on the file's own time base ((samples,) or (leads, samples)) and its method's name.

    The model sees the record as `predict` does: its leads, resampled and filtered, z-scored per window;
    a record shorter than one window is zero-padded at both ends and the map cropped back.
    """
    net = predictor.model
    if net is None:
        raise ValueError(f"{predictor.name}: explanations need the PyTorch model, not an ONNX session")
    x, valid, _ = predictor.prepare(rec)
    n = predictor.window_samples
    options = {"window": n, "prepare": lambda w: normalize(w, predictor.norm)}
    if attention:
        relevance, method = attention_relevance(net, x, **options), "attention"
    elif keeps_leads(net, x.shape[0], n, layer):
        relevance, method = grad_cam_leads(net, x, class_index, layer, **options), "Grad-CAM per lead"
    else:
        relevance, method = grad_cam(net, x, class_index, layer, **options), "Grad-CAM"
    if not attention:
        method += f" at {layer or default_layer(net)}"
    length = valid.stop - valid.start
    relevance = relevance[..., valid]
    t_model = np.arange(length) / predictor.fs
    t_file = np.arange(rec.x.shape[-1]) / rec.fs
    on_file = [np.interp(t_file, t_model, r) for r in relevance.reshape(-1, length)]
    return np.stack(on_file).reshape(*relevance.shape[:-1], -1).astype(np.float32), method
