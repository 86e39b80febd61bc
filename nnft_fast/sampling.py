"""Sampling drivers: the public functions that draw ensembles, per-network outputs and
Haar matrices, each a thin function over the run layer (``nnft_fast.run``).

Network ``e`` of ``seed`` is a pure function of (seed, e): batches, threads and shards
only decide which networks are computed where, never what they are.
"""
import numpy as np

from nnft_fast.kernels.cpu.haar import batch_haar_matrices

from .distributed import sample_sharded
from .memory import check_memory, haar_needs
from .run import (DEFAULT_BACKEND, DEFAULT_COMPRESSION, DEFAULT_DTYPE, DEFAULT_LAMBDA_B,
                  DEFAULT_LAMBDA_W, DEFAULT_METHOD, DEFAULT_NTK_READOUTS, DEFAULT_OBSERVABLES,
                  DEFAULT_SAVE, DEFAULT_SEED, SEED_LIMIT, EnsembleRun, check_int,
                  check_network_range)
from .store import sample_to_store, write_shard
from .threads import thread_limit


def sample(network, X, n_networks, seed=DEFAULT_SEED, *, method=DEFAULT_METHOD,
           batch_size=None, dtype=DEFAULT_DTYPE, observables=DEFAULT_OBSERVABLES,
           threads=None, first_network=0, store=None, save=DEFAULT_SAVE, overwrite=False,
           compression=DEFAULT_COMPRESSION, progress=None, lambda_b=DEFAULT_LAMBDA_B,
           lambda_w=DEFAULT_LAMBDA_W, ntk_readouts=DEFAULT_NTK_READOUTS,
           backend=DEFAULT_BACKEND, executor=None, shard_size=None):
    """Draw networks first_network, ..., first_network + n_networks - 1 of ``seed``,
    push the inputs X (B x n_0) through each, and accumulate per-layer correlators.

    method: "projected" (exact low-rank sampler, Gaussian/orthogonal), "dense"
    (explicit weights, any law) or "auto". dtype: forward arithmetic (float64 or
    float32); accumulation is always float64. observables: "two_point" (always),
    "four_point", "ntk". With "ntk": the NTK of the first ``ntk_readouts`` neurons of every
    layer with learning rates (lambda_b, lambda_w), DESIGN.md §2 (float64 only).
    Returns an ``nf.Ensemble``.

    backend: "cpu", "cuda" (numba.cuda kernels; float64, built-in activations, B <= 8; a
    missing GPU is an error) or "auto" (default: the GPU when Numba sees one and its kernels
    cover the job, else the CPU); the networks are the same on every backend and
    ``Ensemble.backend`` (and the store's provenance) says which one ran.

    executor: any ``concurrent.futures.Executor``
    (``dask.distributed.Client(address).get_executor()``, ``mpi4py.futures.MPIPoolExecutor()``):
    the ensemble is cut into shards of ``shard_size`` consecutive networks, run on the
    executor's workers (each on its own ``backend`` choice) and merged in shard order
    (``nnft_fast.distributed`` says what is bit-identical).

    store: path of a new HDF5 file to stream into (see ``nnft_fast.store``), with raw
    outputs selected by ``save`` (None, "default" = first 4 neurons of the last layer,
    or {layer: n_neurons}); ``progress(done, total)`` is called after every batch.
    """
    run = EnsembleRun(network, X, seed, method=method, dtype=dtype, observables=observables,
                      save=save if store is not None else None, lambda_b=lambda_b,
                      lambda_w=lambda_w, ntk_readouts=ntk_readouts, backend=backend)
    first_network, n_networks = check_network_range(first_network, n_networks, 2)
    if executor is not None:
        return sample_sharded(run, n_networks, executor, first_network=first_network,
                              shard_size=shard_size, store=store, shard_writer=write_shard,
                              overwrite=overwrite, compression=compression, threads=threads,
                              progress=progress, batch_size=batch_size, backend=backend)
    if shard_size is not None:
        raise ValueError("shard_size needs executor= (a concurrent.futures.Executor)")
    if store is not None:
        return sample_to_store(run, n_networks, store, first_network=first_network,
                               batch_size=batch_size, threads=threads, overwrite=overwrite,
                               compression=compression, progress=progress)
    with thread_limit(threads):
        acc, ntk_acc = run.accumulate(first_network, n_networks, batch_size, progress)
    return run.ensemble(acc, first_network, n_networks, ntk_acc)


def ntk_samples(network, X, n_networks, seed=DEFAULT_SEED, *, method=DEFAULT_METHOD,
                lambda_b=DEFAULT_LAMBDA_B, lambda_w=DEFAULT_LAMBDA_W,
                readouts=DEFAULT_NTK_READOUTS, threads=None, first_network=0):
    """Per-network NTKs H^(l)_{i1 i2; a1 a2} of the readout neurons i < ``readouts`` of
    every layer (DESIGN.md §2): list over layers l = 1..L of (n_networks, r, r, B, B)
    arrays, for the very networks ``sample`` and ``preactivations`` draw."""
    run = EnsembleRun(network, X, seed, method=method, observables=("two_point", "ntk"),
                      lambda_b=lambda_b, lambda_w=lambda_w, ntk_readouts=readouts,
                      kind="ntk_samples")
    first_network, n_networks = check_network_range(first_network, n_networks, 1)
    with thread_limit(threads):
        return run.ntk_samples(first_network, n_networks)


def preactivations(network, X, n_networks, seed=DEFAULT_SEED, *, method=DEFAULT_METHOD,
                   dtype=DEFAULT_DTYPE, threads=None, first_network=0):
    """Raw preactivations of networks first_network, ..., as a list over layers
    l = 1..L of arrays (n_networks, n_l, B): the very samples ``sample`` accumulates."""
    run = EnsembleRun(network, X, seed, method=method, dtype=dtype,
                      observables=("two_point",), kind="preactivations")
    first_network, n_networks = check_network_range(first_network, n_networks, 1)
    with thread_limit(threads):
        return run.preactivations(first_network, n_networks)


def haar_orthogonal(n_rows, n_cols, size, seed=DEFAULT_SEED, *, first=0):
    """``size`` Haar-random matrices (size, n_rows, n_cols), reproducible by (seed, index).

    Orthonormal columns when n_rows >= n_cols, orthonormal rows otherwise; Q of a Gaussian
    QR with Mezzadri's sign correction (diag R > 0).
    """
    n_rows = check_int("n_rows", n_rows, 1)
    n_cols = check_int("n_cols", n_cols, 1)
    seed = check_int("seed", seed, 0, SEED_LIMIT)
    first, size = check_network_range(first, size, 1, names=("first", "size"))
    check_memory(haar_needs(n_rows, n_cols, size), "haar_orthogonal")
    out = np.empty((size, n_rows, n_cols))
    batch_haar_matrices(np.uint64(seed), np.int64(first), np.uint64(0), out)
    return out
