"""Temperature scaling, the expected calibration error and the reliability diagram on hand-made cases;
the temperature carried by a checkpoint into the torch runtime and the ONNX file alike."""

import json

import numpy as np
import pytest

from ecglab.checkpoint_meta import CheckpointMeta
from ecglab.evaluate.calibration import (
    expected_calibration_error,
    fit_temperature,
    record_probabilities,
    reliability_diagram,
    window_probabilities,
)
from ecglab.infer.predictor import Predictor
from infer_helpers import make_checkpoint


def test_ece_of_a_hand_made_multilabel_case():
    # two bins: (0, 0.5] holds 0.1, 0.3, 0.35 (mean 0.25, one of three positive), (0.5, 1] holds 0.9 (positive)
    y = np.array([[0, 1], [0, 1]])
    p = np.array([[0.1, 0.3], [0.35, 0.9]])
    expected = 3 / 4 * abs(1 / 3 - 0.25) + 1 / 4 * abs(1.0 - 0.9)
    assert expected_calibration_error(y, p, multilabel=True, n_bins=2) == pytest.approx(expected)


def test_ece_of_one_of_k_uses_the_top_class_confidence():
    y = np.eye(3)[[0, 1, 2, 0]]
    p = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]])
    # confidences 0.8 (right), 0.6 (wrong), 0.6 (right), 0.9 (right); 10 bins: (0.5,0.6] {0.6, 0.6}, (0.7,0.8] {0.8}, (0.8,0.9] {0.9}
    expected = 2 / 4 * abs(0.5 - 0.6) + 1 / 4 * abs(1 - 0.8) + 1 / 4 * abs(1 - 0.9)
    assert expected_calibration_error(y, p, multilabel=False, n_bins=10) == pytest.approx(expected)


@pytest.mark.parametrize("multilabel", [True, False])
def test_fitted_temperature_recovers_a_known_one(multilabel):
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (20_000, 3))
    if multilabel:
        y = (rng.random(true_logits.shape) < 1 / (1 + np.exp(-true_logits))).astype(int)
    else:
        p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
        y = np.eye(3, dtype=int)[[rng.choice(3, p=row) for row in p]]
    overconfident = true_logits * 2.5  # a model whose logits are 2.5 times too large: T = 2.5 undoes it
    assert fit_temperature(overconfident, y, multilabel) == pytest.approx(2.5, rel=0.05)
    before = record_probabilities(overconfident, np.arange(len(y)), len(y), multilabel)
    after = record_probabilities(overconfident, np.arange(len(y)), len(y), multilabel, temperature=2.5)
    assert (
        expected_calibration_error(y, after, multilabel)
        < expected_calibration_error(y, before, multilabel) / 3
    )


def test_record_probabilities_average_each_records_windows_at_the_temperature():
    logits = np.array([[2.0], [-2.0], [4.0]])
    probs = record_probabilities(logits, np.array([0, 0, 1]), 2, True, temperature=2.0)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    np.testing.assert_allclose(probs[:, 0], [(sig(1.0) + sig(-1.0)) / 2, sig(2.0)])


@pytest.mark.filterwarnings("error")
def test_extreme_logits_give_exact_probabilities_without_overflow():
    logits = np.array([[-1000.0, 0.0, 1000.0]])
    np.testing.assert_array_equal(window_probabilities(logits, True), [[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(window_probabilities(logits, False).sum(axis=1), 1.0)
    assert window_probabilities(logits, False)[0, 2] == 1.0


def test_reliability_diagram_is_a_png(tmp_path):
    y = np.array([[0, 1], [1, 0]])
    path = reliability_diagram(tmp_path / "d.png", y, {"before": np.array([[0.2, 0.9], [0.7, 0.1]]),
                               "after": np.array([[0.3, 0.8], [0.6, 0.2]])}, True, "test")  # fmt: skip
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_old_config_without_temperature_loads_as_one(tmp_path):
    folder = make_checkpoint(tmp_path / "ckpt")
    data = json.loads((folder / "config.json").read_text())
    del data["temperature"]
    assert CheckpointMeta.from_json(data).temperature == 1.0
    with pytest.raises(ValueError, match="temperature -1.0 must be positive"):
        CheckpointMeta.from_json(data | {"temperature": -1.0})


def test_temperature_divides_the_logits_in_torch_and_inside_the_onnx_graph(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from ecglab.infer.onnx_cache import cached_onnx_path
    from ecglab.infer.onnx_export import export_onnx

    plain = make_checkpoint(tmp_path / "plain")
    hot = make_checkpoint(tmp_path / "hot", temperature=3.0)
    x = np.random.default_rng(0).standard_normal((4, 12, 1000)).astype(np.float32)
    raw = Predictor.from_checkpoint(plain).run(x)
    torch_run = Predictor.from_checkpoint(hot)
    np.testing.assert_allclose(torch_run.run(x), raw / 3.0, rtol=1e-5, atol=1e-6)
    export_onnx(hot)
    onnx_run = Predictor.from_checkpoint(hot, runtime="onnx")
    for windows in (x, x[:1]):
        np.testing.assert_allclose(
            onnx_run.probabilities(windows), torch_run.probabilities(windows), rtol=0, atol=1e-5
        )
    assert not np.allclose(
        torch_run.probabilities(x), Predictor.from_checkpoint(plain).probabilities(x), atol=1e-3
    )
    # Grad-CAM still reads the bare network (no wrapper in the way of its layer names)
    assert torch_run.model.feature_info[-1]["module"] in dict(torch_run.model.named_modules())
    # the ONNX cache's name changes with the temperature, so a re-calibrated model is re-exported
    monkeypatch.setenv("ECGLAB_CACHE", str(tmp_path / "cache"))
    before = cached_onnx_path(hot)
    data = json.loads((hot / "config.json").read_text())
    (hot / "config.json").write_text(json.dumps(data | {"temperature": 2.0}))
    assert cached_onnx_path(hot) != before
