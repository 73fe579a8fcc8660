"""The InceptionFormer ablation study: its spec covers every variant, runs as a dry run on the shared
PTB-XL subset, and its table writer pairs every row with the default model on the same records."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecglab.evaluate.metrics import roc_auc_score
from ecglab.models import list_models
from ecglab.paths import data_root
from ecglab.train.bench import cells, model_label, read_spec
from ecglab.train.config import TrainConfig
from ecglab.train.tables.ablation import REFERENCE, TABLES, ablation_tables
from helpers import finished_run

SPEC = Path(__file__).resolve().parents[1] / "benchmarks/ablation.yaml"


def test_spec_lists_every_variant_in_a_table_with_seeds_and_full_scale():
    spec = read_spec(SPEC)
    grid = list(cells(spec, SPEC))
    models = {config.model for config in grid}
    assert set(list_models("inceptionformer*") + ["sandwichnet", "sandwichpro"]) <= models
    assert {"resnet1d18", "resnet1d34", "mobilenetv2_1d", "stft_resnet34", "twostream_resnet"} <= models
    labels = {model_label(config) for config in grid}
    assert labels <= {label for rows in TABLES.values() for label in rows}  # no row left tableless
    seeds = {(model_label(c), c.task): set() for c in grid}
    for config in grid:
        seeds[(model_label(config), config.task)].add(config.seed)
    assert seeds[(REFERENCE, "rhythm")] == {0, 1} and seeds[("inceptionformer_sr", "rhythm")] == {0}
    assert {c.task for c in grid} == {"rhythm", "superdiagnostic"}
    assert {(c.max_minutes, c.epochs, c.threads) for c in grid} == {(None, 8, 1)}  # equal epochs, any machine
    full = list(cells(spec, SPEC, full=True))
    assert {(c.max_minutes, c.epochs, c.step_size) for c in full} == {(None, 50, 20)}
    step = next(c for c in grid if model_label(c) == "inceptionformer-steplr")
    assert step.scheduler == "step" and step.step_size == 3


def test_item_seeds_must_be_integers(tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text("models: [{model: fcn_wang, seeds: 2}]\n")
    with pytest.raises(ValueError, match="`seeds` of fcn_wang is a list of integers"):
        list(cells(read_spec(spec_path), spec_path))


def test_dry_run_of_two_variants_writes_the_ablation_page(tmp_path):
    """`ecglab bench benchmarks/ablation.yaml --dry-run` as a user runs it, on the shared PTB-XL subset."""
    if not (data_root() / "ptbxl").is_dir():
        pytest.skip(f"the PTB-XL subset is absent from {data_root()}; set ECGLAB_DATA")
    args = ["bench", str(SPEC), "--dry-run", "--task", "rhythm"]
    args += ["--model", "inceptionformer_tiny", "--model", "resnet1d18"]
    proc = subprocess.run(
        [sys.executable, "-m", "ecglab", *args], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": training") == 2
    page = (tmp_path / "runs/bench/ablation-dry-run/results_ablation.md").read_text()
    assert "## ptbxl · rhythm · 8 epochs" in page
    assert f"No `{REFERENCE}` run in this group" in page
    for title in ("Depths and widths", "Baselines"):
        assert f"### {title}" in page
    assert page.count("| inceptionformer_tiny | 0 | 3.13 M |") == 1
    assert page.count("| resnet1d18 | 0 |") == 1
    assert (
        not (SPEC.parent / "ablation.csv").exists() or "dry" not in (SPEC.parent / "ablation.csv").read_text()
    )


def _run(root: Path, label: str, seed: int, y: np.ndarray, probs: np.ndarray) -> tuple[TrainConfig, Path]:
    config = TrainConfig(model="fcn_wang", label=label, seed=seed, max_minutes=15, bootstrap=200)
    return finished_run(root, config, y, probs)


def test_writer_pairs_each_row_with_the_default_on_the_same_records(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random((300, 3)) < 0.3).astype(np.float32)
    noisy = lambda scale: y + scale * rng.standard_normal(y.shape)  # noqa: E731
    reference = noisy(1.0)
    runs = [
        _run(tmp_path, REFERENCE, 0, y, reference),
        _run(tmp_path, "inceptionformer_serial", 0, y, noisy(0.3)),  # clearly better
        _run(tmp_path, "inceptionformer_serial", 1, y, rng.random(y.shape)),  # chance: clearly worse
        _run(tmp_path, "inceptionformer_sr", 0, y, reference + 1e-3 * rng.standard_normal(y.shape)),
        _run(tmp_path, "my-experiment", 0, y, noisy(0.5)),
    ]
    page = ablation_tables(runs)
    stacking = page[page.index("### Stacking") :].split("\n\n")[1].splitlines()
    assert stacking[2].startswith(f"| {REFERENCE} | 0 |") and "| reference |" in stacking[2]
    better, worse = stacking[3], stacking[4]
    assert better.startswith("| inceptionformer_serial | 0 |") and better.endswith("| higher |")
    assert worse.startswith("| inceptionformer_serial | 1 |") and worse.endswith("(seed 0) | lower |")
    expected = roc_auc_score(y, np.load(runs[1][1] / "predictions/test_probs.npy"))
    assert f"{expected - roc_auc_score(y, reference):+.4f} [" in better
    assert "| inceptionformer_sr | 0 |" in page and "| not distinguishable |" in page
    assert "### Other runs" in page and "| my-experiment | 0 |" in page
    assert "| 11.0 |" in better  # seconds per epoch from history.csv
    # serial's two seeds disagree wildly: that training noise keeps its seed-0 gain from being called
    summary = page[page.index(f"### Summary over seeds: every variant against {REFERENCE}") :].splitlines()
    assert "(models with several seeds: 1; degrees of freedom: 1)" in summary[2]
    serial = next(line for line in summary if line.startswith("| inceptionformer_serial | 0, 1 |"))
    assert serial.endswith("| not distinguishable |")
    assert summary[-1].startswith("- not distinguishable: inceptionformer_serial +")
    assert "inceptionformer_sr" in summary[-1] and "my-experiment" in summary[-1]
    other_records = _run(tmp_path / "other", "inceptionformer_se", 0, y[:-1], reference[:-1])
    with pytest.raises(ValueError, match="other test records"):
        ablation_tables([runs[0], other_records])


def test_summary_over_seeds_calls_a_gain_that_every_seed_shows(tmp_path):
    rng = np.random.default_rng(1)
    y = (rng.random((300, 3)) < 0.3).astype(np.float32)
    noisy = lambda scale: y + scale * rng.standard_normal(y.shape)  # noqa: E731
    one_seed = [
        _run(tmp_path / "one", REFERENCE, 0, y, noisy(1.0)),
        _run(tmp_path / "one", "inceptionformer_se", 0, y, noisy(0.3)),
    ]
    assert "No model has two seeds yet" in ablation_tables(one_seed)
    runs = [_run(tmp_path, label, seed, y, noisy(scale))
            for label, scale in ((REFERENCE, 1.0), ("inceptionformer_se", 0.3)) for seed in (0, 1)]  # fmt: skip
    page = ablation_tables(runs)
    summary = page[page.index("### Summary over seeds") :]
    assert "(models with several seeds: 2; degrees of freedom: 2)" in summary
    assert "| inceptionformer_se | 0, 1 |" in summary and summary.splitlines()[-3].startswith(
        "- higher: inceptionformer_se +"
    )
