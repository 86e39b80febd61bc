"""Sampling drivers: the public functions that draw ensembles, per-network outputs and
Haar matrices, each a thin function over the run layer (``nnft_fast.run``).

Network ``e`` of ``seed`` is a pure function of (seed, e): batches, threads and shards
only decide which networks are computed where, never what they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnft_fast.kernels.cpu.haar import batch_haar_matrices

from .distributed import sample_sharded
from .jobs import make_run
from .memory import check_memory, haar_needs
from .run import (
    DEFAULT_BACKEND,
    DEFAULT_COMPRESSION,
    DEFAULT_DTYPE,
    DEFAULT_LAMBDA_B,
    DEFAULT_LAMBDA_W,
    DEFAULT_METHOD,
    DEFAULT_NTK_READOUTS,
    DEFAULT_SAVE,
    DEFAULT_SEED,
    SEED_LIMIT,
    EnsembleRun,
    check_int,
    check_progress,
    check_network_range,
)
from .store import sample_to_store, write_shard
from .threads import thread_limit

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping, Sequence
    from concurrent.futures import Executor

    from numpy.typing import ArrayLike, DTypeLike

    from .ensemble import Ensemble
    from .network import Network


def sample(
    network: Network,
    X: ArrayLike,
    n_networks: int,
    seed: int = DEFAULT_SEED,
    *,
    method: str = DEFAULT_METHOD,
    batch_size: int | None = None,
    dtype: DTypeLike = DEFAULT_DTYPE,
    observables: Sequence[str] | None = None,
    threads: int | None = None,
    first_network: int = 0,
    store: str | os.PathLike | None = None,
    save: str | Mapping[int, int] | None = DEFAULT_SAVE,
    overwrite: bool = False,
    compression: str | None = DEFAULT_COMPRESSION,
    progress: bool | Callable[[int, int], object] | None = None,
    lambda_b: float = DEFAULT_LAMBDA_B,
    lambda_w: float = DEFAULT_LAMBDA_W,
    ntk_readouts: int = DEFAULT_NTK_READOUTS,
    backend: str = DEFAULT_BACKEND,
    executor: Executor | None = None,
    shard_size: int | None = None,
    quadruples: ArrayLike | None = None,
    sextuples: ArrayLike | None = None,
    deformation: object = None,
) -> Ensemble:
    """Draw an ensemble of random networks and accumulate its per-layer statistics.

    Networks ``first_network, ..., first_network + n_networks - 1`` of ``seed`` are drawn,
    the inputs X are pushed through each, and the statistics of every layer are added into
    float64 block accumulators (docs/estimators.md); memory does not grow with
    ``n_networks``.

    Parameters
    ----------
    network : Network or CosNet
        Widths, activation, weight law and variances (docs/conventions.md#network), or a
        cos-net field (docs/fields.md): then X are the B points in R^d, the field is
        layer 1 and the result a ``FieldEnsemble``.
    X : array_like, shape (B, n_0)
        The inputs, one per row; finite.
    n_networks : int
        How many networks to draw, at least 2.
    seed : int, default 0
        Seed of the ensemble, 0 <= seed < 2**64; network e of a seed is the same whatever
        the batch size, threads, backend or split (docs/random-numbers.md).
    method : {"auto", "projected", "dense"}, default "auto"
        "projected": the exact low-rank sampler (Gaussian and orthogonal weights,
        docs/projected-sampler.md); "dense": explicit weights, any law; "auto": projected
        where it is exact.
    batch_size : int, optional
        Networks computed per batch (default: sized to the memory of one batch of
        statistics). Does not change the results.
    dtype : {numpy.float64, numpy.float32}, default float64
        Arithmetic of the forward pass; accumulation is always float64.
    observables : sequence of str, optional
        Any of "two_point" (always computed), "four_point", "ntk" (MLPs). Default
        ("two_point", "four_point"); for a cos-net on more than 16 points "two_point"
        alone (the full four-point function grows as B^4: use ``quadruples``).
    threads : int, optional
        Numba threads for this call (restored afterwards).
    first_network : int, default 0
        Index of the first network drawn: ensembles of disjoint ranges merge
        (``Ensemble.merge``).
    store : str or os.PathLike, optional
        Path of a new HDF5 file to stream into (docs/file-format.md); the run can then be
        resumed after a crash and re-read.
    save : "default", None or dict {layer: n_neurons}, default "default"
        Raw outputs kept in the store: "default" the first 4 neurons of the last layer.
    overwrite : bool, default False
        Replace an existing store file (otherwise ``FileExistsError``).
    compression : {"lzf", "gzip", None}, default "lzf"
        HDF5 compression of the raw outputs.
    progress : bool or callable, optional
        ``True``: a progress line on stderr (``nnft_fast.progress.Progress``, or
        ``ShardProgress`` with ``executor``; see Notes); ``False`` or None: none; a
        callable: ``progress(done, total)``, called after every batch (or shard).
    lambda_b, lambda_w : float, default 1.0
        Learning rates of the biases and weights in the NTK (docs/conventions.md#ntk).
    ntk_readouts : int, default 2
        Readout neurons of every layer whose NTK is measured (at least 2).
    backend : {"auto", "cpu", "cuda"}, default "auto"
        "cuda": numba.cuda kernels (float64, built-in activations, B <= 8; no GPU is an
        ``nf.BackendUnavailable`` error); "auto": the GPU when Numba sees one and its
        kernels cover the job, else the CPU. The networks are the same on every backend.
    executor : concurrent.futures.Executor, optional
        Run the ensemble as shards of ``shard_size`` consecutive networks on this
        executor's workers (``dask.distributed.Client(...).get_executor()``,
        ``mpi4py.futures.MPIPoolExecutor()``), merged in shard order
        (``nnft_fast.distributed`` says what is bit-identical).
    shard_size : int, optional
        Networks per shard (with ``executor`` only; default a function of ``n_networks``).
    quadruples, sextuples : array_like of int, shape (T, 4) and (T, 6), optional
        Cos-net fields only: index tuples of points whose connected four- and six-point
        functions are accumulated (``FieldEnsemble.connected_four_point``,
        ``connected_six_point``), for any B.
    deformation : nf.Phi4, nf.LocalInteraction or nf.ParameterInteraction, optional
        Each network also carries its interaction s = S_int / coupling, the potential
        acting on every output of a cos-net or of an MLP's last layer (an MLP's box lies
        in its input space; docs/fields.md#deformations); the result's ``reweighted`` and
        ``first_order`` give the deformed correlators of every layer and ``quadrature``
        states the rule (no NTK; on CUDA cos-nets with built-in potentials only, MLPs and
        user functions on the CPU).

    Returns
    -------
    Ensemble
        The accumulated statistics with their estimators (``two_point``, ``four_point``,
        ``vertex``, ``ntk``, ``estimate``, ...); ``Ensemble.backend`` says which backend
        ran.

    Raises
    ------
    ValueError, TypeError
        For invalid arguments, naming the parameter.

    Notes
    -----
    ``progress=True`` writes one line on stderr: before the first batch it says the
    kernels compile on first use; after it, how long the first batch took and how much of
    that Numba spent compiling; then networks done, networks per second over the batches
    after the first, and the ETA. On a terminal the line is redrawn in place; in a log
    (stderr redirected) each update is a new line, every 10 s and at each tenth of the run
    (``nnft_fast.progress``). Events (the backend "auto" chose and why, resumes,
    retried shards, reused shard files) go to the ``logging`` logger ``"nnft_fast"``:
    ``logging.basicConfig(level=logging.INFO)`` shows them.
    """
    run = make_run(
        network,
        X,
        seed,
        method=method,
        dtype=dtype,
        observables=observables,
        save=save if store is not None else None,
        lambda_b=lambda_b,
        lambda_w=lambda_w,
        ntk_readouts=ntk_readouts,
        backend=backend,
        quadruples=quadruples,
        sextuples=sextuples,
        deformation=deformation,
    )
    first_network, n_networks = check_network_range(first_network, n_networks, 2)
    progress = check_progress(progress, sharded=executor is not None)
    if executor is not None:
        return sample_sharded(
            run,
            n_networks,
            executor,
            first_network=first_network,
            shard_size=shard_size,
            store=store,
            shard_writer=write_shard,
            overwrite=overwrite,
            compression=compression,
            threads=threads,
            progress=progress,
            batch_size=batch_size,
            backend=backend,
        )
    if shard_size is not None:
        raise ValueError("shard_size needs executor= (a concurrent.futures.Executor)")
    if store is not None:
        return sample_to_store(
            run,
            n_networks,
            store,
            first_network=first_network,
            batch_size=batch_size,
            threads=threads,
            overwrite=overwrite,
            compression=compression,
            progress=progress,
        )
    with thread_limit(threads):
        acc, ntk_acc = run.accumulate(first_network, n_networks, batch_size, progress)
    return run.ensemble(acc, first_network, n_networks, ntk_acc)


def ntk_samples(
    network: Network,
    X: ArrayLike,
    n_networks: int,
    seed: int = DEFAULT_SEED,
    *,
    method: str = DEFAULT_METHOD,
    lambda_b: float = DEFAULT_LAMBDA_B,
    lambda_w: float = DEFAULT_LAMBDA_W,
    readouts: int = DEFAULT_NTK_READOUTS,
    threads: int | None = None,
    first_network: int = 0,
) -> list[np.ndarray]:
    """Per-network NTKs H^(l)_{i1 i2; a1 a2} of the readout neurons i < ``readouts`` of
    every layer (docs/conventions.md#ntk): list over layers l = 1..L of
    (n_networks, r, r, B, B) arrays, for the very networks ``sample`` and
    ``preactivations`` draw."""
    run = EnsembleRun(
        network,
        X,
        seed,
        method=method,
        observables=("two_point", "ntk"),
        lambda_b=lambda_b,
        lambda_w=lambda_w,
        ntk_readouts=readouts,
        kind="ntk_samples",
    )
    first_network, n_networks = check_network_range(first_network, n_networks, 1)
    with thread_limit(threads):
        return run.ntk_samples(first_network, n_networks)


def preactivations(
    network: Network,
    X: ArrayLike,
    n_networks: int,
    seed: int = DEFAULT_SEED,
    *,
    method: str = DEFAULT_METHOD,
    dtype: DTypeLike = DEFAULT_DTYPE,
    threads: int | None = None,
    first_network: int = 0,
) -> list[np.ndarray]:
    """The preactivations of networks ``first_network, ..., first_network + n_networks - 1``.

    These are the very samples ``sample`` accumulates (same seed, same network indices).

    Parameters
    ----------
    network : Network
        Widths, activation, weight law and variances.
    X : array_like, shape (B, n_0)
        The inputs, one per row.
    n_networks : int
        How many networks, at least 1 (memory grows with it: use ``sample`` for
        statistics of large ensembles).
    seed : int, default 0
        Seed of the ensemble.
    method : {"auto", "projected", "dense"}, default "auto"
        Sampler, as in ``sample``; both give the same law, not the same numbers.
    dtype : {numpy.float64, numpy.float32}, default float64
        Arithmetic of the forward pass and dtype of the result.
    threads : int, optional
        Numba threads for this call.
    first_network : int, default 0
        Index of the first network.

    Returns
    -------
    list of numpy.ndarray
        One array per layer l = 1..L, of shape (n_networks, n_l, B).
    """
    run = make_run(
        network,
        X,
        seed,
        method=method,
        dtype=dtype,
        observables=("two_point",),
        kind="preactivations",
    )
    first_network, n_networks = check_network_range(first_network, n_networks, 1)
    with thread_limit(threads):
        return run.preactivations(first_network, n_networks)


def haar_orthogonal(
    n_rows: int, n_cols: int, size: int, seed: int = DEFAULT_SEED, *, first: int = 0
) -> np.ndarray:
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
