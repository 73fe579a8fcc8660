"""Shared fixtures: the real data root, and skips where a dataset is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ecglab.paths import data_root


def pytest_configure(config):
    """Under pytest-xdist each worker gets its share of the cores, for torch here and for the CLIs the
    tests start: two workers on two cores with two threads each would oversubscribe them."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = str(max(1, (os.cpu_count() or 1) // int(workers)))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads
        import torch

        torch.set_num_threads(int(threads))


def dataset_dir(name: str) -> Path:
    """The real dataset folder, or a skip with the reason when it is absent."""
    path = data_root() / name
    if not path.is_dir():
        pytest.skip(f"dataset {name!r} not found at {path}; set ECGLAB_DATA to the folder holding it")
    return path


@pytest.fixture
def ptbxl_root() -> Path:
    return dataset_dir("ptbxl")


@pytest.fixture
def cpsc2018_root() -> Path:
    return dataset_dir("cpsc2018")


@pytest.fixture
def chapman_root() -> Path:
    return dataset_dir("chapman")


@pytest.fixture
def cinc2017_root() -> Path:
    return dataset_dir("cinc2017")


@pytest.fixture
def cinc2020_root() -> Path:
    return dataset_dir("cinc2020")


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: tiny models gain nothing from threads on shared cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_denormals():
    """Denormals flushed to zero for the test: untrained deep models produce them, and they run ~40x
    slower, which skews any time share measured on such a model.

    `set_flush_denormal` returns whether the CPU supports it, not the previous state, so the test's
    end turns flushing off again (torch's default): left on, it breaks later code that needs IEEE
    subnormals (hypothesis, in the fuzz test).
    """
    import torch

    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.fixture
def fast_cpu(one_thread, no_denormals):
    """One thread, no oneDNN (its per-shape setup costs more than it saves on tiny batches), and
    denormals flushed: untrained models on shared cores."""
    import torch

    with torch.backends.mkldnn.flags(enabled=False):
        yield


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """Every test ends with torch's thread count as it began: `fit` and `pretrain` called in-process
    set a recipe's `threads`, which would otherwise hold for every later test (a time share measured
    on one thread differs from one measured on all cores)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
