"""The distinctive mechanism of each literature model: beats, bands, token selection, auxiliary losses, MIL."""

import numpy as np
import pytest
import torch

from ecglab.infer.synthetic import synthetic_ecg
from ecglab.models import create_model
from ecglab.models.dual_branch_transformer import TokenSelect, rr_loss
from ecglab.models.layers.beats import beat_centres, detect_r_peaks, fill_padding, gather_beats
from ecglab.models.layers.windows import sliding_windows
from ecglab.models.mina import FrequencyBands, KnowledgeAttention
from ecglab.models.mmil_ecg import TopInstanceFusion, gramian_angular_field

pytestmark = pytest.mark.usefixtures("one_thread")


def _true_r_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    """Where lead II of the synthetic ECG is highest within each 0.3 s around a beat: its R peaks."""
    lead = x[1]
    above = np.flatnonzero(lead > 0.6 * lead.max())
    groups = np.split(above, np.flatnonzero(np.diff(above) > 0.3 * fs) + 1)
    return np.array([g[np.argmax(lead[g])] for g in groups])


@pytest.mark.parametrize("fs", [100, 500])
@pytest.mark.parametrize("rhythm", ["sinus", "afib"])
def test_r_peaks_of_a_synthetic_ecg(fs, rhythm):
    x = synthetic_ecg(rhythm, fs=fs, seed=3)
    truth = _true_r_peaks(x, fs)
    found = detect_r_peaks(x, fs)
    assert len(found) == len(truth)
    assert np.abs(found - truth).max() <= 0.03 * fs  # within 30 ms


def test_no_peak_falls_back_to_fixed_windows():
    x = torch.zeros(2, 12, 1000)
    x[1] = torch.from_numpy(synthetic_ecg(fs=100)[:, :1000])
    centres, valid = beat_centres(x, fs=100, window=70)
    assert detect_r_peaks(x[0].numpy(), 100).size == 0
    n_fallback = len(range(35, 1000, 70))
    assert centres[0, :n_fallback].tolist() == list(range(35, 1000, 70))
    assert valid[0].sum() == n_fallback and valid[1].sum() == len(detect_r_peaks(x[1].numpy(), 100))
    model = create_model("beat_transformer", 3).eval()
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()
    short, short_valid = beat_centres(torch.zeros(1, 1, 3), fs=100, window=70)
    assert short.tolist() == [[1]] and short_valid.all()  # shorter than half a window: one centred window


def test_gather_beats_cuts_windows_around_centres():
    x = torch.arange(20.0).view(1, 1, 20)
    beats = gather_beats(x, torch.tensor([[0, 10, 19]]), before=2, after=3)
    assert beats.shape == (1, 3, 1, 5)
    assert beats[0, 1, 0].tolist() == [8, 9, 10, 11, 12]
    assert beats[0, 0, 0].tolist() == [0, 0, 0, 1, 2]  # zero-padded before the record
    assert beats[0, 2, 0].tolist() == [17, 18, 19, 0, 0]


def test_padding_beats_do_not_change_a_records_mean():
    feats = torch.tensor([[[1.0, 3.0, 100.0]]])
    filled = fill_padding(feats, torch.tensor([[True, True, False]]))
    assert filled.mean(-1).item() == 2.0


def test_beat_transformer_result_does_not_depend_on_batch_companions():
    torch.manual_seed(0)
    model = create_model("beat_transformer", 3, fs=100).eval()
    slow = torch.from_numpy(synthetic_ecg(fs=100, heart_rate=50, seed=1)[None])
    fast = torch.from_numpy(synthetic_ecg(fs=100, heart_rate=110, seed=2)[None])
    with torch.no_grad():
        alone = model(slow)
        together = model(torch.cat([slow, fast]))[:1]
    torch.testing.assert_close(alone, together, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fs", [100, 500])
def test_mina_bands_partition_the_spectrum(fs):
    bands = FrequencyBands(fs)
    n = 60 * fs
    t = torch.arange(n) / fs
    x = (torch.randn(1, 2, n)).float()
    torch.testing.assert_close(bands(x).sum(dim=1), x, rtol=0, atol=1e-5)  # the bands add up to the input
    tones = {0: 0.1, 1: 10.0, 2: 100.0}  # drift, ECG, noise
    inner = slice(5 * fs, n - 5 * fs)  # away from the zero-padded ends
    for band, hz in tones.items():
        if hz >= fs / 2:
            continue
        out = bands(torch.sin(2 * np.pi * hz * t).view(1, 1, n))[0, :, 0, inner]
        energy = out.square().sum(dim=-1)
        assert energy.argmax() == band and energy[band] > 0.95 * energy.sum(), (hz, energy)


def test_mina_noise_band_is_empty_at_100_hz():
    x = torch.from_numpy(synthetic_ecg(fs=100)).unsqueeze(0)
    assert FrequencyBands(100)(x)[:, 2].abs().max() < 1e-5


def test_sliding_windows_overlap_and_cover_the_record():
    x = torch.arange(10.0)
    w = sliding_windows(x, 4, 2)
    assert w.tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]
    assert sliding_windows(torch.arange(5.0), 4, 2)[-1].tolist() == [2, 3, 4, 0]


def test_mina_knowledge_guides_attention():
    att = KnowledgeAttention(dim=4, knowledge_dim=1, att_dim=3)
    h = torch.zeros(1, 6, 4)  # the network's features give no preference
    flat = att(h, torch.ones(1, 6, 1))
    torch.testing.assert_close(flat, torch.full((1, 6), 1 / 6))
    guided = att(h, torch.arange(6.0).view(1, 6, 1))
    assert torch.allclose(guided.sum(-1), torch.ones(1)) and guided.std() > 1e-3


def test_mina_attentions_at_three_levels_are_distributions():
    model = create_model("mina", 2, in_chans=1).eval()
    seen = {}
    for name in ("branches.1.beat_att", "branches.1.rhythm_att", "freq_att"):
        model.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: seen.setdefault(name, o))
    x = torch.from_numpy(synthetic_ecg(fs=100)[1:2]).unsqueeze(0)
    with torch.no_grad():
        feats = model.forward_features(x)
    n_segments = sliding_windows(x, model.seg_len, model.step).shape[-2]
    assert feats.shape == (1, model.num_features, n_segments)
    assert seen["branches.1.rhythm_att"].shape == (1, n_segments) and seen["freq_att"].shape == (1, 3)
    for weights in seen.values():
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_rr_loss_is_one_minus_pearson_correlation():
    a, b = torch.randn(4, 16), torch.randn(4, 16)
    r = torch.stack([torch.corrcoef(torch.stack([a[i], b[i]]))[0, 1] for i in range(4)])
    torch.testing.assert_close(rr_loss(a, b), (1 - r).mean())
    assert rr_loss(a, 2 * a + 1).abs() < 1e-6
    assert (rr_loss(a, -a) - 2).abs() < 1e-6


@pytest.mark.parametrize("name", ["dual_branch_transformer", "crnn_multimodule"])
def test_aux_loss_only_in_training_mode(name):
    torch.manual_seed(0)
    model = create_model(name, 3).train()
    x = torch.randn(2, 12, 500)
    out = model(x)
    assert set(out) == {"logits", "aux_loss"} and out["aux_loss"].ndim == 0 and out["aux_loss"] > 0
    model.eval()
    assert isinstance(model(x), torch.Tensor)


def test_dual_branch_aux_loss_is_weighted_rr_of_the_cls_tokens():
    torch.manual_seed(0)
    model = create_model("dual_branch_transformer", 3, rr_weight=0.5).train()
    x = torch.randn(2, 12, 500)
    torch.manual_seed(1)
    out = model(x)
    feats = model.forward_features(x)
    d = model.num_features // 2
    torch.testing.assert_close(out["aux_loss"], 0.5 * rr_loss(feats[:, :d, 0], feats[:, d:, 0]))


def test_crnn_reconstruction_loss_falls_as_the_autoencoder_learns():
    torch.manual_seed(0)
    model = create_model("crnn_multimodule", 3, in_chans=1).train()
    x = torch.sin(torch.linspace(0, 40, 256)).expand(4, 1, 256).contiguous()
    params = list(model.encoder.parameters()) + list(model.decoder.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    first = None
    for _ in range(40):
        loss = model.reconstruction_loss(model.encoder(x), x)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
    torch.testing.assert_close(
        model(x)["aux_loss"].detach(), 0.1 * model.reconstruction_loss(model.encoder(x), x).detach()
    )


def test_token_selection_keeps_the_most_attended_tokens_in_order():
    tokens = torch.arange(10.0).view(1, 10, 1).expand(2, 10, 3)
    attn = torch.tensor([[0.0, 9, 1, 8, 2, 7, 3, 6, 4, 5], [9.0, 8, 7, 6, 5, 4, 3, 2, 1, 0]])
    kept, idx = TokenSelect(0.4)(tokens, attn)
    assert idx.tolist() == [[1, 3, 5, 7], [0, 1, 2, 3]]
    assert kept[..., 0].tolist() == [[1, 3, 5, 7], [0, 1, 2, 3]]


def test_dual_branch_map_has_cls_first_and_zeros_where_tokens_were_dropped():
    model = create_model("dual_branch_transformer", 3).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 12, 800))
    d = model.num_features // 2
    fine = feats[0, :d, 1:]
    dropped = (fine.abs().sum(dim=0) == 0).float().mean().item()
    assert abs(dropped - (1 - model.branches[0].select.keep)) < 0.05
    torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats[:, :, 0])


def test_gaf_is_the_cosine_of_summed_angles():
    x = torch.randn(3, 20)
    gaf = gramian_angular_field(x)
    lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    phi = torch.arccos((2 * (x - lo) / (hi - lo) - 1).clamp(-1, 1))
    torch.testing.assert_close(gaf, torch.cos(phi[..., :, None] + phi[..., None, :]), rtol=1e-4, atol=1e-4)


def test_mil_picks_the_max_activated_real_instance():
    fusion = TopInstanceFusion(dim=4, out_dim=8)
    inst = torch.zeros(2, 5, 4)
    inst[0, 3, 2] = 5.0
    inst[1, 1, 0] = 2.0
    inst[1, 4, 1] = 9.0  # larger, but padding
    valid = torch.tensor([[True] * 5, [True, True, True, True, False]])
    assert fusion.top_instance(inst, valid).tolist() == [3, 1]


def test_mil_bag_ignores_padding_instances():
    torch.manual_seed(0)
    model = create_model("mmil_ecg", 3).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.from_numpy(synthetic_ecg(fs=100)).unsqueeze(0))
        assert (feats[0, -1] == 1).all()  # every instance of a lone record is real
        pad = feats[..., :1].clone()
        pad[:, :-1] = 50.0  # a huge padded instance
        pad[:, -1] = 0.0
        torch.testing.assert_close(
            model.forward_head(torch.cat([feats, pad], dim=-1)), model.forward_head(feats)
        )
