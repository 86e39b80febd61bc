"""A sharded nnft_fast run on MPI through ``mpi4py.futures`` (pip install mpi4py; an MPI
library on the cluster).

    mpiexec -n 4 python -m mpi4py.futures examples/cluster/mpi_futures.py [OUT.h5]

Rank 0 runs this file and is the driver; ranks 1..3 are the ``MPIPoolExecutor``'s workers
(``python -m mpi4py.futures`` makes them wait for tasks). Each shard runs the ordinary
engine on a worker and streams into OUT.h5.shards/ (a file system every rank shares);
rank 0 merges them into OUT.h5 (default ``mpi_sharded.h5``). For a fixed shard size the
result is bit-identical for any number of ranks, and running the same command again after
a crash reuses the finished shards.

``main(executor, ...)`` takes any ``concurrent.futures.Executor``: the test suite runs it
with a ``ProcessPoolExecutor`` standing in for ``MPIPoolExecutor``.
"""

import logging
import sys

import numpy as np

import nnft_fast as nf

NETWORK = nf.Network((16, 256, 256, 256, 256), "tanh", "gaussian", cw=1.0, cb=0.0)
X = np.random.default_rng(0).standard_normal((4, 16))  # 4 inputs in 16 dimensions
N_NETWORKS = 400_000
SHARD_SIZE = 10_000  # fixed: the result does not depend on the number of ranks
OUT = "mpi_sharded.h5"


def main(executor, out=OUT, n_networks=N_NETWORKS, shard_size=SHARD_SIZE, progress=True):
    """Run the ensemble on ``executor``'s workers into the store ``out``; print and return
    the kernel K of the last layer with its error."""
    ens = nf.sample(
        NETWORK,
        X,
        n_networks,
        seed=0,
        executor=executor,
        shard_size=shard_size,
        store=out,
        threads=1,  # one worker process per rank: one Numba thread each
        backend="cpu",
        progress=progress,  # a line on stderr per update
    )
    k = ens.two_point(NETWORK.n_layers)
    print(
        f"{ens.n_networks:,} networks -> {out}: K[0,0] = {k.value[0, 0]:.6f} +- {k.error[0, 0]:.1e}"
    )
    return ens


if __name__ == "__main__":
    from mpi4py.futures import MPIPoolExecutor  # only the driver (rank 0) gets here

    logging.basicConfig(level=logging.INFO)  # nnft_fast's events: retries, reused shards
    with MPIPoolExecutor() as pool:
        main(pool, *sys.argv[1:2])
