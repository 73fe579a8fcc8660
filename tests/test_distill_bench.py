"""benchmarks/distill.yaml: the distillation table's grid, in dependency order, and its dry run."""

import subprocess
import sys
from pathlib import Path

import pytest

from ecglab.paths import data_root
from ecglab.train.bench import cells, model_label, read_spec

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
    assert "### ptbxl · rhythm" in table and "### cinc2017 · rhythm" in table
    for label in ("teacher-12-lead", "scratch-I", "mvms-I", "mvkt-I", "mvms-I-finetuned", "mvkt-I-finetuned"):
        assert f"| {label} | 0 |" in table, label
    assert (
        not (SPEC.parent / "distill.csv").exists() or "dry" not in (SPEC.parent / "distill.csv").read_text()
    )
