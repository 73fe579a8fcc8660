import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ecglab.train.bench import (
    RESULT_FIELDS,
    add_result,
    code_version,
    read_results,
    results_markdown,
    write_results,
)
from helpers import finished_run, run_cli
from test_train import synthetic_ptbxl


def test_bench_runs_the_grid_once_and_tabulates_it(tmp_path):
    root = synthetic_ptbxl(tmp_path / "ptbxl", n=60)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "set": {"root": str(root), "cache": str(tmp_path / "cache"), "epochs": 1, "batch_size": 16,
                "crop_seconds": 2.5, "bootstrap": 50, "threads": 1},
        "models": ["fcn_wang", {"model": "inceptionformer_tiny", "lr": 3e-4,  # the second with its own recipe
                                            "model_kwargs": {"norm": "layer"}}],
        "datasets": [{"dataset": "ptbxl", "task": "rhythm"}],
        "seeds": [0],
        "out": str(tmp_path / "runs"),
        "results": str(tmp_path / "results.csv"),
    }))  # fmt: skip
    shard = run_cli("bench", str(spec), "--shard", "2/2")  # every second cell: the second model only
    assert (
        shard.stdout.count(": training") == 1
        and "inceptionformer_tiny-ptbxl-rhythm-s0: training" in shard.stdout
    )
    own_lr = yaml.safe_load(
        (tmp_path / "runs/spec/inceptionformer_tiny-ptbxl-rhythm-s0/config.yaml").read_text()
    )
    assert own_lr["lr"] == 3e-4 and own_lr["model"] == "inceptionformer_tiny"
    first = run_cli("bench", str(spec), "--model", "fcn_wang", "--task", "rhythm")
    assert first.stdout.count(": training") == 1 and "fcn_wang-ptbxl-rhythm-s0: training" in first.stdout
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["model"] for r in rows) == ["fcn_wang", "inceptionformer_tiny(norm=layer)"]
    for row in rows:
        assert row["dataset"] == "ptbxl" and row["task"] == "rhythm" and row["seed"] == "0"
        assert float(row["macro_auc_lo"]) <= float(row["macro_auc"]) <= float(row["macro_auc_hi"])
        assert int(row["params"]) > 0 and int(row["macs"]) > 0 and row["epochs"] == "1"
        assert row["command"].startswith("ecglab bench") and row["commit"] and row["machine"]
    markdown = (tmp_path / "results.md").read_text()
    assert "### ptbxl · rhythm" in markdown and "inceptionformer_tiny(norm=layer)" in markdown
    second = run_cli("bench", str(spec))
    assert second.stdout.count("done already, skipped") == 2 and ": training" not in second.stdout
    # rows measured with other code (a later session, after commits to the package) stay finished,
    # named; --rerun-stale runs those cells again and replaces their rows
    write_results(tmp_path / "results.csv", [r | {"code": "another-tree"} for r in rows])
    later = run_cli("bench", str(spec))
    assert ": training" not in later.stdout
    assert "2 finished cell(s) of this grid were measured with other package code" in later.stdout
    rerun = run_cli("bench", str(spec), "--rerun-stale", "--model", "fcn_wang")
    assert rerun.stdout.count(": training") == 1 and "fcn_wang-ptbxl-rhythm-s0: training" in rerun.stdout
    codes = {r["model"]: r["code"] for r in read_results(tmp_path / "results.csv")}
    assert len(codes) == 2 and codes["inceptionformer_tiny(norm=layer)"] == "another-tree"
    assert codes["fcn_wang"] not in ("", "another-tree")
    # the paired comparison finds both run folders and sets the follower against the leader; a row
    # whose run folder is elsewhere (here a model the spec lacks, ranked first) is named, not paired
    ghost = rows[0] | {"model": "resnet1d34", "macro_auc": "0.99", "key": "elsewhere"}
    add_result(tmp_path / "with_ghost.csv", ghost)
    for row in rows:
        add_result(tmp_path / "with_ghost.csv", row)
    compare = subprocess.run(
        [sys.executable, "benchmarks/compare.py", "--results", str(tmp_path / "with_ghost.csv"), "--resamples", "50",
         "--task", "rhythm"],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True,
    )  # fmt: skip
    leader, follower = sorted(rows, key=lambda r: -float(r["macro_auc"]))
    assert (
        "Not paired, their run folders are not on this machine: `resnet1d34` (seed 0, 0.9900"
        in compare.stdout
    )
    assert f"Leader of the runs present: `{leader['model']}`" in compare.stdout
    assert f"| {follower['model']} | {float(follower['macro_auc']):.4f} | " in compare.stdout
    # rows from two tables, paired against a named reference instead of the leader
    add_result(tmp_path / "leader.csv", leader)
    add_result(tmp_path / "follower.csv", follower)
    against = subprocess.run(
        [sys.executable, "benchmarks/compare.py", "--results", str(tmp_path / "leader.csv"), str(tmp_path / "follower.csv"),
         "--resamples", "50", "--reference", follower["model"]],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert f"Reference: `{follower['model']}`" in against.stdout and "minus the reference's" in against.stdout
    assert f"| {leader['model']} | {float(leader['macro_auc']):.4f} | +" in against.stdout
    other_task = subprocess.run(
        [sys.executable, "benchmarks/compare.py", "--results", str(tmp_path / "results.csv"), "--task", "superdiagnostic"],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "Leader" not in other_task.stdout  # no row of that task
    other_seed = subprocess.run(
        [sys.executable, "benchmarks/compare.py", "--results", str(tmp_path / "results.csv"), "--seed", "1"],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "Leader" not in other_seed.stdout  # no row of that seed
    other_dataset = subprocess.run(
        [sys.executable, "benchmarks/compare.py", "--results", str(tmp_path / "results.csv"), "--dataset", "cinc2017"],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "###" not in other_dataset.stdout  # no row of that dataset


def test_code_version_keys_cells_by_the_package_code_alone(tmp_path):
    """The code version a row records: committing rows, docs or tests leaves it; a change to the code does not."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "model.py").write_text("width = 1\n")
    subprocess.run(git[:5] + ["init", "-q", str(tmp_path)], check=True)

    def commit(path, text):
        path.write_text(text)
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-qm", path.name], check=True)
        return code_version(package)

    first = commit(tmp_path / "results.csv", "row\n")
    rows_added = commit(tmp_path / "results.csv", "row\nrow\n")
    assert rows_added[1] == first[1] and rows_added[0] != first[0]  # same code, a new commit
    changed = commit(package / "model.py", "width = 2\n")
    assert changed[1] != first[1]
    (package / "model.py").write_text("width = 3\n")
    assert code_version(package)[1] == changed[1] + "+dirty"
    assert code_version(tmp_path.parent / "elsewhere") == ("unknown", "unknown")


def test_bench_spec_errors(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("modles: [resnet1d18]\n")
    proc = run_cli("bench", str(spec), check=False)
    assert proc.returncode == 2 and "unknown key(s) modles" in proc.stderr
    spec.write_text("models: [{lr: 0.001}]\n")
    proc = run_cli("bench", str(spec), check=False)
    assert proc.returncode == 2 and "a `models` item is a name or a mapping with `model`" in proc.stderr
    spec.write_text("models: [resnet1d18]\n")
    proc = run_cli("bench", str(spec), "--shard", "3/2", check=False)
    assert proc.returncode == 2 and "--shard '3/2': expected i/n" in proc.stderr
    proc = run_cli("bench", str(spec), "--model", "resnet1d34", check=False)
    assert proc.returncode == 2 and "no cell of model resnet1d34 in this grid" in proc.stderr
    proc = run_cli("bench", str(spec), "--model", "resnet1d18", "--task", "rhythm", check=False)
    assert proc.returncode == 2 and "no cell of model resnet1d18 and task rhythm in this grid" in proc.stderr
    proc = run_cli("bench", str(spec), "--model", "resnet1d18", "--seed", "1", check=False)
    assert proc.returncode == 2 and "no cell of model resnet1d18 and seed 1 in this grid" in proc.stderr


def test_benches_side_by_side_keep_each_others_rows(tmp_path):
    """Two benches writing one table: each adds its row to what the other wrote, under a lock."""
    path = tmp_path / "results.csv"
    row = {field: "1" for field in RESULT_FIELDS} | {
        "dataset": "ptbxl",
        "task": "rhythm",
        "macro_auc": "0.8",
        "budget_minutes": "",
    }
    first = add_result(path, row | {"model": "a", "key": "k1"})
    assert len(first) == 1
    rows = add_result(path, row | {"model": "b", "key": "k2", "budget_minutes": 15.0})  # a fresh row: numbers
    rows = add_result(path, row | {"model": "c", "key": "k3", "budget_minutes": "15"})  # rows read back: text
    assert [r["model"] for r in rows] == ["a", "b", "c"] and [r["model"] for r in read_results(path)] == [
        "a",
        "b",
        "c",
    ]
    again = add_result(path, row | {"model": "a2", "key": "k1"})  # the same cell, re-run: replaced
    assert sorted(r["model"] for r in again) == ["a2", "b", "c"]
    markdown = (tmp_path / "results.md").read_text()
    assert markdown.count("### ptbxl · rhythm · 15-minute budget") == 1 and "### ptbxl · rhythm\n" in markdown


def test_trainability_probe_reports_loss_beside_the_label_prior(tmp_path, ptbxl_root):
    proc = subprocess.run(
        [sys.executable, "benchmarks/trainability.py", "fcn_wang", "--root", str(ptbxl_root), "--steps", "50"],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=300,
        env=os.environ | {"ECGLAB_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, *steps = proc.stdout.strip().splitlines()
    prior = float(header.rsplit(" ", 1)[1])
    assert "fcn_wang {} on ptbxl/rhythm: label-prior loss" in header and 0.05 < prior < 0.2
    assert len(steps) == 1 and steps[0].startswith("step 50: train loss ")
    assert float(steps[0].split()[4]) > 0


def test_results_markdown_adds_the_spread_over_seeds_only_where_a_model_has_several():
    row = {field: "1" for field in RESULT_FIELDS} | {
        "dataset": "ptbxl",
        "task": "rhythm",
        "budget_minutes": "15",
    }
    rows = [row | {"model": "a", "seed": "0", "macro_auc": "0.80", "macro_f1": "0.40"}]
    rows += [row | {"model": "b", "seed": "0", "macro_auc": "0.90", "macro_f1": "0.50"}]
    assert "Over seeds" not in results_markdown(rows)
    rows += [row | {"model": "a", "seed": 1, "macro_auc": 0.70, "macro_f1": 0.30}]  # a fresh row: numbers
    markdown = results_markdown(rows)
    table = markdown[markdown.index("Over seeds") :].splitlines()
    assert table[4:6] == ["| b | 0 | 0.9000 [0.9000, 0.9000] | 0.5000 [0.5000, 0.5000] |",
                          "| a | 0, 1 | 0.7500 [0.7000, 0.8000] | 0.3500 [0.3000, 0.4000] |"]  # fmt: skip


def test_dry_run_labels_full_and_tables(tmp_path):
    """`--dry-run` writes beside its run folders (never the spec's table); a label names a second recipe
    of one model; `--full` applies the spec's full-scale overrides; the spec's table writers run."""
    from ecglab.train.bench import cells, read_spec, write_tables
    from ecglab.train.tables import get_writer, register_tables

    root = synthetic_ptbxl(tmp_path / "ptbxl", n=60)
    spec_path = tmp_path / "study.yaml"
    spec_path.write_text(yaml.safe_dump({
        "set": {"root": str(root), "cache": str(tmp_path / "cache"), "epochs": 1, "batch_size": 16,
                "crop_seconds": 2.5, "bootstrap": 50, "threads": 1},
        "models": ["fcn_wang", {"model": "fcn_wang", "label": "fcn_wang-step", "scheduler": "step"}],
        "datasets": [{"dataset": "ptbxl", "task": "rhythm"}],
        "out": str(tmp_path / "runs"), "results": str(tmp_path / "results.csv"),
        "full": {"epochs": 40, "max_minutes": None},
    }))  # fmt: skip
    spec = read_spec(spec_path)
    full = list(cells(spec, spec_path, full=True))
    assert [c.epochs for c in full] == [40, 40] and [c.run_name for c in full] == [
        "fcn_wang-ptbxl-rhythm-s0", "fcn_wang-step-ptbxl-rhythm-s0"]  # fmt: skip
    dry = run_cli("bench", str(spec_path), "--dry-run")
    assert dry.stdout.count(": training") == 2 and not (tmp_path / "results.csv").exists()
    with open(tmp_path / "runs/study-dry-run/results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["model"] for r in rows) == ["fcn_wang", "fcn_wang-step"]
    step = yaml.safe_load(
        (tmp_path / "runs/study-dry-run/fcn_wang-step-ptbxl-rhythm-s0/config.yaml").read_text()
    )
    assert step["scheduler"] == "step" and step["dry_run"] is True

    @register_tables("test-count")
    def count(runs):
        return f"{len(runs)} runs: " + ", ".join(sorted(config.run_name for config, _ in runs))

    assert get_writer("test-count") is count
    grid = list(cells(spec, spec_path, dry_run=True))
    archive = tmp_path / "runs/study-dry-run/archive/study"
    write_tables(
        spec | {"tables": ["test-count"]}, grid, tmp_path / "runs/study-dry-run/results.csv", archive
    )
    page = (tmp_path / "runs/study-dry-run/results_test-count.md").read_text()
    assert page == "2 runs: fcn_wang-ptbxl-rhythm-s0, fcn_wang-step-ptbxl-rhythm-s0"


def test_archived_runs_stand_in_for_run_folders_on_another_machine(tmp_path):
    """A finished cell's run folder is archived beside the results table without weights or labels; on
    a machine without the run folder, the tables and paired comparisons read it restored, its labels
    rebuilt from the data; labels that differ from the archived run's are refused, naming it."""
    import json
    import shutil

    import numpy as np

    from ecglab.train.bench import cells, read_spec
    from ecglab.train.run_archive import ARCHIVED, run_folder

    root = synthetic_ptbxl(tmp_path / "ptbxl", n=60)
    spec_path = tmp_path / "grid.yaml"
    spec_path.write_text(yaml.safe_dump({
        "set": {"root": str(root), "cache": str(tmp_path / "cache"), "epochs": 1, "batch_size": 16,
                "crop_seconds": 2.5, "bootstrap": 50, "threads": 1},
        "models": ["fcn_wang"], "datasets": [{"dataset": "ptbxl", "task": "rhythm"}],
        "out": str(tmp_path / "runs"), "results": str(tmp_path / "tables/results.csv"), "tables": ["ablation"],
    }))  # fmt: skip
    run_cli("bench", str(spec_path))
    (config,) = cells(read_spec(spec_path), spec_path)
    run, archived = (
        tmp_path / "runs/grid" / config.run_name,
        tmp_path / "tables/archive/grid" / config.run_name,
    )
    kept = sorted(str(p.relative_to(archived)) for p in archived.rglob("*") if p.is_file())
    assert kept == sorted([*ARCHIVED, "labels.json"])  # no weights, no labels
    true = {split: np.load(run / f"predictions/{split}_true.npy") for split in ("val", "test")}
    shutil.rmtree(run)  # another machine: the table and the archive, no run folder
    (tmp_path / "tables/results_ablation.md").unlink()
    tables = run_cli("bench", str(spec_path), "--tables-only")
    assert ": training" not in tables.stdout and "done already" not in tables.stdout
    assert "| fcn_wang | 0 |" in (tmp_path / "tables/results_ablation.md").read_text()  # from the archive
    restored = run_folder(config, archived.parent)
    assert restored == tmp_path / "runs/grid/.archived" / config.run_name
    for split in ("val", "test"):
        assert np.array_equal(np.load(restored / f"predictions/{split}_true.npy"), true[split])
    compare = subprocess.run(
        [sys.executable, "benchmarks/compare.py", "--results", str(tmp_path / "tables/results.csv"), "--resamples", "20"],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "Not paired" not in compare.stdout  # found through the archive
    hashes = json.loads((archived / "labels.json").read_text())
    (archived / "labels.json").write_text(json.dumps(hashes | {"test": "0" * 64}))
    (archived / "metrics.json").write_text((archived / "metrics.json").read_text() + " ")  # a newer archive
    with pytest.raises(
        ValueError, match=f"{archived}: the test labels of ptbxl/rhythm .* cannot be restored"
    ):
        run_folder(config, archived.parent)


def test_a_run_of_one_model_rewrites_the_tables_with_every_finished_cell(tmp_path):
    """`--model`, `--task`, `--seed` and `--fraction` choose the cells to run; the spec's table pages
    still hold every finished cell of the grid, not only the chosen ones."""
    from dataclasses import replace

    import numpy as np

    from ecglab.train.bench import cells, read_spec

    spec_path = tmp_path / "grid.yaml"
    spec_path.write_text(yaml.safe_dump({
        "set": {"root": str(tmp_path / "ptbxl")}, "models": ["fcn_wang", "resnet1d_wang"],
        "datasets": [{"dataset": "ptbxl", "task": "rhythm"}],
        "out": str(tmp_path / "runs"), "results": str(tmp_path / "results.csv"), "tables": ["ablation"],
    }))  # fmt: skip
    rng = np.random.default_rng(0)
    y = (rng.random((40, 2)) < 0.4).astype(np.float32)
    for config in cells(read_spec(spec_path), spec_path):  # both cells finished, by hand
        _, run = finished_run(
            tmp_path / "made", replace(config, label=config.model), y, y + rng.random(y.shape)
        )
        Path(config.out).mkdir(parents=True, exist_ok=True)
        run.rename(Path(config.out) / config.run_name)
    run_cli("bench", str(spec_path), "--tables-only", "--model", "fcn_wang")
    page = (tmp_path / "results_ablation.md").read_text()
    assert "| fcn_wang | 0 |" in page and "| resnet1d_wang | 0 |" in page
