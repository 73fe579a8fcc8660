"""Family tests for the baseline models: sizes against the notes, stage shapes, published layouts."""

import json
import math

import pytest
import torch

from ecglab.models import create_model, list_models
from ecglab.models.profile import count_macs
from ecglab.models.timefreq import Spectrogram
from helpers import run_cli

# The notes' thop figures at 12 x 1000 (CPSC 2018, 9 classes): MACs, parameters.
NOTES = {
    "resnet1d18": (176.57e6, 3.85e6),
    "resnet1d34": (357.74e6, 7.23e6),
    "mobilenetv2_1d": (96.60e6, 2.19e6),
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", sorted(NOTES))
def test_size_matches_the_notes(name):
    macs, params = NOTES[name]
    out = count_macs(create_model(name, 9), (1, 12, 1000))
    assert out["macs_layers"] == pytest.approx(macs, rel=0.10)
    assert out["params"] == pytest.approx(params, rel=0.10)


@pytest.mark.parametrize("name", ["resnet1d18", "mobilenetv2_1d", "xresnet1d101", "stft_resnet34"])
def test_stage_outputs_match_feature_info(name):
    model = create_model(name, 5).eval()
    shapes = {}

    def record(name):
        def hook(module, inputs, output):
            shapes[name] = output.shape

        return hook

    for f in model.feature_info:
        model.get_submodule(f["module"]).register_forward_hook(record(f["module"]))
    with torch.no_grad():
        model(torch.randn(1, 12, 1000))
    hop = model.spectrogram.hop if name.startswith("stft") else 1
    frames = 1000 // hop + (hop > 1)  # the centred STFT adds a frame
    for f in model.feature_info:
        assert shapes[f["module"]][1] == f["num_chs"]
        assert shapes[f["module"]][-1] == math.ceil(frames / (f["reduction"] // hop))


def test_resnet1d_layout():
    model = create_model("resnet1d34", 5)
    assert [len(s) for s in model.stages] == [3, 4, 6, 3]
    assert [f["reduction"] for f in model.feature_info] == [4, 4, 8, 16, 32]
    assert model.stem[0].conv.kernel_size == (7,) and model.stem[0].conv.stride == (2,)


def test_ptbxl_benchmark_layouts():
    xres = create_model("xresnet1d101", 5)
    assert [len(s) for s in xres.stages] == [3, 4, 23, 3] and xres.num_features == 2048
    assert xres.stages[1][0].convs[1].conv.kernel_size == (5,)
    inc = create_model("inception1d", 5)
    assert [c.kernel_size[0] for c in inc.stages[0].blocks[0].convs] == [
        39,
        19,
        9,
    ] and inc.num_features == 128
    wang = create_model("resnet1d_wang", 5)
    assert [f["num_chs"] for f in wang.feature_info] == [128] * 4
    assert wang.stages[0][0].conv1.conv.kernel_size == (5,) and wang.stages[0][0].conv2.conv.kernel_size == (
        3,
    )
    fcn = create_model("fcn_wang", 5)
    assert fcn.forward_features(torch.randn(1, 12, 100)).shape == (1, 128, 99)  # 8-tap, padding 3
    lstm = create_model("lstm_bidir", 5).rnn.lstm
    assert (lstm.hidden_size, lstm.num_layers, lstm.bidirectional) == (256, 2, True)
    for model in (xres, inc, wang, fcn):
        assert model.head_hidden_size == 128  # concat-pooling head with a 128-unit hidden layer


def test_spectrogram_is_a_hamming_stft_per_lead():
    x = torch.randn(2, 3, 1000)
    spec = Spectrogram(n_fft=100, hop=25)(x)
    assert spec.shape == (2, 3, 51, 41)
    ref = torch.stft(x[1, 2], 100, 25, window=torch.hamming_window(100), return_complex=True).abs().log1p()
    torch.testing.assert_close(spec[1, 2], ref)


def test_twostream_concatenates_both_streams():
    model = create_model("twostream_resnet", 5).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 12, 1000))
        time_feats = model.time.forward_features(torch.randn(1, 12, 1000))
    assert feats.shape == (1, 1024, time_feats.shape[-1])


def test_cli_lists_models_as_json():
    rows = json.loads(run_cli("models", "resnet*", "--json", env={"OMP_NUM_THREADS": "1"}).stdout)
    assert [r["name"] for r in rows] == list_models("resnet*")
    assert all(set(r) == {"name", "params", "macs", "macs_layers"} for r in rows)
    r18 = next(r for r in rows if r["name"] == "resnet1d18")
    assert r18["macs_layers"] == pytest.approx(NOTES["resnet1d18"][0], rel=0.10)
    assert r18["params"] == pytest.approx(NOTES["resnet1d18"][1], rel=0.10)
