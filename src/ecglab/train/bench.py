"""`ecglab bench SPEC`: a grid of models x datasets/tasks x seeds, trained, evaluated and tabulated.

A spec is YAML:

    base: configs/ptbxl_rhythm_resnet1d18.yaml   # optional recipe every cell starts from
    set: {epochs: 30}                            # overrides for every cell
    models: [resnet1d_wang, {model: xresnet1d101, lr: 3.0e-4}]   # a name, or a name with its own overrides
    datasets: [{dataset: ptbxl, task: rhythm}, {dataset: ptbxl, task: superdiagnostic}]
    seeds: [0]
    out: runs/bench                              # run folders go to <out>/<spec file stem>/
    results: benchmarks/results.csv             # one row per (dataset, task, model, seed)
    full: {max_minutes: null, epochs: 50}        # overrides for `--full`: the study at full scale
    dry_run: {batch_size: 8}                     # overrides for `--dry-run` (small data subsets)
    tables: [notes]                              # writers of extra tables (ecglab.train.tables)

A model item may carry a `label`: the row's name when one model runs with several recipes
(`{model: mobilenetv2_1d, label: mobilenetv2_1d-noaug, augment: {}}`), and its own `seeds` and
`datasets`, which replace the spec's for that item (more seeds where the spread matters; a
dataset only some rows run on). Cells run dataset by dataset, in the order the datasets first
appear, each dataset's rows in the spec's order.

A cell may start from another cell's run folder: in `init.path` and `distill.teacher`, `{out}`
is the spec's run folder (`<out>/<spec stem>`, `-dry-run` added for a dry run) and `{dataset}`,
`{task}`, `{seed}` are the cell's, so `{out}/teacher-{dataset}-{task}-s{seed}` names the run of
the row labelled `teacher` on the same data. Such a grid runs unsharded, or the rows it needs first.

`label_fractions` runs every cell at each share of the training labels: a number, or a mapping
with `label_fraction` and that fraction's own overrides (`{label_fraction: 0.01, batch_size: 8}`),
applied after the model item's; `full` and `dry_run` may hold their own `label_fractions` list,
which replaces the spec's. A row's label then ends in the share (`resnet1d18@10%`). A fraction may
name its own `seeds` (the smallest share, whose few labelled records vary most with the seed); a
model item's `seeds` come first, then the fraction's, then the spec's.
`pretrain` names pretraining runs that the cells' `init.path` refers to by name; bench runs them
first (ecglab.train.bench_pretrain).

A cell whose key (its resolved config, the data manifest hash and the recipe of its pretraining)
is already in the results table is skipped, so a grid can be stopped, its rows committed, and
continued in a later session, after other commits. Each row records the commit and the git tree of
the package's code (`code`) it was measured with; `rerun_stale` (`--rerun-stale`) runs the finished
cells whose code differs from today's again, replacing their rows. What the tables and paired
comparisons read of each finished run folder is archived beside the results table
(ecglab.train.run_archive), so they cover the cells of earlier sessions too. `--dry-run` runs every
cell for a few steps into a separate results table beside its run folders, never the spec's.
"""

from __future__ import annotations

import csv
import hashlib
import json
import platform
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from ecglab.atomic import atomic_path, file_lock
from ecglab.train.bench_pretrain import ensure_pretrained, job_of, pretrain_jobs, resolve_init
from ecglab.train.config import from_dict, load_config
from ecglab.train.run_archive import archive_root, archive_run, run_folder

RESULT_FIELDS = ["dataset", "task", "model", "seed", "params", "macs", "macs_layers", "budget_minutes", "threads",
                 "epochs", "seconds_per_epoch",
                 "macro_auc", "macro_auc_lo", "macro_auc_hi", "macro_f1", "macro_f1_lo", "macro_f1_hi",
                 "commit", "code", "date", "machine", "command", "key"]  # fmt: skip
SPEC_KEYS = set(
    "base set models datasets seeds label_fractions pretrain out results machine full dry_run tables".split()
)


def read_spec(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such bench spec")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ValueError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; a spec has {', '.join(sorted(SPEC_KEYS))}"
        )
    if not spec.get("models"):
        raise ValueError(f"{path}: `models` lists no model")
    for key in ("set", "full", "dry_run"):
        if not isinstance(spec.get(key) or {}, dict):
            raise ValueError(f"{path}: `{key}` must be a mapping of recipe keys to values, not {spec[key]!r}")
    if not isinstance(spec.get("pretrain") or {}, dict):
        raise ValueError(
            f"{path}: `pretrain` must map names to pretraining entries, not {spec['pretrain']!r}"
        )
    for fractions in (
        spec.get("label_fractions"),
        *((spec.get(k) or {}).get("label_fractions") for k in ("full", "dry_run")),
    ):
        if fractions is not None and not (isinstance(fractions, list) and fractions):
            raise ValueError(f"{path}: `label_fractions` must be a list of fractions, not {fractions!r}")
    return spec


def cells(spec: dict, spec_path: Path, full: bool = False, dry_run: bool = False):
    """Every TrainConfig of the grid, in order; `full` and `dry_run` apply the spec's overrides of
    those names last. A cell's `init.path` naming a pretraining of the spec is its encoder folder."""
    base = load_config(spec_path.parent / spec["base"]) if spec.get("base") else from_dict({})
    base_dict = base.to_dict() | (spec.get("set") or {})
    fractions = spec.get("label_fractions") or [{}]
    last = {}
    for chosen, name in ((full, "full"), (dry_run, "dry_run")):
        overrides = dict(spec.get(name) or {}) if chosen else {}
        fractions = overrides.pop("label_fractions", None) or fractions
        last |= overrides
    out = bench_dir(spec, spec_path, dry_run)
    jobs = pretrain_jobs(spec, spec_path, out, full, dry_run)
    items = [_model_entry(model_entry, spec_path) for model_entry in spec["models"]]
    for entry in _every_dataset(spec, items):
        for model, overrides, seeds, datasets in items:
            if entry not in (datasets or spec.get("datasets") or [{}]):
                continue
            for fraction in fractions:
                share, share_seeds = _fraction_entry(fraction, spec_path)
                for seed in seeds or share_seeds or spec.get("seeds") or [0]:
                    data = base_dict | entry | overrides | share | last
                    data |= {"model": model, "seed": seed} | ({"dry_run": True} if dry_run else {})
                    data = _run_paths(data, out, spec_path)
                    config = resolve_init(from_dict(data, str(spec_path)), jobs, spec_path)
                    yield replace(config, name=config.run_name, out=str(out))


def _every_dataset(spec: dict, items: list) -> list[dict]:
    """The spec's datasets, then those only some items name, each once, in order of appearance."""
    every: list[dict] = []
    for entry in (spec.get("datasets") or [{}]) + [d for *_, datasets in items for d in datasets or []]:
        if entry not in every:
            every.append(entry)
    return every


PATH_KEYS = (("init", "path"), ("distill", "teacher"))  # the keys that may name another cell's run


def _run_paths(data: dict, out: Path, spec_path: Path) -> dict:
    """`{out}`, `{dataset}`, `{task}` and `{seed}` filled in `init.path` and `distill.teacher`."""
    fields = {"out": out, "dataset": data.get("dataset"), "task": data.get("task") or "default",
              "seed": data.get("seed")}  # fmt: skip
    for section, key in PATH_KEYS:
        value = (data.get(section) or {}).get(key)
        if isinstance(value, str):
            try:
                data = data | {section: data[section] | {key: value.format_map(fields)}}
            except (KeyError, ValueError) as exc:
                raise ValueError(
                    f"{spec_path}: {section}.{key} {value!r}: {exc} is no placeholder; use {{out}}, "
                    "{dataset}, {task}, {seed}"
                ) from None
    return data


def _fraction_entry(entry, spec_path: Path) -> tuple[dict, list | None]:
    """A `label_fractions` item (a number, or a mapping with `label_fraction`, its overrides and
    optionally its own `seeds`) -> (its recipe overrides, its seeds or None)."""
    if isinstance(entry, int | float) and not isinstance(entry, bool):
        return {"label_fraction": entry}, None
    if entry == {} or (isinstance(entry, dict) and "label_fraction" in entry):
        overrides = dict(entry)
        return overrides, _seeds(overrides.pop("seeds", None), f"label fraction {entry.get('label_fraction')}",
                                 spec_path)  # fmt: skip
    raise ValueError(
        f"{spec_path}: a `label_fractions` item is a number or a mapping with `label_fraction`, not {entry!r}"
    )


def _seeds(seeds, owner: str, spec_path: Path) -> list | None:
    """A `seeds` value of a models or label_fractions item: None, or a non-empty list of integers."""
    if seeds is not None and not (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ValueError(f"{spec_path}: `seeds` of {owner} is a list of integers, not {seeds!r}")
    return seeds


def bench_dir(spec: dict, spec_path: Path, dry_run: bool = False) -> Path:
    """Where a spec's run folders go: <out>/<spec stem>, or <out>/<spec stem>-dry-run."""
    return Path(spec.get("out", "runs/bench")) / (spec_path.stem + ("-dry-run" if dry_run else ""))


def _model_entry(entry, spec_path: Path) -> tuple[str, dict, list | None, list | None]:
    """A `models` item: a model name, or a mapping with `model`, that model's own recipe overrides and
    optionally its own `seeds` and `datasets`; returns (model, overrides, seeds or None, datasets or None)."""
    if isinstance(entry, str):
        return entry, {}, None, None
    if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
        raise ValueError(f"{spec_path}: a `models` item is a name or a mapping with `model`, not {entry!r}")
    overrides = dict(entry)
    seeds = _seeds(overrides.pop("seeds", None), entry["model"], spec_path)
    datasets = overrides.pop("datasets", None)
    if datasets is not None and not (
        isinstance(datasets, list) and datasets and all(isinstance(d, dict) for d in datasets)
    ):
        raise ValueError(
            f"{spec_path}: `datasets` of {entry['model']} is a list of mappings ({{dataset: ..., task: ...}}), "
            f"not {datasets!r}"
        )
    return overrides.pop("model"), overrides, seeds, datasets


PACKAGE = Path(__file__).resolve().parents[1]


def _git(args: list[str], where: Path) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=where, timeout=5).stdout.strip()


def code_version(package: Path = PACKAGE) -> tuple[str, str]:
    """The commit a row was measured at, and the version of the package's code: the git tree of the
    package folder, which commits of results, docs or tests leave unchanged (what `--rerun-stale`
    compares). Either ends in "+dirty" while the package has uncommitted changes."""
    try:
        commit, tree = _git(["rev-parse", "HEAD"], package), _git(["rev-parse", "HEAD:./"], package)
        dirty = "+dirty" if _git(["status", "--porcelain", "--", "."], package) else ""
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"
    return (commit or "unknown") + dirty, (tree or "unknown") + dirty


def cell_key(config, manifest_hash: str, pretrained=None) -> str:
    """What a cell is: its config, its data, and the recipe of the pretraining it starts from (a
    PretrainConfig), if any. Not the code, which a row records beside its key, so a grid that spans
    sessions and commits is continued, not restarted."""
    inputs = {"config": config.to_dict(), "data": manifest_hash}
    if pretrained is not None:
        inputs["pretrain"] = pretrained.to_dict()
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def machine_label() -> str:
    import os

    return f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.system()}"


def read_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def write_results(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_FIELDS, restval="")
        writer.writeheader()
        writer.writerows(rows)


def add_result(path: Path, row: dict) -> list[dict]:
    """Add a row (replacing one with the same key), re-reading the table so no other bench's row is lost."""
    with file_lock(path):
        rows = [r for r in read_results(path) if r["key"] != row["key"]] + [row]
        write_results(path, rows)
        path.with_suffix(".md").write_text(results_markdown(rows))
    return rows


def result_row(config, run_dir: Path, key: str, version: tuple[str, str], machine: str, command: str) -> dict:
    import torch

    from ecglab.checkpoint_meta import read_meta
    from ecglab.models import create_model
    from ecglab.models.profile import count_macs

    meta = read_meta(run_dir / "checkpoint/config.json")
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    with open(run_dir / "history.csv") as f:
        history = list(csv.DictReader(f))
    model = create_model(config.model, meta.num_classes, meta.in_chans, **config.model_kwargs)
    cost = count_macs(model, (1, meta.in_chans, meta.window_samples))
    value = lambda name, part: metrics[name][part]  # noqa: E731
    return {
        "dataset": config.dataset, "task": meta.task, "model": model_label(config), "seed": config.seed,
        "params": cost["params"], "macs": cost["macs"], "macs_layers": cost["macs_layers"],
        "budget_minutes": config.max_minutes or "", "threads": config.threads or torch.get_num_threads(), "epochs": len(history),
        "seconds_per_epoch": round(float(np.mean([float(h["seconds"]) for h in history])), 1),
        "macro_auc": value("macro_auc", "value"), "macro_auc_lo": value("macro_auc", "lo"), "macro_auc_hi": value("macro_auc", "hi"),
        "macro_f1": value("macro_f1", "value"), "macro_f1_lo": value("macro_f1", "lo"), "macro_f1_hi": value("macro_f1", "hi"),
        "commit": version[0], "code": version[1], "date": time.strftime("%Y-%m-%d"), "machine": machine, "command": command, "key": key,
    }  # fmt: skip


def model_label(config) -> str:
    """The cell's label, else the model's name with its non-default constructor arguments:
    `inceptionformer_tiny(norm=layer)`; `@10%` after it when the cell trains on 10% of the labels."""
    fraction = f"@{100 * config.label_fraction:g}%" if config.label_fraction < 1 else ""
    if config.label:
        return config.label + fraction
    kwargs = ",".join(f"{k}={v}" for k, v in sorted(config.model_kwargs.items()))
    return (f"{config.model}({kwargs})" if kwargs else config.model) + fraction


def results_markdown(rows: list[dict]) -> str:
    """One table per (dataset, task, training budget), in the shape of the notes' tables, with 95% CIs."""
    out = []
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        budget = f"{float(row['budget_minutes']):g}" if row.get("budget_minutes") not in (None, "") else ""
        groups.setdefault((row["dataset"], row["task"], budget), []).append(row)
    for (dataset, task, budget), group in groups.items():
        title = f"{dataset} · {task}" + (f" · {budget}-minute budget" if budget else "")
        out += [f"### {title}", "",
                "| model | seed | macro AUC [95% CI] | macro F1 [95% CI] | params | MACs | epochs | s/epoch | threads |",
                "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for r in sorted(group, key=lambda r: -float(r["macro_auc"])):
            out.append(f"| {r['model']} | {r['seed']} | {_with_ci(r, 'macro_auc')} | {_with_ci(r, 'macro_f1')} | {int(r['params']) / 1e6:.2f} M "
                       f"| {int(r['macs']) / 1e6:.0f} M | {r['epochs']} | {r['seconds_per_epoch']} | {r.get('threads', '')} |")  # fmt: skip
        out.append("")
        out += _seed_summary(group)
    return "\n".join(out)


def _seed_summary(group: list[dict]) -> list[str]:
    """Mean and range over seeds per model, when some model of the group ran with several seeds:
    the run-to-run spread that a single row's bootstrap interval (test records only) does not show."""
    by_model: dict[str, list[dict]] = {}
    for row in group:
        by_model.setdefault(row["model"], []).append(row)
    if all(len(rows) < 2 for rows in by_model.values()):
        return []
    out = ["Over seeds (the spread of training runs, which a row's test-set interval does not include):", "",
           "| model | seeds | mean macro AUC [min, max] | mean macro F1 [min, max] |", "| --- | ---: | --- | --- |"]  # fmt: skip
    for model, rows in sorted(
        by_model.items(), key=lambda item: -np.mean([float(r["macro_auc"]) for r in item[1]])
    ):
        seeds = ", ".join(sorted((str(r["seed"]) for r in rows), key=int))  # int in a fresh row
        out.append(
            f"| {model} | {seeds} | {_mean_range(rows, 'macro_auc')} | {_mean_range(rows, 'macro_f1')} |"
        )
    return out + [""]


def _mean_range(rows: list[dict], key: str) -> str:
    values = [float(r[key]) for r in rows]
    return f"{np.mean(values):.4f} [{min(values):.4f}, {max(values):.4f}]"


def _with_ci(row: dict, key: str) -> str:
    return f"{float(row[key]):.4f} [{float(row[key + '_lo']):.4f}, {float(row[key + '_hi']):.4f}]"


def parse_shard(text: str) -> tuple[int, int]:
    """`"i/n"` -> (i, n), 1 <= i <= n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        raise ValueError(f"--shard {text!r}: expected i/n with 1 <= i <= n, e.g. 1/2")
    return index, count


def run_bench(
    spec_path: str | Path,
    command: str,
    progress=None,
    echo=print,
    shard=(1, 1),
    models: tuple[str, ...] = (),
    tasks: tuple[str, ...] = (),
    seeds: tuple[int, ...] = (),
    fractions: tuple[float, ...] = (),
    full: bool = False,
    dry_run: bool = False,
    device: str | None = None,
    rerun_stale: bool = False,
    tables_only: bool = False,
) -> Path:
    """Run every cell not yet in the results table (of this shard, of these models, tasks, seeds
    and label fractions if given), after the pretrainings those cells start from, adding each row
    as it finishes, then write the spec's extra tables. `device` overrides every cell's;
    `rerun_stale` also runs the finished cells whose rows were measured with other package code;
    `tables_only` runs nothing and writes the tables of the cells finished so far."""
    from ecglab.train.loop import fit

    spec_path = Path(spec_path)
    spec = read_spec(spec_path)
    results_path = Path(spec.get("results", "benchmarks/results.csv"))
    if dry_run:
        results_path = bench_dir(spec, spec_path, dry_run) / "results.csv"
    done = {r["key"]: r.get("code", "") for r in read_results(results_path)}
    version, machine = code_version(), spec.get("machine") or machine_label()
    filters = {"model": models, "task": tasks, "seed": seeds, "label_fraction": fractions}
    every = list(cells(spec, spec_path, full, dry_run))  # the tables cover the whole grid, not the filter's
    grid = [
        replace(config, device=device or config.device)
        for config in every
        if all(not wanted or getattr(config, field) in wanted for field, wanted in filters.items())
    ]
    if not grid:
        wanted = [f"{field} {', '.join(map(str, values))}" for field, values in filters.items() if values]
        raise ValueError(f"{spec_path}: no cell of {' and '.join(wanted)} in this grid")
    archive = archive_root(results_path, spec_path)
    if tables_only:
        write_tables(spec, every, results_path, archive, echo)
        return results_path
    jobs = pretrain_jobs(spec, spec_path, bench_dir(spec, spec_path, dry_run), full, dry_run)
    keys = cell_keys(grid, jobs)
    stale = sum(key in done and done[key] != version[1] for key in keys)
    if stale:
        echo(f"{stale} finished cell(s) of this grid were measured with other package code (their rows' `code`): "
             + ("running them again" if rerun_stale else "kept; --rerun-stale runs them again"))  # fmt: skip

    def finished(key: str) -> bool:
        return key in done and (not rerun_stale or done[key] == version[1])

    todo = [config for config, key in zip(grid, keys, strict=True) if not finished(key)]
    needed = [job for job in jobs.values() if any(job_of(config, jobs) is job for config in todo)]
    for position, job in enumerate(needed):
        if position % shard[1] == shard[0] - 1 and not ensure_pretrained(job, device, progress, echo):
            echo(f"pretrain {job.name}: done already, skipped")
    for position, (config, key) in enumerate(zip(grid, keys, strict=True)):
        if position % shard[1] != shard[0] - 1:
            continue
        if finished(key):
            echo(f"{config.name}: done already, skipped")
            continue
        if (job := job_of(config, jobs)) is not None:
            ensure_pretrained(job, device, progress, echo)  # another shard's, not finished yet
        echo(f"{config.name}: training")
        run_dir = fit(config, progress)
        archive_run(run_dir, archive / config.run_name)
        rows = add_result(results_path, result_row(config, run_dir, key, version, machine, command))
        done = {r["key"]: r.get("code", "") for r in rows}
    with file_lock(results_path):
        results_path.with_suffix(".md").write_text(results_markdown(read_results(results_path)))
    write_tables(spec, every, results_path, archive, echo)
    return results_path


def cell_keys(grid: list, jobs: dict) -> list[str]:
    """Each cell's key, preparing (or finding) the data cache once per dataset and settings."""
    from ecglab.data import get_reader
    from ecglab.data.cache import prepare
    from ecglab.train.loop import cache_dir_for, cache_settings

    manifests = {}
    keys = []
    for config in grid:
        cache = cache_dir_for(config)
        where = (config.dataset, config.root, config.fs, cache)
        if where not in manifests:
            reader = get_reader(config.dataset, config.root, config.fs)
            manifests[where] = prepare(reader, cache, cache_settings(config))[0]
        job = job_of(config, jobs)
        keys.append(cell_key(config, manifests[where]["inputs_hash"], job and job.config))
    return keys


def write_tables(spec: dict, grid: list, results_path: Path, archive: Path, echo=print) -> None:
    """Each writer named in the spec's `tables` turns the grid's run folders (this machine's, else
    those archived by earlier sessions) into a markdown page beside the results table
    (`<results stem>_<writer>.md`). `grid` is the whole spec's: a run of one shard, task or model
    rewrites the page with every finished cell."""
    from ecglab.train.tables import get_writer

    for name in spec.get("tables") or []:
        runs = [(config, run_folder(config, archive)) for config in grid]
        runs = [(config, run) for config, run in runs if run is not None]
        path = results_path.with_name(f"{results_path.stem}_{name}.md")
        path.write_text(get_writer(name)(runs))
        echo(f"{path} written")
