"""What the table writers share: a run's bench row, its 95% interval and a paired cell against a
reference run on the same test records."""

from __future__ import annotations

from pathlib import Path

from ecglab.evaluate.paired import run_difference, verdict


def bench_row(config, run_dir: Path) -> dict:
    """The run's results-table row (`result_row`) with its folder and the bootstrap resamples to pair it."""
    from ecglab.train.bench import result_row

    row = result_row(config, run_dir, key="", version=("", ""), machine="", command="")
    return row | {"run_dir": Path(run_dir), "resamples": 50 if config.dry_run else config.bootstrap}


def interval(metric: dict | None) -> str:
    """`value [lo, hi]` of a metric as metrics.json holds it ({value, lo, hi}); a dash when absent."""
    return "–" if metric is None else f"{metric['value']:.4f} [{metric['lo']:.4f}, {metric['hi']:.4f}]"


def ci(row: dict, key: str) -> str:
    """`value [lo, hi]` of a bench row's metric (`key`, `key_lo`, `key_hi`)."""
    return interval({"value": row[key], "lo": row[key + "_lo"], "hi": row[key + "_hi"]})


def paired_cell(row: dict, reference: dict | None, note: str = "") -> tuple[str, tuple | None]:
    """Two table cells, `row`'s test macro AUC minus `reference`'s with a paired 95% interval and the
    verdict, and (value, lo, hi) when there is something to pair."""
    if reference is None:
        return "no reference run | ", None
    if reference is row:
        return "reference | ", None
    value, lo, hi = run_difference(row["run_dir"], reference["run_dir"], row["resamples"])
    return f"{value:+.4f} [{lo:+.4f}, {hi:+.4f}]{note} | {verdict(lo, hi)}", (value, lo, hi)


def verdict_lines(items: list[tuple[str, tuple]]) -> list[str]:
    """One markdown line per verdict (higher, lower, not distinguishable) naming each comparison of
    `items`, (name, (value, lo, hi)) pairs of a paired difference, with its interval."""
    lines = []
    for word in ("higher", "lower", "not distinguishable"):
        named = [f"{name} {value:+.4f} [{lo:+.4f}, {hi:+.4f}]" for name, (value, lo, hi) in items
                 if verdict(lo, hi) == word]  # fmt: skip
        lines.append(f"- {word}: " + ("; ".join(named) if named else "none"))
    return lines
