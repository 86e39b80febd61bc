"""A sharded nnft_fast run on SLURM through dask-jobqueue (pip install dask-jobqueue):
the driver, run on a login node, submits SLURM jobs that start Dask workers.

    python examples/cluster/slurm_dask_jobqueue.py [OUT.h5]

Every job is one node with ``CORES`` cores running ``CORES`` worker processes of one task
thread each, so each core computes one shard at a time (``threads=1``). The shard files
go to OUT.h5.shards/ on the shared file system, the merged store to OUT.h5 (default
``jobqueue_sharded.h5``). Run the same command again after a crash: finished shards are
reused. For GPU nodes see ``GPU`` below: the shards then run only on workers that
advertise a GPU (Dask resources).
"""

import logging
import sys

import numpy as np

import nnft_fast as nf

JOBS = 4  # SLURM jobs (nodes)
CORES = 16  # cores per job = worker processes per job
MEMORY = "32GB"  # per job
WALLTIME = "02:00:00"
GPU = False  # True: one GPU per job (--gres), workers advertise GPU=1, shards need it

NETWORK = nf.Network((64,) + (512,) * 8, "relu", "orthogonal", cw=2.0, cb=0.0)
X = np.random.default_rng(0).standard_normal((4, 64))
N_NETWORKS = 2_000_000
SHARD_SIZE = 20_000  # fixed: the result does not depend on the number of workers
OUT = "jobqueue_sharded.h5"


def main(out=OUT):
    from dask.distributed import Client
    from dask_jobqueue import SLURMCluster

    logging.basicConfig(level=logging.INFO)  # nnft_fast's events: retries, reused shards
    if GPU:
        cluster = SLURMCluster(
            cores=1,
            processes=1,  # one worker per job, on its GPU
            memory=MEMORY,
            walltime=WALLTIME,
            job_extra_directives=["--gres=gpu:1"],
            worker_extra_args=["--resources", "GPU=1"],
        )
    else:
        cluster = SLURMCluster(cores=CORES, processes=CORES, memory=MEMORY, walltime=WALLTIME)
    cluster.scale(jobs=JOBS)
    with cluster, Client(cluster) as client:
        executor = client.get_executor(resources={"GPU": 1}) if GPU else client.get_executor()
        ens = nf.sample(
            NETWORK,
            X,
            N_NETWORKS,
            seed=0,
            executor=executor,  # the shards wait in Dask's queue until the jobs start
            shard_size=SHARD_SIZE,
            store=out,
            threads=1,
            backend="cuda" if GPU else "cpu",
            progress=True,
        )
    print(f"{ens.n_networks:,} networks -> {out} (backend {ens.backend})")


if __name__ == "__main__":
    main(*sys.argv[1:2])
