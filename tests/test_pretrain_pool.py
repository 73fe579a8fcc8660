"""The unlabelled pool: training folds only, leads mapped by name, evaluated folds refused, views skipped by name."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ecglab.data.cache import PrepareSettings, prepare
from ecglab.data.cinc2017 import CinC2017
from ecglab.data.dataset import CachedSplit
from ecglab.data.ptbxl import PTBXL
from ecglab.models import create_model
from ecglab.pretrain.clocs import CLOCS
from ecglab.pretrain.cpc import CPC
from ecglab.pretrain.pool import PoolWindows, UnlabelledPool, copy_of_evaluated, refuse_evaluated_folds
from ecglab.pretrain.st_mem import STMEM
from ecglab.pretrain.views import ContrastiveViews, ViewSpec
from helpers import write_ptbxl

SAME_PATIENT = ["00820", "00825", "00828"]  # PTB-XL patient 325, all in training fold 7


def _prepare_subset(reader, ids, out):
    """A cache of a few of the reader's records: the real files, prepared as `ecglab data prepare` does."""
    reader.__dict__["_table"] = (reader.records.loc[ids], reader.skipped)  # the records table, cut down
    prepare(reader, out, PrepareSettings(), workers=1)
    return out


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    from conftest import dataset_dir

    out = tmp_path_factory.mktemp("pool")
    ptbxl = PTBXL(dataset_dir("ptbxl"))
    with_signal = ptbxl.records.index[ptbxl.records["path"] != ""]
    cinc = CinC2017(dataset_dir("cinc2017"))
    return {
        "ptbxl": _prepare_subset(ptbxl, list(with_signal[:30]) + SAME_PATIENT, out / "ptbxl"),
        "cinc2017": _prepare_subset(cinc, list(cinc.records.index[:20]), out / "cinc2017"),
    }


@pytest.mark.data
def test_pool_holds_the_training_folds_with_leads_mapped_by_name(caches):
    pool = UnlabelledPool(caches)
    train = {name: CachedSplit(path, "train") for name, path in caches.items()}
    assert len(pool) == sum(len(split) for split in train.values())
    names = [pool.name(i) for i in range(len(pool))]
    assert all(n.split("/")[0] in caches for n in names)
    val_test = [
        f"ptbxl/{r}" for s in ("val", "test") for r in CachedSplit(caches["ptbxl"], s).meta["record_id"]
    ]
    assert val_test and not set(val_test) & set(names)
    ptb = names.index("ptbxl/" + train["ptbxl"].meta["record_id"][0])
    np.testing.assert_array_equal(pool.record(ptb), train["ptbxl"].record(0))
    assert pool.present(ptb).all()
    cinc = names.index("cinc2017/" + train["cinc2017"].meta["record_id"][0])
    single = pool.record(cinc)
    np.testing.assert_array_equal(single[0], train["cinc2017"].record(0)[0])  # ECG -> lead I
    assert not single[1:].any() and pool.present(cinc).tolist() == [True] + [False] * 11
    assert pool.length(cinc) == single.shape[1] >= 1000


@pytest.mark.data
def test_patients_are_shared_within_a_dataset_and_unknown_elsewhere(caches):
    pool = UnlabelledPool(caches)
    ids = {pool.name(i): int(pool.patient_ids[i]) for i in range(len(pool))}
    same = {ids[f"ptbxl/{r}"] for r in SAME_PATIENT}
    assert len(same) == 1 and same != {-1}
    others = {v for k, v in ids.items() if k.startswith("ptbxl/") and k[6:] not in SAME_PATIENT}
    assert same.isdisjoint(others)
    assert all(v == -1 for k, v in ids.items() if k.startswith("cinc2017/"))


@pytest.mark.data
def test_a_pool_holding_an_evaluated_fold_is_refused_naming_it(caches):
    UnlabelledPool(caches, evaluated={"ptbxl": (9, 10), "cinc2017": (9, 10)})  # the caches' own folds
    with pytest.raises(ValueError, match="fold 7 of ptbxl, a validation or test fold"):
        UnlabelledPool(caches, evaluated={"ptbxl": (7, 10)})
    with pytest.raises(ValueError, match="fold 3 of cinc2017"):
        refuse_evaluated_folds("cinc2017", [1, 3, 8], {"cinc2017": (3, 4)})


def test_cinc2020_copies_of_an_evaluated_dataset_are_left_out():
    evaluated = {"ptbxl": (9, 10), "cpsc2018": (9, 10)}
    assert copy_of_evaluated("cinc2020", "HR00042", evaluated) == "ptbxl"
    assert copy_of_evaluated("cinc2020", "A0007", evaluated) == "cpsc2018"
    assert copy_of_evaluated("cinc2020", "JS00001", evaluated) is None  # Chapman is not evaluated here
    assert copy_of_evaluated("cinc2020", "E00001", evaluated) is None  # Georgia has no other copy
    assert copy_of_evaluated("ptbxl", "00042", evaluated) is None


@pytest.mark.data
def test_windows_and_views_from_the_pool(caches):
    pool = UnlabelledPool(caches)
    x, present = PoolWindows(pool, 250)[0]
    assert x.shape == (12, 250) and present.dtype == torch.bool
    cmlc = ContrastiveViews(pool, ViewSpec("cmlc", segment_samples=500))
    assert len(cmlc) + len(cmlc.skipped) == len(pool)
    skipped = dict(cmlc.skipped)
    assert {n.split("/")[0] for n in skipped} == {"cinc2017"}  # one lead: nothing to contrast
    assert all("lacks lead row(s) 1, 2" in reason for reason in skipped.values())
    views, patient = cmlc[0]
    assert views.shape == (12, 1, 500) and patient.dtype == torch.int64
    long_cmsc = ContrastiveViews(pool, ViewSpec("cmsc", segment_samples=600))
    reasons = dict(long_cmsc.skipped)
    assert all(reasons[f"ptbxl/{r}"] == "1000 samples; CMSC needs 1200 (2 x 600)" for r in SAME_PATIENT)
    assert {n.split("/")[0] for n in (pool.name(i) for i in long_cmsc.keep)} == {"cinc2017"}
    assert long_cmsc[0][0].shape == (2, 12, 600)


def test_pool_from_a_data_root_prepares_missing_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGLAB_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    records = [(i, 100 + i % 2, fold, {"NORM": 100.0}, rng.normal(0, 0.3, (12, 1000)))
               for i, fold in enumerate([1, 2, 3, 9, 10], start=1)]  # fmt: skip
    root = write_ptbxl(tmp_path / "data" / "ptbxl", records)
    (root / "scp_statements.csv").write_text(
        ",description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass\nNORM,normal ECG,1.0,,,NORM,NORM\n"
    )
    pool = UnlabelledPool.from_data_root(root=tmp_path / "data", workers=1)
    assert sorted(pool.name(i) for i in range(len(pool))) == ["ptbxl/00001", "ptbxl/00002", "ptbxl/00003"]
    assert (tmp_path / "cache" / "ptbxl" / "100hz_10s_none" / "manifest.json").is_file()
    assert pool.patient_ids[0] == pool.patient_ids[2] != pool.patient_ids[1]
    with pytest.raises(ValueError, match="fold 3 of ptbxl"):
        UnlabelledPool.from_data_root(evaluated={"ptbxl": (3, 10)}, root=tmp_path / "data", workers=1)


@pytest.mark.data
@pytest.mark.usefixtures("one_thread")
def test_one_step_of_each_objective_on_real_pool_batches(caches):
    """Every objective takes its batches straight from the pool's datasets and learns from them."""
    torch.manual_seed(0)
    pool = UnlabelledPool(caches)
    windows = next(iter(DataLoader(PoolWindows(pool, 250), batch_size=4, shuffle=True)))
    views = next(iter(DataLoader(ContrastiveViews(pool, ViewSpec("cmsc", 125)), batch_size=4, shuffle=True)))
    small = {"widths": (8, 8, 8)}
    objectives = [
        (CPC("resnet1d_wang", context_dim=8, steps=4, **small), (windows[0],)),
        (
            STMEM(
                create_model("st_mem_vit", 0, dim=16, depth=1, num_heads=2), decoder_dim=8, decoder_depth=1
            ),
            windows,
        ),
        (CLOCS("resnet1d_wang", in_chans=12, embed_dim=8, **small), views),
    ]
    for objective, batch in objectives:
        loss = objective(*batch)
        loss.backward()
        assert loss.ndim == 0 and torch.isfinite(loss), type(objective).__name__
        grads = [p.grad for n, p in objective.named_parameters() if "encoder.head." not in n]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), type(objective).__name__
