"""Ensemble provenance (issue 14.3): ``backend``, ``store_path`` and ``target_networks`` are
declared by ``Ensemble`` (constructor parameters, None by default), set by the run, the
store and the sharded runs, and kept by ``Ensemble.merge``."""

import numpy as np

import nnft_fast as nf
from nnft_fast.run import EnsembleRun

NET = nf.Network((3, 6, 6), "tanh", "gaussian", cw=1.5)
X = np.array([[1.0, 0.5, -0.2], [0.3, -1.0, 0.8]])


def test_declared_with_defaults():
    run = EnsembleRun(NET, X, 1, backend="cpu")
    acc, _ = run.accumulate(0, 4)
    plain = nf.Ensemble(NET, run.inputs, 1, run.method, np.float64, acc, ((0, 4),))
    assert (plain.backend, plain.store_path, plain.target_networks) == (None, None, None)
    sampled = nf.sample(NET, X, 4, 1, backend="cpu")
    assert (sampled.backend, sampled.store_path, sampled.target_networks) == ("cpu", None, None)


def test_store_sets_them(tmp_path):
    path = str(tmp_path / "a.h5")
    written = nf.sample(NET, X, 12, 1, store=path, backend="cpu")
    for ens in (written, nf.open(path)):
        assert (ens.backend, ens.store_path, ens.target_networks) == ("cpu", path, 12)
    again = nf.reanalyze(path)
    assert (again.store_path, again.target_networks) == (path, 12)


def test_merge_keeps_them(tmp_path):
    run = EnsembleRun(NET, X, 1, backend="cpu")
    first, _ = run.accumulate(0, 5)
    second, _ = run.accumulate(5, 5)
    cpu = run.ensemble(first, 0, 5)
    cuda = run.ensemble(second, 5, 5, backend="cuda")
    merged = cpu.merge(cuda)
    assert merged.backend == "cpu,cuda"
    assert (merged.store_path, merged.target_networks) == (None, None)
    unknown = nf.Ensemble(NET, run.inputs, 1, run.method, np.float64, second, ((5, 10),))
    assert cpu.merge(unknown).backend is None

    a, b = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    nf.sample(NET, X, 8, 1, store=a, backend="cpu")
    nf.sample(NET, X, 6, 1, first_network=8, store=b, backend="cpu")
    stores = nf.open(a).merge(nf.open(b))
    assert (stores.backend, stores.store_path, stores.target_networks) == ("cpu", None, 14)
    assert stores.network_ranges == ((0, 8), (8, 14))
    later, _ = run.accumulate(14, 5)
    assert nf.open(a).merge(run.ensemble(later, 14, 5)).target_networks is None
    # pieces of one file's run keep its path and its target
    pieces = run.ensemble(first, 0, 5, store_path=a, target_networks=8).merge(
        run.ensemble(second, 5, 5, store_path=a, target_networks=8)
    )
    assert (pieces.store_path, pieces.target_networks) == (a, 8)
