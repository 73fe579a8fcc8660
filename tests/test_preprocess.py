import numpy as np
import pytest

from ecglab.data.preprocess import (
    apply_filter,
    bandpass,
    fit_length,
    normalize,
    remove_baseline,
    resample,
    sliding_windows,
    window_starts,
)


def tone(freq, fs, seconds=10.0, leads=2):
    t = np.arange(int(fs * seconds)) / fs
    return np.tile(np.sin(2 * np.pi * freq * t), (leads, 1)).astype(np.float32)


def test_resample_keeps_an_in_band_tone():
    x = tone(5.0, 500)
    y = resample(x, 500, 100)
    assert y.shape == (2, 1000) and y.dtype == np.float32
    np.testing.assert_allclose(y[:, 100:-100], tone(5.0, 100)[:, 100:-100], atol=0.01)


def test_resample_filters_what_would_alias():
    # 70 Hz is above the 50 Hz Nyquist of 100 Hz: plain decimation would fold it to 30 Hz.
    y = resample(tone(70.0, 500), 500, 100)
    assert np.abs(y[:, 100:-100]).max() < 0.02


def test_resample_to_a_rational_rate():
    assert resample(tone(1.0, 300, 9.0), 300, 100).shape == (2, 900)
    assert resample(tone(1.0, 257, 10.0), 257, 100).shape[-1] == 1000


def test_bandpass_and_baseline_remove_wander():
    drift = tone(0.1, 100) * 2.0
    ecg = tone(8.0, 100) * 0.5
    for out in (bandpass(drift + ecg, 100), remove_baseline(drift + ecg, 100)):
        mid = slice(200, -200)
        assert np.abs(out[:, mid] - ecg[:, mid]).mean() < 0.15
    assert apply_filter(ecg, 100, "none") is ecg
    with pytest.raises(ValueError, match="unknown filter 'notch'"):
        apply_filter(ecg, 100, "notch")


def test_fit_length_modes():
    x = np.arange(10, dtype=np.float32)[None]
    assert fit_length(x, 4, "centre").tolist() == [[3, 4, 5, 6]]
    assert fit_length(x, 4, "start").tolist() == [[0, 1, 2, 3]]
    crop = fit_length(x, 4, "random", np.random.default_rng(0))
    assert crop.shape == (1, 4) and np.all(np.diff(crop) == 1)
    padded = fit_length(x, 14, "centre")
    assert (
        padded.shape == (1, 14)
        and padded[0, :2].tolist() == [0, 0]
        and padded[0, 2] == 0
        and padded[0, 3] == 1
    )
    assert fit_length(x, 12, "start")[0, -2:].tolist() == [0, 0]


def test_sliding_windows_cover_the_record():
    assert window_starts(25, 10).tolist() == [0, 10, 15]
    assert window_starts(25, 10, 5).tolist() == [0, 5, 10, 15]
    assert window_starts(8, 10).tolist() == [0]
    x = np.arange(25, dtype=np.float32)[None]
    w = sliding_windows(x, 10)
    assert w.shape == (3, 1, 10) and w[-1, 0, -1] == 24


def test_normalize_per_lead():
    x = np.stack([np.linspace(0, 10, 100), np.linspace(-1, 1, 100)]).astype(np.float32)
    z = normalize(x)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-4)
    assert normalize(x, "none") is x
