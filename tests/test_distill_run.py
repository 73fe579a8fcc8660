"""`ecglab distill`: a frozen teacher, the single-lead student's checkpoint used as any other, bad
input named, resume after an interruption."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from ecglab.models import create_model
from ecglab.train.checkpoint import load_checkpoint, save_checkpoint
from ecglab.train.config import from_dict, load_config
from ecglab.train.distributed import World
from ecglab.train.loop import build_datasets, build_model_and_optimizer, fit, train_one_epoch
from helpers import Interrupted, run_cli, stop_at_epoch, synthetic_ptbxl, write_config


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A synthetic PTB-XL and a tiny 12-lead teacher trained on its rhythm task: (data root, teacher run)."""
    tmp = tmp_path_factory.mktemp("distill")
    root = synthetic_ptbxl(tmp / "data/ptbxl")
    recipe = write_config(
        tmp / "teacher.yaml", root, tmp, name="teacher", augment={}, bootstrap=20, dry_run=True
    )
    return root, fit(load_config(recipe))


def _student(tmp_path, root, teacher_run, **extra):
    """A distillation recipe on the synthetic data: fcn_wang on lead I, 2 epochs."""
    distill = {"teacher": str(teacher_run), "method": "mvkt"} | extra.pop("distill", {})
    return write_config(tmp_path / "student.yaml", root, tmp_path, augment={}, epochs=2, bootstrap=20, leads=["I"],
                        distill=distill, **extra)  # fmt: skip


def test_the_teacher_stays_frozen_while_the_student_and_its_heads_learn(teacher, tmp_path, one_thread):
    root, teacher_run = teacher
    config = load_config(_student(tmp_path, root, teacher_run))
    data = build_datasets(config, World())
    parts = build_model_and_optimizer(config, data, World())
    distiller, frozen = parts.learner, parts.learner.teacher
    before = {k: v.clone() for k, v in parts.state_module.state_dict().items()}
    train_one_epoch(parts.train_model, data.loader, parts.stepper, parts.loss_fn, max_steps=2)
    saved = load_file(teacher_run / "checkpoint/model.safetensors")
    assert saved.keys() == frozen.state_dict().keys()
    assert all(np.array_equal(saved[k], v.numpy()) for k, v in frozen.state_dict().items())  # BN stats too
    assert not frozen.training and all(p.grad is None for p in frozen.parameters())
    after = distiller.state_dict()
    assert not any(k.startswith("teacher") for k in after)  # neither in the resume state ...
    in_optimizer = {id(p) for group in parts.stepper.optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in frozen.parameters()}  # ... nor in the optimiser
    for prefix in ("student.", "project_student.", "project_teacher."):
        assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith(prefix)), prefix
    assert parts.model is distiller.student
    assert next(p for p in parts.model.parameters() if p.ndim == 3).shape[1] == 1  # the first conv: one lead


def test_a_distilled_student_resumes_bit_for_bit(teacher, tmp_path):
    root, teacher_run = teacher
    whole = fit(load_config(_student(tmp_path, root, teacher_run, name="whole")))
    killed = load_config(_student(tmp_path, root, teacher_run, name="killed"))
    with pytest.raises(Interrupted):
        fit(killed, progress=stop_at_epoch(2))
    resumed = fit(killed)
    for name in ("checkpoint/model.safetensors", "state.safetensors"):
        a, b = load_file(whole / name), load_file(resumed / name)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    assert any(k.startswith("model/project_teacher.") for k in load_file(whole / "state.safetensors"))
    assert "resumed after epoch 0" in (resumed / "log.txt").read_text()


def test_a_student_that_is_not_single_lead_is_refused_by_name(teacher, tmp_path):
    root, teacher_run = teacher
    for leads in (None, ["I", "II"]):
        with pytest.raises(ValueError, match=r"leads: .*a distilled student sees one lead: set leads: \[I\]"):
            from_dict({"leads": leads, "distill": {"teacher": str(teacher_run)}})


def test_a_teacher_of_another_task_or_rate_is_refused_naming_both(teacher, tmp_path):
    root, teacher_run = teacher
    _, meta = load_checkpoint(teacher_run / "checkpoint")
    other = tmp_path / "other"
    wrong = replace(meta, task="superdiagnostic", classes=("NORM", "MI"), num_classes=2, fs=500.0)
    save_checkpoint(other, create_model("fcn_wang", 2, 12), wrong)
    refused = run_cli("distill", str(_student(tmp_path, root, other)), check=False)
    assert refused.returncode == 2
    assert "the teacher was trained for ptbxl/superdiagnostic (classes NORM, MI) at 500 Hz" in refused.stderr
    assert (
        "the recipe trains ptbxl/rhythm (classes AFIB, SR" in refused.stderr and "at 100 Hz" in refused.stderr
    )
    assert "task, classes, fs differ" in refused.stderr
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


def test_a_missing_teacher_folder_or_no_teacher_is_named(teacher, tmp_path):
    root, _ = teacher
    missing = tmp_path / "no-such-run"
    refused = run_cli("distill", str(_student(tmp_path, root, missing)), check=False)
    assert (
        refused.returncode == 2
        and f"distill: teacher: {missing}: no run folder or checkpoint" in refused.stderr
    )
    plain = write_config(tmp_path / "plain.yaml", root, tmp_path, leads=["I"])
    refused = run_cli("distill", str(plain), check=False)
    assert (
        refused.returncode == 2
        and "no distill.teacher; name the 12-lead teacher's run folder" in refused.stderr
    )


def test_leads_name_a_lead_the_dataset_has(teacher, tmp_path):
    root, _ = teacher
    config = load_config(write_config(tmp_path / "r.yaml", root, tmp_path, leads=["V7"]))
    with pytest.raises(
        ValueError, match=r"leads of ptbxl: lead 'V7' is not among the data's leads \(I, II, III"
    ):
        build_datasets(config, World())


@pytest.mark.data
@pytest.mark.slow
def test_distill_cli_on_the_ptbxl_subset_then_evaluate_predict_and_init(ptbxl_root, cinc2017_root, tmp_path):
    """A tiny 12-lead teacher, MVMS-ECG distillation into a lead-I student by the CLI, and the student
    used as any single-lead checkpoint: evaluate, predict on a CinC 2017 file, `init:` on CinC 2017."""
    common = {"dataset": "ptbxl", "task": "rhythm", "root": str(ptbxl_root), "out": str(tmp_path / "runs"),
              "batch_size": 8, "threads": 1, "bootstrap": 20, "crop_seconds": 2.5, "dry_run": True}  # fmt: skip
    teacher_run = fit(from_dict(common | {"model": "mvms_ecg", "name": "teacher"}))
    recipe = tmp_path / "distill.yaml"
    recipe.write_text(json.dumps(common | {"model": "mvms_ecg", "name": "student", "leads": ["I"],
                                           "distill": {"teacher": str(teacher_run), "method": "mvms"}}))  # fmt: skip
    done = run_cli("distill", str(recipe), "--dry-run")
    student = tmp_path / "runs/student"
    assert f"{student / 'checkpoint'}" in done.stdout
    model, meta = load_checkpoint(student / "checkpoint")
    assert (
        meta.lead_names == ("I",)
        and meta.in_chans == 1
        and meta.classes == load_checkpoint(teacher_run / "checkpoint")[1].classes
    )
    assert "(leads I; mvms from" in (student / "log.txt").read_text()
    evaluated = run_cli("evaluate", str(student), "--bootstrap", "20")
    assert "macro_auc" in evaluated.stdout
    predicted = run_cli("predict", str(cinc2017_root / "training2017/A00001.hea"), "-m", str(student / "checkpoint"),
                        "-f", "json")  # fmt: skip
    assert "A00001" in predicted.stdout
    tuned = fit(from_dict(common | {"model": "mvms_ecg", "name": "cinc", "dataset": "cinc2017", "root": str(cinc2017_root),
                                    "seconds": 30, "init": {"path": str(student / "checkpoint")}}))  # fmt: skip
    cinc_model, cinc_meta = load_checkpoint(tuned / "checkpoint")
    assert cinc_meta.classes == ("N", "A", "O", "~") and cinc_meta.lead_names == ("I",)


def test_the_shipped_recipe_distils_the_default_model_into_lead_i():
    config = load_config("configs/distill_ptbxl_rhythm_lead_i.yaml")
    assert config.leads == ["I"] and config.distill.method == "mvkt"
    assert (
        config.distill.teacher == "runs/default/" + load_config("configs/default_ptbxl_rhythm.yaml").run_name
    )
    assert (
        load_config("configs/distill_ptbxl_rhythm_lead_i.yaml", ["distill.method=mvms"]).distill.method
        == "mvms"
    )
