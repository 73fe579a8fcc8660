"""Test helpers shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(
    *args: str, env: dict | None = None, check: bool = True, timeout: float = 300, cwd=None
) -> subprocess.CompletedProcess:
    """Run `python -m ecglab ARGS` in a subprocess (in folder `cwd`), as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "ecglab", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"ecglab {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def write_wfdb(path_stem, x, fs, leads=None, fmt="16"):
    """Write x (leads, samples) in mV as a WFDB record `<path_stem>.hea/.dat`; returns the .hea path."""
    from pathlib import Path

    import numpy as np
    import wfdb

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    leads = leads or ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"][: len(x)]
    wfdb.wrsamp(
        stem.name, fs=fs, units=["mV"] * len(x), sig_name=list(leads), p_signal=np.asarray(x, dtype=np.float64).T,
        fmt=[fmt] * len(x), adc_gain=[1000.0] * len(x), baseline=[0] * len(x), write_dir=str(stem.parent),
    )  # fmt: skip
    return stem.with_suffix(".hea")


def write_ptbxl(root, records, statements_from=None):
    """A PTB-XL tree: `records` is a list of (ecg_id, patient_id, fold, scp_codes dict, signal or None)."""
    import shutil
    from pathlib import Path

    import numpy as np
    import pandas as pd

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if statements_from is not None:
        shutil.copy(Path(statements_from) / "scp_statements.csv", root / "scp_statements.csv")
    rows = []
    for ecg_id, patient_id, fold, codes, signal in records:
        stem = f"records100/{ecg_id // 1000 * 1000:05d}/{ecg_id:05d}_lr"
        if signal is not None:
            write_wfdb(root / stem, np.asarray(signal), 100)
        rows.append({"ecg_id": ecg_id, "patient_id": float(patient_id), "scp_codes": repr(codes),
                     "strat_fold": fold, "filename_lr": stem, "filename_hr": stem.replace("100", "500").replace("_lr", "_hr")})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    return root


def synthetic_ptbxl(root, n=96, seed=0):
    """A PTB-XL tree whose two rhythm classes differ in rate, so a model can learn them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(1000) / 100
    records = []
    for i in range(1, n + 1):
        afib = i % 3 == 0
        beat = np.sin(2 * np.pi * (2.5 if afib else 1.0) * t + rng.uniform(0, 6))
        x = np.tile(beat, (12, 1)) * rng.uniform(0.5, 1.5, (12, 1)) + rng.normal(0, 0.1, (12, 1000))
        fold = 9 if i % 10 == 9 else 10 if i % 10 == 0 else 1 + i % 8
        records.append((i, i, fold, {"AFIB": 0.0} if afib else {"SR": 0.0}, x))
    root = write_ptbxl(root, records)
    (root / "scp_statements.csv").write_text(
        ",description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass\n"
        "NORM,normal ECG,1.0,,,NORM,NORM\nSR,sinus rhythm,,,1.0,,\nAFIB,atrial fibrillation,,,1.0,,\n"
    )
    return root


def write_config(path, root, tmp_path, **extra):
    """A small training recipe on `root` with its cache and runs under tmp_path; `extra` overrides keys."""
    import json

    config = {"model": "fcn_wang", "dataset": "ptbxl", "task": "rhythm", "root": str(root),
              "cache": str(tmp_path / "cache"), "out": str(tmp_path / "runs"), "epochs": 6,
              "batch_size": 16, "lr": 0.003, "patience": 0, "threads": 1, "bootstrap": 100,
              "augment": {"noise_std": 0.05, "lead_mask_p": 0.1}} | extra  # fmt: skip
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


class Interrupted(Exception):
    """Raised by `stop_at_epoch`'s progress bar."""


def stop_at_epoch(n):
    """A `fit` progress factory that interrupts training as epoch `n` (1-based) starts: a kill
    after the state of epoch n - 1 was saved, without a subprocess."""

    def bar(description, total):
        if description.startswith(f"epoch {n}/"):
            raise Interrupted
        return lambda: None

    return bar


LEADS_12 = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def finished_run(root, config, y, probs, lead_names=LEADS_12, scores=None):
    """A finished run folder of `config` by hand (`<root>/<label>-s<seed>`): checkpoint metadata,
    metrics (test macro AUC from `probs`, `scores` as challenge scores), history and test predictions.
    Returns (config, folder), as the bench table writers take them."""
    import json
    from pathlib import Path

    import numpy as np

    from ecglab.checkpoint_meta import CheckpointMeta
    from ecglab.evaluate.metrics import roc_auc_score

    run = Path(root) / f"{config.label}-s{config.seed}"
    (run / "checkpoint").mkdir(parents=True)
    (run / "predictions").mkdir()
    meta = CheckpointMeta(model=config.model, num_classes=y.shape[1], in_chans=len(lead_names),
                          lead_names=tuple(lead_names), classes=tuple(f"c{i}" for i in range(y.shape[1])),
                          multilabel=True, fs=100, window_samples=250, task="rhythm")  # fmt: skip
    (run / "checkpoint/config.json").write_text(json.dumps(meta.to_json()))
    auc = roc_auc_score(y, probs)
    test = {"macro_auc": {"value": auc, "lo": auc - 0.01, "hi": auc + 0.01},
            "macro_f1": {"value": 0.5, "lo": 0.4, "hi": 0.6}}  # fmt: skip
    test |= {name: {"value": v, "lo": v - 0.05, "hi": v + 0.05} for name, v in (scores or {}).items()}
    challenge = {name: "a challenge score" for name in scores or {}}
    (run / "metrics.json").write_text(json.dumps({"test": test, "challenge": challenge}))
    (run / "history.csv").write_text("epoch,seconds\n0,10\n1,12\n")
    np.save(run / "predictions/test_true.npy", y)
    np.save(run / "predictions/test_probs.npy", probs)
    return config, run
