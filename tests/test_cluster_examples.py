"""The cluster job scripts of examples/cluster/ (issue 18, point 6).

mpi4py and dask-jobqueue are not installed here: the Python scripts import them only in
their ``__main__`` / ``main`` paths, so they compile and load; ``mpi_futures.main`` runs
with a ``ProcessPoolExecutor`` standing in for ``MPIPoolExecutor``, and
``slurm_dask_jobqueue.main`` with a stand-in ``dask_jobqueue.SLURMCluster`` (an
in-process Dask LocalCluster). The sbatch script must be valid bash, and every flag its
``nnft run`` lines use must exist in the CLI's parser.
"""

import concurrent.futures as cf
import multiprocessing
import os
import py_compile
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.cli import build_parser

from ._examples import EXAMPLES, load_example

CLUSTER = os.path.join(EXAMPLES, "cluster")
SCRIPTS = sorted(name for name in os.listdir(CLUSTER) if name.endswith(".py"))
SBATCH = os.path.join(CLUSTER, "slurm_scheduler_file.sh")
SMALL = nf.Network((4, 8, 8), "tanh", "gaussian", cw=1.0, cb=0.0)
X = np.random.default_rng(0).standard_normal((2, 4))


def test_scripts_compile(tmp_path):
    assert SCRIPTS == ["mpi_futures.py", "slurm_dask_jobqueue.py"]
    for name in SCRIPTS:
        py_compile.compile(
            os.path.join(CLUSTER, name), doraise=True, cfile=str(tmp_path / f"{name}c")
        )


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_sbatch_script_is_bash():
    subprocess.run(["bash", "-n", SBATCH], check=True)


def _run_options():
    """Option strings of ``nnft run``."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "run" in a.choices)
    return set(sub.choices["run"]._option_string_actions)


def test_sbatch_nnft_flags_exist_in_the_cli():
    text = open(SBATCH).read().replace("\\\n", " ")
    commands = [line for line in text.splitlines() if "nnft run" in line]
    assert len(commands) == 2  # the driver, and the GPU variant in the comments
    used = {flag for line in commands for flag in re.findall(r"(?<!\S)(--?[a-z][\w-]*)", line)}
    assert {"--scheduler-file", "--threads", "--out", "--resources", "--backend"} <= used
    options = _run_options()
    assert sorted(used - options) == []


def test_mpi_futures_main_on_a_process_pool(tmp_path, monkeypatch):
    module = load_example("cluster/mpi_futures")
    monkeypatch.setattr(module, "NETWORK", SMALL)
    monkeypatch.setattr(module, "X", X)
    out = tmp_path / "mpi.h5"
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, as an MPI rank is
    with cf.ProcessPoolExecutor(1, mp_context=context) as pool:
        ens = module.main(pool, str(out), n_networks=600, shard_size=200, progress=False)
    single = nf.sample(SMALL, X, 600, seed=0)
    assert nf.open(out).n_networks == ens.n_networks == 600
    np.testing.assert_array_equal(ens.accumulator.block_counts, single.accumulator.block_counts)
    np.testing.assert_allclose(
        ens.accumulator.block_sums, single.accumulator.block_sums, rtol=1e-12, atol=0
    )


def test_slurm_dask_jobqueue_main_with_a_stand_in_cluster(tmp_path, monkeypatch, capsys):
    """The driver's logic with stand-ins for SLURMCluster and Client: the jobs asked for,
    and the sharded run on the client's executor (here a thread pool; real Dask executors
    are tested in test_distributed)."""
    dd = pytest.importorskip("dask.distributed")
    made = []

    class SLURMCluster:
        """dask_jobqueue.SLURMCluster stand-in: records the jobs asked for."""

        def __init__(self, **job):
            made.append(job)

        def scale(self, jobs):
            made.append({"jobs": jobs})

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class Client:
        """dask.distributed.Client stand-in on the cluster: its executor a thread pool."""

        def __init__(self, cluster):
            assert isinstance(cluster, SLURMCluster)
            self.pool = cf.ThreadPoolExecutor(2)

        def get_executor(self, **kwargs):
            made.append({"executor": kwargs})
            return self.pool

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.pool.shutdown()
            return False

    monkeypatch.setitem(
        sys.modules, "dask_jobqueue", types.SimpleNamespace(SLURMCluster=SLURMCluster)
    )
    monkeypatch.setattr(dd, "Client", Client)
    module = load_example("cluster/slurm_dask_jobqueue")
    for name, value in (("NETWORK", SMALL), ("X", X), ("N_NETWORKS", 600), ("SHARD_SIZE", 200)):
        monkeypatch.setattr(module, name, value)
    out = tmp_path / "jq.h5"
    module.main(str(out))
    assert made[0]["cores"] == module.CORES == made[0]["processes"]
    assert made[1] == {"jobs": module.JOBS} and made[2] == {"executor": {}}
    assert f"600 networks -> {out} (backend cpu)" in capsys.readouterr().out
    ens = nf.open(out)
    assert ens.n_networks == 600
    np.testing.assert_allclose(  # 3 shards merged: nf.sample's ensemble to rounding
        ens.two_point(2).value, nf.sample(SMALL, X, 600, 0).two_point(2).value, rtol=1e-12
    )
