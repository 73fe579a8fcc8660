"""benchmarks/distill.yaml: the distillation table's grid, in dependency order, and its dry run."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecglab.evaluate.metrics import roc_auc_score
from ecglab.paths import data_root
from ecglab.train.bench import cells, model_label, read_spec
from ecglab.train.config import DistillConfig, InitConfig, TrainConfig
from ecglab.train.tables.distill import distill_tables
from helpers import finished_run

SPEC = Path(__file__).resolve().parents[1] / "benchmarks/distill.yaml"


def test_the_grid_runs_teachers_before_students_and_ptbxl_before_cinc2017():
    grid = list(cells(read_spec(SPEC), SPEC))
    rows = [(config.dataset, config.task, model_label(config)) for config in grid]
    ptbxl = ["teacher-12-lead", "scratch-I", "mvms-I", "mvkt-I"]
    cinc = ["scratch-I", "mvms-I-finetuned", "mvkt-I-finetuned"]
    assert rows == [("ptbxl", "rhythm", r) for r in ptbxl] + [
        ("ptbxl", "superdiagnostic", r) for r in ptbxl
    ] + [("cinc2017", "rhythm", r) for r in cinc]
    by_name = {config.name: config for config in grid}
    out = Path("runs/bench/distill")
    for config in grid:
        assert (config.leads, config.dataset == "ptbxl") in ((None, True), (["I"], True), (None, False))
        if config.distill.teacher:
            teacher = by_name[Path(config.distill.teacher).name]
            assert Path(config.distill.teacher) == out / teacher.name and teacher.leads is None
            assert (teacher.task, teacher.seed, config.distill.method) == (
                config.task,
                config.seed,
                config.label[:4],
            )
        if config.init.path:
            student = by_name[Path(config.init.path).parent.name]
            assert (
                student.leads == ["I"]
                and student.distill.method == config.label[:4]
                and student.task == "rhythm"
            )
    cinc2017 = [config for config in grid if config.dataset == "cinc2017"]
    assert {(c.seconds, c.crop_seconds, c.eval_stride_seconds) for c in cinc2017} == {(30, 10, 5)}
    full = list(cells(read_spec(SPEC), SPEC, full=True))
    assert {(c.epochs, c.patience, c.batch_size, c.threads) for c in full} == {(50, 15, 128, 0)}
    dry = list(cells(read_spec(SPEC), SPEC, dry_run=True))
    assert all("distill-dry-run/" in (c.distill.teacher or c.init.path or "distill-dry-run/") for c in dry)


def test_an_unknown_placeholder_and_a_malformed_item_datasets_are_named(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("models: [{model: fcn_wang, leads: [I], distill: {teacher: '{out}/{model}'}}]\n")
    with pytest.raises(ValueError, match=r"distill.teacher '\{out\}/\{model\}': 'model' is no placeholder"):
        list(cells(read_spec(spec), spec))
    spec.write_text("models: [{model: fcn_wang, datasets: cinc2017}]\n")
    with pytest.raises(ValueError, match="`datasets` of fcn_wang is a list of mappings"):
        list(cells(read_spec(spec), spec))


@pytest.mark.data
@pytest.mark.slow
def test_dry_run_of_the_rhythm_rows_writes_the_distillation_table(tmp_path):
    """`ecglab bench benchmarks/distill.yaml --dry-run --task rhythm` as a user runs it: the teacher, the
    three lead-I students on the PTB-XL subset, the CinC 2017 rows fine-tuned from two of them."""
    for name in ("ptbxl", "cinc2017"):
        if not (data_root() / name).is_dir():
            pytest.skip(f"{name} is absent from {data_root()}; set ECGLAB_DATA")
    proc = subprocess.run([sys.executable, "-m", "ecglab", "bench", str(SPEC), "--dry-run", "--task", "rhythm"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=1200)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": training") == 7
    table = (tmp_path / "runs/bench/distill-dry-run/results.md").read_text()
    page = (tmp_path / "runs/bench/distill-dry-run/results_distill.md").read_text()
    assert (
        "## ptbxl · rhythm" in page and "## cinc2017 · rhythm" in page and "cinc2017_score [95% CI]" in page
    )
    assert "| mvkt-I-finetuned | 0 | I | finetune from mvkt-I-ptbxl-rhythm-s0 |" in page
    assert "### ptbxl · rhythm" in table and "### cinc2017 · rhythm" in table
    for label in ("teacher-12-lead", "scratch-I", "mvms-I", "mvkt-I", "mvms-I-finetuned", "mvkt-I-finetuned"):
        assert f"| {label} | 0 |" in table, label
    assert (
        not (SPEC.parent / "distill.csv").exists() or "dry" not in (SPEC.parent / "distill.csv").read_text()
    )


def test_writer_pairs_students_with_scratch_on_their_lead_and_with_their_teacher(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random((300, 3)) < 0.3).astype(np.float32)
    noisy = lambda scale: y + scale * rng.standard_normal(y.shape)  # noqa: E731
    config = lambda label, **kw: TrainConfig(model="fcn_wang", label=label, bootstrap=200, **kw)  # noqa: E731
    mvms = DistillConfig(teacher="runs/bench/distill/teacher-12-lead-s0", method="mvms")
    finetune = InitConfig(path="runs/bench/distill/mvms-I-s0/checkpoint")
    cinc = tmp_path / "cinc"
    runs = [
        finished_run(tmp_path, config("teacher-12-lead"), y, noisy(0.2)),
        finished_run(tmp_path, config("scratch-I", leads=["I"]), y, noisy(1.0), ["I"]),
        finished_run(tmp_path, config("mvms-I", leads=["I"], distill=mvms), y, noisy(0.5), ["I"]),
        finished_run(cinc, config("scratch-I", dataset="cinc2017"), y, noisy(1.0), ["I"], {"cinc2017_score": 0.7}),
        finished_run(cinc, config("mvms-I-finetuned", dataset="cinc2017", init=finetune), y, noisy(0.6), ["I"],
                     {"cinc2017_score": 0.8}),
    ]  # fmt: skip
    ptbxl, cinc2017 = distill_tables(runs).split("## cinc2017 · rhythm")
    line = lambda text, label: next(row for row in text.splitlines() if row.startswith(f"| {label} |"))  # noqa: E731
    teacher, scratch_i, student = (line(ptbxl, label) for label in ("teacher-12-lead", "scratch-I", "mvms-I"))
    assert "| 12 leads | scratch |" in teacher and teacher.endswith("| – | teacher | – | teacher |")
    assert (
        "| I | scratch |" in scratch_i and "| reference | " in scratch_i and scratch_i.endswith("| lower |")
    )
    assert "| mvms distillation from teacher-12-lead-s0 |" in student
    auc = [roc_auc_score(y, np.load(run / "predictions/test_probs.npy")) for _, run in runs[1:3]]
    assert f"| {auc[1] - auc[0]:+.4f} [" in student
    above_scratch, below_teacher = student.count("| higher |") == 1, student.endswith("| lower |")
    assert above_scratch and below_teacher
    assert "cinc2017_score [95% CI]" in cinc2017 and "cinc2017_score" not in ptbxl
    finetuned = line(cinc2017, "mvms-I-finetuned")
    assert "| finetune from mvms-I-s0 |" in finetuned and "| 0.8000 [0.7500, 0.8500] |" in finetuned
    assert "| higher |" in finetuned and finetuned.endswith("| no teacher on these records |  |")
