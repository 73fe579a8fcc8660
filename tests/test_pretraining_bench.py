"""The pretraining results grid: bench runs named pretrainings first, shares them between shards,
refuses a pool that would hold an evaluated fold, and the `pretraining` table pairs rows with scratch."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from ecglab.evaluate.metrics import roc_auc_score
from ecglab.paths import data_root
from ecglab.train.bench import cells, read_spec
from ecglab.train.config import InitConfig, TrainConfig
from ecglab.train.tables.pretraining import pretraining_tables
from helpers import run_cli, synthetic_ptbxl

SPEC = Path(__file__).resolve().parents[1] / "benchmarks/pretraining.yaml"


def _spec(tmp_path, root, evaluated=(9, 10), **extra) -> Path:
    """A spec of fcn_wang from scratch, random frozen, CPC linear and fine-tuned, at 50% and 100%."""
    recipe = tmp_path / "cpc.yaml"
    recipe.write_text(yaml.safe_dump({"method": "cpc", "encoder": "fcn_wang", "datasets": ["ptbxl"],
                                      "evaluated": {"ptbxl": list(evaluated)}, "root": str(root.parent),
                                      "crop_seconds": 2.5, "batch_size": 16, "threads": 1}))  # fmt: skip
    spec = tmp_path / "grid.yaml"
    spec.write_text(yaml.safe_dump({
        "set": {"root": str(root), "crop_seconds": 2.5, "epochs": 1, "bootstrap": 50, "threads": 1},
        "pretrain": {"cpc": {"recipe": "cpc.yaml", "set": {"epochs": 1}}},
        "models": [{"model": "fcn_wang", "label": "scratch"},
                   {"model": "fcn_wang", "label": "random-linear", "init": {"path": "random", "mode": "linear"}},
                   {"model": "fcn_wang", "label": "cpc-linear", "init": {"path": "cpc", "mode": "linear"}},
                   {"model": "fcn_wang", "label": "cpc-finetune", "init": {"path": "cpc"}}],
        "datasets": [{"dataset": "ptbxl", "task": "rhythm"}],
        "label_fractions": [0.5, 1.0],
        "out": str(tmp_path / "runs"), "results": str(tmp_path / "results.csv"),
        "tables": ["pretraining"], "dry_run": {"batch_size": 8},
    } | extra))  # fmt: skip
    return spec


def test_bench_pretrains_first_once_for_every_shard_then_tabulates(tmp_path):
    root = synthetic_ptbxl(tmp_path / "data/ptbxl", n=120)
    spec = _spec(tmp_path, root)
    env = {"ECGLAB_CACHE": str(tmp_path / "cache")}
    second = run_cli("bench", str(spec), "--dry-run", "--shard", "2/2", env=env)  # no pretraining of its own
    assert second.stdout.count("pretrain cpc: pretraining") == 1 and second.stdout.count(": training") == 4
    first = run_cli("bench", str(spec), "--dry-run", "--shard", "1/2", env=env)
    assert (
        "pretrain cpc: done already, skipped" in first.stdout
        and "pretrain cpc: pretraining" not in first.stdout
    )
    assert first.stdout.count(": training") == 4
    again = run_cli("bench", str(spec), "--dry-run", env=env)
    assert again.stdout.count("done already, skipped") == 8 and ": training" not in again.stdout
    assert "pretrain cpc" not in again.stdout  # no cell left that needs it
    bench = tmp_path / "runs/grid-dry-run"
    encoder = bench / "pretrain/cpc/encoder"
    assert (encoder / "pretraining.json").is_file()
    linear = yaml.safe_load((bench / "cpc-linear-ptbxl-rhythm-frac0.5-s0/config.yaml").read_text())
    assert linear["init"] == {"path": str(encoder), "mode": "linear", "encoder_lr_scale": 1.0}
    assert linear["label_fraction"] == 0.5 and linear["batch_size"] == 8
    with open(bench / "results.csv") as f:
        models = sorted(row["model"] for row in csv.DictReader(f))
    assert models == sorted(f"{label}{suffix}" for label in ("scratch", "random-linear", "cpc-linear", "cpc-finetune")
                            for suffix in ("@50%", ""))  # fmt: skip
    page = (bench / "results_pretraining.md").read_text()
    assert "## ptbxl" in page and "### Linear evaluation against a random frozen encoder" in page
    assert "| 50% | fcn_wang | scratch | supervised | 0 |" in page and "| reference |" in page
    assert (
        "| 100% | fcn_wang | cpc | fine-tune | 0 |" in page and "### Summary: rhythm, against scratch" in page
    )
    assert not (tmp_path / "results.csv").exists()  # a dry run never writes the spec's table


def test_a_cell_whose_folds_the_pretraining_may_pool_is_refused_naming_the_fold(tmp_path):
    root = synthetic_ptbxl(tmp_path / "data/ptbxl", n=30)
    spec = _spec(tmp_path, root, evaluated=(10,))
    with pytest.raises(
        ValueError, match=r"uses fold 9 of ptbxl as its validation fold.*add ptbxl: \[9, 10\]"
    ):
        list(cells(read_spec(spec), spec))
    refused = run_cli("bench", str(spec), "--dry-run", check=False)
    assert (
        refused.returncode == 2
        and "pretraining cpc pools ptbxl keeping out only folds [10]" in refused.stderr
    )
    assert not (tmp_path / "runs").exists()


def test_an_init_path_naming_no_pretraining_is_refused(tmp_path):
    root = synthetic_ptbxl(tmp_path / "data/ptbxl", n=30)
    spec = _spec(tmp_path, root, models=[{"model": "fcn_wang", "init": {"path": "cpcc", "mode": "linear"}}])
    with pytest.raises(
        ValueError, match=r"init.path 'cpcc' names neither a pretraining of this spec \(cpc\)"
    ):
        list(cells(read_spec(spec), spec))


def test_a_fraction_names_its_own_seeds_and_a_model_item_its_own_before_it(tmp_path):
    root = synthetic_ptbxl(tmp_path / "data/ptbxl", n=30)
    fractions = [{"label_fraction": 0.1, "batch_size": 8, "seeds": [0, 1, 2]}, 1.0]
    models = ["fcn_wang", {"model": "fcn_wang", "label": "vit", "seeds": [5]}]
    spec = _spec(tmp_path, root, label_fractions=fractions, models=models, seeds=[0])
    grid = [
        (c.label or c.model, c.label_fraction, c.batch_size, c.seed) for c in cells(read_spec(spec), spec)
    ]
    assert grid == [
        ("fcn_wang", 0.1, 8, 0), ("fcn_wang", 0.1, 8, 1), ("fcn_wang", 0.1, 8, 2), ("fcn_wang", 1.0, 64, 0),
        ("vit", 0.1, 8, 5), ("vit", 1.0, 64, 5),
    ]  # fmt: skip
    bad = _spec(tmp_path, root, label_fractions=[{"label_fraction": 0.1, "seeds": 3}])
    with pytest.raises(ValueError, match=r"`seeds` of label fraction 0.1 is a list of integers, not 3"):
        list(cells(read_spec(bad), bad))


def test_the_shipped_grid_covers_every_method_mode_and_fraction_beside_its_baselines():
    spec = read_spec(SPEC)
    grid = list(cells(spec, SPEC))
    assert {c.task for c in grid} == {"rhythm", "superdiagnostic"}
    assert {c.label_fraction for c in grid} == {0.01, 0.1, 1.0} and len(grid) == 132
    seeds = {(c.model, c.label_fraction, c.seed) for c in grid}
    assert {(f, s) for m, f, s in seeds if m == "resnet1d_wang"} == {
        (f, s) for f in (0.01, 0.1, 1.0) for s in (0, 1, 2)
    }
    assert {s for m, f, s in seeds if m == "st_mem_vit"} == {0}
    pretrained = [c for c in grid if c.init.path not in (None, "random")]
    assert {(c.model, Path(c.init.path).parent.name, c.init.mode) for c in pretrained} == {
        ("resnet1d_wang", "cpc", "linear"), ("resnet1d_wang", "cpc", "finetune"),
        ("resnet1d_wang", "clocs", "linear"), ("resnet1d_wang", "clocs", "finetune"),
        ("st_mem_vit", "st_mem", "linear"), ("st_mem_vit", "st_mem", "finetune"),
    }  # fmt: skip
    random = {c.model for c in grid if c.init.path == "random" and c.init.mode == "linear"}
    scratch = {c.model for c in grid if c.init.path is None}
    assert random == scratch == {"resnet1d_wang", "st_mem_vit"}
    assert all(c.model_kwargs == {"head": "avg"} for c in grid if c.model == "resnet1d_wang")
    full = list(cells(spec, SPEC, full=True))
    assert {(c.label_fraction, c.epochs) for c in full} == {(0.01, 100), (0.1, 100), (1.0, 50)}


@pytest.mark.data
def test_dry_run_of_the_shipped_grid_on_the_shared_data(tmp_path):
    """`ecglab bench benchmarks/pretraining.yaml --dry-run` as a user runs it: the CPC and CLOCS
    pretrainings and every kind of row, on the rhythm task at 1% of the labels (ST-MEM's recipe has
    its own dry run in test_pretrain_run.py)."""
    if not (data_root() / "ptbxl").is_dir() or not (data_root() / "cinc2017").is_dir():
        pytest.skip(f"the PTB-XL or CinC 2017 subset is absent from {data_root()}; set ECGLAB_DATA")
    args = [
        "bench",
        str(SPEC),
        "--dry-run",
        "--task",
        "rhythm",
        "--fraction",
        "0.01",
        "--model",
        "resnet1d_wang",
        "--seed",
        "0",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "ecglab", *args], capture_output=True, text=True, cwd=tmp_path, timeout=1200
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pretrain cpc: pretraining" in proc.stdout and "pretrain clocs: pretraining" in proc.stdout
    assert (
        "st_mem" not in proc.stdout and proc.stdout.count(": training") == 6 and "frac0.1-" not in proc.stdout
    )
    page = (tmp_path / "runs/bench/pretraining-dry-run/results_pretraining.md").read_text()
    for method, evaluation in [("scratch", "supervised"), ("random init", "linear"), ("clocs", "linear"),
                               ("cpc", "fine-tune")]:  # fmt: skip
        assert f"| 1% | resnet1d_wang | {method} | {evaluation} | 0 |" in page


def _run(root: Path, name: str, y: np.ndarray, probs: np.ndarray, **config) -> tuple[TrainConfig, Path]:
    """A finished run folder by hand: its metrics and test predictions."""
    run = root / name
    (run / "predictions").mkdir(parents=True)
    auc = roc_auc_score(y, probs)
    test = {"macro_auc": {"value": auc, "lo": auc - 0.02, "hi": auc + 0.02}}
    (run / "metrics.json").write_text(json.dumps({"test": test}))
    np.save(run / "predictions/test_true.npy", y)
    np.save(run / "predictions/test_probs.npy", probs)
    return TrainConfig(model="resnet1d_wang", task="rhythm", bootstrap=200, **config), run


def test_the_table_pairs_each_row_with_scratch_and_linear_rows_with_the_random_encoder(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random((300, 3)) < 0.3).astype(np.float32)
    noisy = lambda scale: y + scale * rng.standard_normal(y.shape)  # noqa: E731
    cpc = str(tmp_path / "pretrain/cpc/encoder")
    scratch = noisy(1.0)
    runs = [
        _run(tmp_path, "scratch", y, scratch, label_fraction=0.1),
        _run(tmp_path, "random", y, rng.random(y.shape), label_fraction=0.1,
             init=InitConfig(path="random", mode="linear")),
        _run(tmp_path, "cpc-ft", y, noisy(0.3), label_fraction=0.1, init=InitConfig(path=cpc)),
        _run(tmp_path, "cpc-linear", y, scratch + 1e-3 * rng.standard_normal(y.shape), label_fraction=0.1,
             init=InitConfig(path=cpc, mode="linear")),
        _run(tmp_path, "cpc-ft-full", y, noisy(0.3), init=InitConfig(path=cpc)),  # no scratch at 100%
    ]  # fmt: skip
    page = pretraining_tables(runs)
    grid = page[page.index("### Against") :].split("\n\n")[1].splitlines()
    assert (
        grid[2].startswith("| 10% | resnet1d_wang | scratch | supervised | 0 |")
        and "| reference |" in grid[2]
    )
    assert grid[3].startswith("| 10% | resnet1d_wang | random init | linear |") and grid[3].endswith(
        "| lower |"
    )
    assert grid[4].startswith("| 10% | resnet1d_wang | cpc | linear |") and "not distinguishable" in grid[4]
    assert grid[5].startswith("| 10% | resnet1d_wang | cpc | fine-tune |") and grid[5].endswith("| higher |")
    expected = roc_auc_score(y, np.load(runs[2][1] / "predictions/test_probs.npy")) - roc_auc_score(
        y, scratch
    )
    assert f"{expected:+.4f} [" in grid[5]
    assert grid[6].startswith("| 100% | resnet1d_wang | cpc | fine-tune |") and "no reference run" in grid[6]
    linear = page[page.index("### Linear evaluation") :].split("\n\n")[1].splitlines()
    assert len(linear) == 4 and "| reference |" in linear[2] and linear[3].endswith("| higher |")
    summary = page[page.index("### Summary: rhythm") :]
    assert "- higher: cpc fine-tune (resnet1d_wang, 10% of labels, seed 0) +" in summary
    assert "- not distinguishable: cpc linear (resnet1d_wang, 10% of labels, seed 0)" in summary


def _seed_pairs(tmp_path, y, noises: list[tuple[float, float]], rng) -> tuple[list, list[float]]:
    """Scratch and CPC fine-tuned runs at 1% of labels, one pair per seed with these noise scales."""
    runs, differences = [], []
    cpc = str(tmp_path / "pretrain/cpc/encoder")
    for seed, (scratch_noise, cpc_noise) in enumerate(noises):
        scratch = y + scratch_noise * rng.standard_normal(y.shape)
        pretrained = y + cpc_noise * rng.standard_normal(y.shape)
        runs += [_run(tmp_path, f"scratch-s{seed}", y, scratch, label_fraction=0.01, seed=seed),
                 _run(tmp_path, f"cpc-s{seed}", y, pretrained, label_fraction=0.01, seed=seed,
                      init=InitConfig(path=cpc))]  # fmt: skip
        differences.append(roc_auc_score(y, pretrained) - roc_auc_score(y, scratch))
    return runs, differences


def _over_seeds_table(page: str) -> list[str]:
    return page[page.index("### Over seeds: rhythm") :].split("\n\n")[1].splitlines()


def test_rows_with_several_seeds_get_each_seeds_difference_and_their_mean(tmp_path):
    rng = np.random.default_rng(1)
    y = (rng.random((300, 3)) < 0.3).astype(np.float32)
    runs, differences = _seed_pairs(tmp_path, y, [(1.0, 0.3), (0.3, 1.0)], rng)  # higher, then lower
    runs.append(_run(tmp_path, "scratch-full", y, y + rng.standard_normal(y.shape)))  # one seed: no line
    table = _over_seeds_table(pretraining_tables(runs))
    each = f"{differences[0]:+.4f} (s0), {differences[1]:+.4f} (s1)"
    assert len(table) == 3 and table[2].startswith(f"| 1% | resnet1d_wang | cpc | fine-tune | 2 | {each} | ")
    assert f"| {np.mean(differences):+.4f} [" in table[2] and table[2].endswith("| not distinguishable |")


def test_a_gain_that_every_seed_shows_is_called_over_seeds(tmp_path):
    rng = np.random.default_rng(2)
    y = (rng.random((300, 3)) < 0.3).astype(np.float32)
    runs, differences = _seed_pairs(tmp_path, y, [(1.0, 0.3), (1.1, 0.3), (0.9, 0.3)], rng)
    page = pretraining_tables(runs)
    assert _over_seeds_table(page)[2].endswith("| higher |") and min(differences) > 0.1
    assert "- higher: cpc fine-tune (resnet1d_wang, 1% of labels, 3 seeds) +" in page


def test_a_held_lock_makes_the_next_bench_say_it_waits(tmp_path):
    import threading
    import time

    from ecglab.atomic import file_lock

    waited, held = [], threading.Event()

    def hold():
        with file_lock(tmp_path / "pretrain/cpc"):
            held.set()
            time.sleep(0.5)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    with file_lock(tmp_path / "pretrain/cpc", lambda: waited.append(True)):
        assert waited == [True]
    thread.join()
    with file_lock(tmp_path / "pretrain/cpc", lambda: waited.append(True)):
        assert waited == [True]  # free: no wait
