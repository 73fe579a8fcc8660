"""The 12-lead printout: millimetre paper at 25 mm/s and 10 mm/mV, with a relevance map behind the trace.

The axes' data units are seconds and millivolts, and the figure is sized so that one millimetre of
paper is one millimetre of the saved PNG (at its dpi) or SVG. Twelve standard leads get the paper
layout: 3 rows x 4 columns of 2.5 s (I aVR V1 V4 / II aVL V2 V5 / III aVF V3 V6) and a 10 s rhythm
strip of lead II. Other lead sets get one 10 s row per lead; a single lead continues in time over up
to six rows (a 60 s CinC 2017 record fits one page).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

MM_PER_S = 25.0
MM_PER_MV = 10.0
MM_PER_INCH = 25.4
PAGE_S = 10.0  # seconds across the page
COLUMN_S = 2.5
ROW_MV = 3.0  # row pitch: 30 mm
CAL_S = 0.4  # room left of the traces for the calibration pulse
MARGIN_MM = {"left": 8.0, "right": 8.0, "top": 16.0, "bottom": 10.0}
MAX_SINGLE_LEAD_ROWS = 6
SAVE_SUFFIXES = (".png", ".svg", ".pdf")

PAPER_LAYOUT = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
GRID_MINOR = "#f7cfd6"
GRID_MAJOR = "#e8909f"
RELEVANCE_CMAP = LinearSegmentedColormap.from_list(
    "relevance", [(0.1, 0.45, 0.9, 0.0), (0.0, 0.35, 0.85, 0.5)]
)


@dataclass(frozen=True)
class Panel:
    """One trace on the page: lead row `lead` of the record from `t_record` s, drawn at `x0` s of row `row`."""

    lead: int
    row: int
    x0: float
    t_record: float
    seconds: float


def _lead_index(lead_names: list[str]) -> dict[str, int]:
    canonical = {name.lower(): name for name in STANDARD_LEADS}
    return {
        canonical[n.strip().lower()]: i for i, n in enumerate(lead_names) if n.strip().lower() in canonical
    }


def layout(lead_names: list[str], record_s: float, start: float = 0.0) -> tuple[list[Panel], int]:
    """The panels of a page and its number of rows."""
    index = _lead_index(lead_names)
    if len(index) == len(STANDARD_LEADS):
        panels = [
            Panel(index[name], r, c * COLUMN_S, start + c * COLUMN_S, COLUMN_S)
            for r, names in enumerate(PAPER_LAYOUT)
            for c, name in enumerate(names)
        ]
        return panels + [Panel(index["II"], len(PAPER_LAYOUT), 0.0, start, PAGE_S)], len(PAPER_LAYOUT) + 1
    if len(lead_names) == 1:
        rows = int(np.clip(np.ceil((record_s - start) / PAGE_S), 1, MAX_SINGLE_LEAD_ROWS))
        return [Panel(0, r, 0.0, start + r * PAGE_S, PAGE_S) for r in range(rows)], rows
    return [Panel(i, i, 0.0, start, PAGE_S) for i in range(len(lead_names))], len(lead_names)


def page_start(relevance: np.ndarray | None, fs: float, samples: int, page_s: float = PAGE_S) -> float:
    """Where a page of `page_s` starts: at 0, or, for a longer record, where it holds the most relevance."""
    n = int(round(page_s * fs))
    if relevance is None or samples <= n:
        return 0.0
    per_sample = relevance.reshape(-1, samples).mean(axis=0)
    sums = np.convolve(per_sample, np.ones(n), mode="valid")
    return float(np.argmax(sums)) / fs


def figure_size_mm(rows: int) -> tuple[float, float]:
    """Width and height of the whole figure in mm: the grid plus the margins."""
    width = (CAL_S + PAGE_S) * MM_PER_S + MARGIN_MM["left"] + MARGIN_MM["right"]
    height = rows * ROW_MV * MM_PER_MV + MARGIN_MM["top"] + MARGIN_MM["bottom"]
    return width, height


def _paper_axes(fig: Figure, rows: int):
    """Axes in seconds x mV, placed so that 1 s = 25 mm and 1 mV = 10 mm exactly, with the pink grid."""
    width, height = figure_size_mm(rows)
    fig.set_size_inches(width / MM_PER_INCH, height / MM_PER_INCH)
    grid_w, grid_h = (CAL_S + PAGE_S) * MM_PER_S, rows * ROW_MV * MM_PER_MV
    ax = fig.add_axes(
        (MARGIN_MM["left"] / width, MARGIN_MM["bottom"] / height, grid_w / width, grid_h / height),
        frameon=False,
    )
    ax.set_xlim(-CAL_S, PAGE_S)
    ax.set_ylim(0.0, rows * ROW_MV)
    ax.set_axis_off()
    ax.set_gid("ecg-paper")
    for step_mm, color, lw, gid in (
        (1.0, GRID_MINOR, 0.3, "grid-minor"),
        (5.0, GRID_MAJOR, 0.6, "grid-major"),
    ):
        xs = -CAL_S + np.arange(0, grid_w + 1e-6, step_mm) / MM_PER_S
        ys = np.arange(0, grid_h + 1e-6, step_mm) / MM_PER_MV
        lines = [[(x, 0.0), (x, rows * ROW_MV)] for x in xs] + [[(-CAL_S, y), (PAGE_S, y)] for y in ys]
        ax.add_collection(LineCollection(lines, colors=color, linewidths=lw, zorder=0, gid=gid))
    return ax


def _baseline(row: int, rows: int) -> float:
    return (rows - row - 0.5) * ROW_MV


def _calibration(ax, y: float) -> None:
    """The 1 mV x 0.2 s pulse at the start of a row."""
    xs = [-0.35, -0.3, -0.3, -0.1, -0.1, -0.05]
    ys = [y, y, y + 1.0, y + 1.0, y, y]
    ax.plot(xs, ys, color="black", lw=0.8, zorder=3, gid="calibration")


def _draw_panel(ax, x, fs, panel: Panel, y: float, relevance, name: str) -> None:
    i0 = int(round(panel.t_record * fs))
    i1 = min(int(round((panel.t_record + panel.seconds) * fs)), x.shape[-1])
    if i1 <= i0:
        return
    t = panel.x0 + np.arange(i1 - i0) / fs
    if relevance is not None:
        rel = relevance[panel.lead if relevance.ndim == 2 else slice(None)][i0:i1]
        ax.imshow(
            rel[None, :], cmap=RELEVANCE_CMAP, vmin=0.0, vmax=1.0, aspect="auto", interpolation="bilinear",
            extent=(t[0], t[-1] + 1 / fs, y - 0.45 * ROW_MV, y + 0.45 * ROW_MV), zorder=1,
        )  # fmt: skip
    ax.plot(t, x[panel.lead, i0:i1] + y, color="black", lw=0.7, zorder=2, solid_joinstyle="round")
    ax.text(panel.x0 + 0.04, y + 1.05, name, fontsize=8, fontweight="bold", va="bottom", zorder=4)


def plot_ecg(
    x: np.ndarray,
    fs: float,
    lead_names: list[str],
    relevance: np.ndarray | None = None,
    *,
    title: str = "",
    note: str = "",
    start: float | None = None,
) -> Figure:
    """Draw a record (leads, samples) in mV on ECG paper, with an optional relevance map in [0, 1].

    `relevance` is (samples,) (one map for every lead) or (leads, samples). Each lead is drawn around
    its median, as an ECG machine's high-pass would; a record longer than the page shows the 10 s
    (`start` s on) with the most relevance. `note` goes in the footer.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(lead_names) != x.shape[0]:
        raise ValueError(
            f"expected x of shape (leads, samples) with {len(lead_names)} lead names, got {x.shape}"
        )
    if relevance is not None:
        relevance = np.clip(np.asarray(relevance, dtype=np.float32), 0.0, 1.0)
        if relevance.shape[-1] != x.shape[-1] or relevance.ndim not in (1, 2):
            raise ValueError(f"relevance of shape {relevance.shape} does not match the record {x.shape}")
    if start is None:  # a single lead continues over several rows, so its page is longer
        page_s = PAGE_S * (MAX_SINGLE_LEAD_ROWS if len(lead_names) == 1 else 1)
        start = page_start(relevance, fs, x.shape[-1], page_s)
    x = x - np.median(x, axis=-1, keepdims=True)
    panels, rows = layout(list(lead_names), x.shape[-1] / fs, start)
    fig = Figure()
    ax = _paper_axes(fig, rows)
    index = _lead_index(list(lead_names))
    names = {i: n for n, i in index.items()}
    for row in range(rows):
        _calibration(ax, _baseline(row, rows))
    for panel in panels:
        y = _baseline(panel.row, rows)
        _draw_panel(ax, x, fs, panel, y, relevance, names.get(panel.lead, lead_names[panel.lead]))
        if panel.x0 > 0:  # the short bar between columns of the paper layout
            ax.plot([panel.x0] * 2, [y - 0.3, y + 0.3], color="black", lw=0.8, zorder=3)
    width, height = figure_size_mm(rows)
    left = MARGIN_MM["left"] / width
    fig.text(left, 1 - 5.0 / height, title, fontsize=10, va="top", ha="left")
    record_s = x.shape[-1] / fs
    end = min(max(p.t_record + p.seconds for p in panels), record_s)
    footer = f"25 mm/s   10 mm/mV   {fs:g} Hz   {start:.1f}-{end:.1f} s of {record_s:.1f} s   {note}"
    fig.text(left, 3.0 / height, footer.rstrip(), fontsize=7)
    return fig


def output_paths(out: str | Path) -> list[Path]:
    """The files to write for `--out`: its suffix picks the format; no suffix writes a PNG and an SVG."""
    out = Path(out)
    if out.suffix == "":
        return [out.with_suffix(".png"), out.with_suffix(".svg")]
    if out.suffix.lower() not in SAVE_SUFFIXES:
        raise ValueError(
            f"{out}: unknown figure format {out.suffix!r}; use {', '.join(SAVE_SUFFIXES)} or no suffix"
        )
    return [out]


def save_figure(fig: Figure, out: str | Path, dpi: int = 200) -> list[Path]:
    """Save at paper scale (no cropping, so 1 mm stays 1 mm) to the file(s) `output_paths` names."""
    import matplotlib

    paths = output_paths(out)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable, editable
            fig.savefig(path, dpi=dpi, facecolor="white")
    return paths
