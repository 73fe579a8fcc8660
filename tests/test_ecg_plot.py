"""The 12-lead paper figure: exact paper scale, the grid, the layouts, and the files it writes."""

import re

import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.image import AxesImage

from ecglab.explain.plot import (
    MM_PER_INCH,
    STANDARD_LEADS,
    figure_size_mm,
    output_paths,
    page_start,
    plot_ecg,
    save_figure,
)

FS = 100.0


def synthetic(leads: int, seconds: float, fs: float = FS) -> np.ndarray:
    """Spiky beats at 75 bpm, lead k scaled by (k + 1) / leads, in mV."""
    t = np.arange(int(seconds * fs)) / fs
    beat = np.exp(-0.5 * (((t % 0.8) - 0.3) / 0.015) ** 2)
    return np.stack([beat * (k + 1) / leads for k in range(leads)]).astype(np.float32)


def _paper(fig):
    return next(ax for ax in fig.axes if ax.get_gid() == "ecg-paper")


def _mm_per_unit(fig, ax) -> tuple[float, float]:
    """Millimetres on the saved figure per second (x) and per millivolt (y), from the data-to-display transform."""
    (x0, y0), (x1, y1) = ax.transData.transform([(0.0, 0.0), (1.0, 1.0)])
    return (x1 - x0) / fig.dpi * MM_PER_INCH, (y1 - y0) / fig.dpi * MM_PER_INCH


def test_paper_speed_and_gain_are_exact():
    fig = plot_ecg(synthetic(12, 10), FS, list(STANDARD_LEADS))
    per_s, per_mv = _mm_per_unit(fig, _paper(fig))
    assert per_s == pytest.approx(25.0, abs=1e-6) and per_mv == pytest.approx(10.0, abs=1e-6)
    width, height = figure_size_mm(5 - 1)
    assert fig.get_figwidth() * MM_PER_INCH == pytest.approx(width)
    assert fig.get_figheight() * MM_PER_INCH == pytest.approx(height)
    fig.set_dpi(300)  # the scale holds at any dpi
    assert _mm_per_unit(fig, _paper(fig)) == pytest.approx((25.0, 10.0))


def test_millimetre_grid_minor_1mm_major_5mm():
    ax = _paper(plot_ecg(synthetic(12, 10), FS, list(STANDARD_LEADS)))
    grids = {c.get_gid(): c for c in ax.collections if isinstance(c, LineCollection)}
    for gid, mm in (("grid-minor", 1.0), ("grid-major", 5.0)):
        segs = grids[gid].get_segments()
        xs = sorted({round(s[0][0], 6) for s in segs if s[0][0] == s[1][0]})  # vertical lines
        ys = sorted({round(s[0][1], 6) for s in segs if s[0][1] == s[1][1]})  # horizontal lines
        assert np.allclose(np.diff(xs), mm / 25.0) and np.allclose(np.diff(ys), mm / 10.0)
        red, green, blue, _ = grids[gid].get_colors()[0]
        assert red > green and red > blue  # pink
    assert grids["grid-minor"].get_zorder() < min(line.get_zorder() for line in ax.lines)


def _labels(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_standard_layout_twelve_panels_and_a_rhythm_strip():
    x = synthetic(12, 10)
    names = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]  # PTB-XL spelling
    ax = _paper(plot_ecg(x, FS, names, np.linspace(0, 1, x.shape[-1])))
    assert _labels(ax) == ["I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5", "III", "aVF", "V3", "V6", "II"]
    traces = [line for line in ax.lines if line.get_gid() is None and len(line.get_xdata()) > 10]
    assert len(traces) == 13
    assert traces[-1].get_xdata()[-1] == pytest.approx(9.99)  # the rhythm strip spans the page
    assert traces[1].get_xdata()[0] == pytest.approx(2.5)  # aVR starts the second column
    assert len([line for line in ax.lines if line.get_gid() == "calibration"]) == 4
    assert len([im for im in ax.images if isinstance(im, AxesImage)]) == 13  # one relevance band per panel


def test_fewer_leads_and_longer_records():
    rel = np.zeros(3000)
    rel[1200:1300] = 1.0
    fig = plot_ecg(synthetic(1, 30), FS, ["ECG"], rel)  # 1 lead, 30 s -> three 10 s rows from 0 s
    assert _labels(_paper(fig)) == ["ECG"] * 3 and "0.0-30.0 s of 30.0 s" in fig.texts[-1].get_text()
    ax = _paper(plot_ecg(synthetic(3, 10), FS, ["I", "II", "V1"]))
    assert _labels(ax) == ["I", "II", "V1"]
    rel[:] = 0.0
    rel[2500:2600] = 1.0
    assert page_start(rel, FS, 3000) == pytest.approx(16.0)  # the 10 s holding the relevance
    assert page_start(None, FS, 3000) == 0.0


def test_mismatched_inputs_are_errors():
    with pytest.raises(ValueError, match="lead names"):
        plot_ecg(synthetic(3, 10), FS, ["I", "II"])
    with pytest.raises(ValueError, match="does not match"):
        plot_ecg(synthetic(3, 10), FS, ["I", "II", "III"], np.zeros(10))
    with pytest.raises(ValueError, match="unknown figure format"):
        output_paths("figure.txt")


def test_png_and_svg_written_at_paper_size(tmp_path):
    from PIL import Image

    x = synthetic(12, 10)
    fig = plot_ecg(
        x, FS, list(STANDARD_LEADS), np.linspace(0, 1, x.shape[-1]), title="record 1 · SR p = 0.97"
    )
    assert output_paths(tmp_path / "a") == [tmp_path / "a.png", tmp_path / "a.svg"]
    png, svg = save_figure(fig, tmp_path / "a", dpi=100)
    width, height = figure_size_mm(4)
    with Image.open(png) as im:
        assert im.size == (int(width / MM_PER_INCH * 100), int(height / MM_PER_INCH * 100))
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    assert (pixels.sum(axis=1) < 150).mean() > 0.005  # black trace
    assert ((pixels[:, 0] > 200) & (pixels[:, 1] < 200)).mean() > 0.01  # pink grid
    text = svg.read_text()
    svg_width_pt = float(re.search(r'<svg[^>]* width="([\d.]+)pt"', text).group(1))
    assert svg_width_pt == pytest.approx(width / MM_PER_INCH * 72, abs=0.01)  # 1 mm of paper = 1 mm of SVG
    assert 'id="grid-minor"' in text and "record 1" in text
    assert png.stat().st_size > 50_000 and svg.stat().st_size > 50_000
    assert save_figure(fig, tmp_path / "b.svg") == [tmp_path / "b.svg"]
