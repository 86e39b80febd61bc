"""Sharded ensembles on any ``concurrent.futures.Executor`` (Dask, MPI, process pools).

The ensemble ``first_network .. first_network + n_networks - 1`` is cut into *shards*:
contiguous ranges of ``shard_size`` network indices (the last one shorter). Each shard
runs the ordinary engine on a worker -- ``_run_shard``, a picklable top-level function
that rebuilds the run from its JSON-able description (``jobs.run_config``), so workers
need nothing but the installed package -- and returns its mergeable accumulator state
(block sums and counts, docs/estimators.md#blocks). The driver adds the shards' block sums **in
shard order**, whatever order they complete in.

Reproducibility (what holds, exactly):

- For a fixed ``shard_size`` the accumulators are bit-identical for any executor, any
  number of workers, any completion order, and any number of retried, killed or resumed
  shards: each shard's block sums are a sequential sum over its networks in index order
  (``add_to_blocks``; independent of batch size and thread count, and a resumed shard
  continues the very same sum), and the merge is the fixed left fold
  ``((0 + S_0) + S_1) + ...`` over shards.
- The default ``shard_size`` (``default_shard_size``) depends on ``n_networks`` only,
  never on the cluster, so a default run gives the same bits on 1 or 1000 workers.
- With one shard (``shard_size >= n_networks``) the result is bit-identical to
  ``nf.sample``. With several shards it equals ``nf.sample`` to rounding only: a block
  sum over one machine adds networks one after the other, while here partial sums of
  consecutive shards are added; the relative difference is a few float64 ulps times the
  number of shards (tests: ``rtol=1e-12``). Block *counts*, and hence which networks
  were counted, are always identical; raw outputs are per network and bit-identical.

With a store (``store="run.h5"``) each shard streams into its own file
``run.h5.shards/shard_000012.h5`` through the ``shard_writer`` the caller passes
(``nf.sample`` passes ``store.write_shard``: this module never imports the store; shared
file system assumed); a retried or re-run shard resumes from its own committed count.
When every shard is complete the driver writes ``run.h5``: the file format of
``nnft_fast.h5format`` (``nf.open``, ``store_info``, ``read_raw``, ``reanalyze``
read it), with the merged accumulators and ``/raw/layer_<l>`` as HDF5 *virtual datasets*
over the shard files (relative paths: move the file and its ``.shards`` directory
together). ``committed`` is written last; the file is written under a temporary name and
renamed, so ``run.h5`` exists only complete. If the driver dies, running the same call
again (without ``overwrite``) reuses every shard file whose configuration matches and
only computes what is missing.
"""

import concurrent.futures as cf
import math
import os
import uuid
from contextlib import contextmanager

import h5py
import numpy as np

from .backends import check_backend
from .h5format import (
    ACCUMULATOR_GROUPS,
    SLOTS,
    StoreError,
    check_new_file,
    create_slots,
    open_store,
    write_header,
    write_slot,
)
from .progress import ShardProgress  # noqa: F401  (re-exported)
from .jobs import RUN_TYPES, run_config, run_from_config
from .run import (
    DEFAULT_COMPRESSION,
    check_compression,
    check_int,
    check_network_range,
)
from .threads import thread_limit
from .writer_lock import WriterLock

SHARD_DIGITS = 6
MIN_DEFAULT_SHARD = 4096
MAX_DEFAULT_SHARD = 2**18
DEFAULT_MAX_PENDING = 256
DEFAULT_RETRIES = 2
DEFAULT_WORKER_BACKEND = "cpu"  # bit-identity across worker counts holds per backend


class ShardError(RuntimeError):
    """A shard that still failed after its retries."""


def default_shard_size(n_networks):
    """Networks per shard when none is given: about n/64, within [4096, 2^18].

    A function of ``n_networks`` only (never of the cluster), so that default runs give
    bit-identical results on any number of workers.
    """
    return int(min(MAX_DEFAULT_SHARD, max(MIN_DEFAULT_SHARD, math.ceil(n_networks / 64))))


def shard_ranges(first_network, n_networks, shard_size):
    """[(start, count), ...]: contiguous index ranges of ``shard_size`` (last shorter)."""
    stop = first_network + n_networks
    return [
        (start, min(shard_size, stop - start)) for start in range(first_network, stop, shard_size)
    ]


def shard_path(store_path, index):
    """File of shard ``index`` of the store ``store_path``."""
    return os.path.join(shard_directory(store_path), shard_name(index))


def shard_directory(store_path):
    return os.fspath(store_path) + ".shards"


def shard_name(index):
    return f"shard_{index:0{SHARD_DIGITS}d}.h5"


def _expected_counts(start, count, n_blocks):
    """Block counts of networks start .. start+count-1 (network e -> block e mod n)."""
    full, rest = divmod(count, n_blocks)
    counts = np.full(n_blocks, full, np.int64)
    blocks = (start + np.arange(rest)) % n_blocks
    counts[blocks] += 1
    return counts


# --------------------------------------------------------------------------- worker side


def _run_shard(task, attempt=0):
    """Compute one shard (runs on a worker). ``task``: the dict built by the driver;
    ``attempt`` only makes retried submissions distinct for executors that key tasks by
    their arguments (Dask's ``pure=True``). Returns {"index", "start", "count",
    "accumulator": state, "ntk_accumulator": state or None}."""
    config, inputs = task["config"], task["inputs"]
    run = run_from_config(config, inputs, task["backend"])
    start, count = config["first_network"], config["n_networks"]
    path = task["path"]
    if path is None:
        acc, ntk_acc = _compute_in_memory(run, start, count, task["batch_size"], task["threads"])
        backend = run.backend
    else:
        ens = task["writer"](
            run,
            config,
            path,
            batch_size=task["batch_size"],
            threads=task["threads"],
            compression=task["compression"],
            backend=task["backend"],
        )
        acc, ntk_acc = ens.accumulator, ens.ntk_accumulator
        if ens.n_networks != count:
            raise ShardError(f"{path} holds {ens.n_networks} networks, expected {count}")
        backend = ens.backend
    return {
        "index": task["index"],
        "start": start,
        "count": count,
        "backend": backend,
        "accumulator": acc.state(),
        "ntk_accumulator": None if ntk_acc is None else ntk_acc.state(),
    }


def _compute_in_memory(run, start, count, batch_size, threads):
    with thread_limit(threads):
        return run.accumulate(start, count, batch_size)


# --------------------------------------------------------------------------- driver side


def _check_arguments(
    run,
    executor,
    shard_size,
    n_networks,
    retries,
    batch_size,
    threads,
    compression,
    max_pending,
    backend,
    store,
    shard_writer,
):
    """The arguments of the driver and of its workers, checked before any shard is
    submitted (the run itself is an ``EnsembleRun`` or a ``FieldRun``, validated when it
    was made)."""
    if not isinstance(run, RUN_TYPES):
        raise TypeError(
            f"run must be an nnft_fast EnsembleRun or FieldRun, got {type(run).__name__}"
        )
    if not isinstance(executor, cf.Executor):
        raise TypeError(
            "executor must be a concurrent.futures.Executor (e.g. "
            "dask.distributed.Client(...).get_executor(), "
            "mpi4py.futures.MPIPoolExecutor(), ProcessPoolExecutor()), got "
            f"{type(executor).__name__}"
        )
    if store is not None and not callable(shard_writer):
        raise TypeError(
            "store= needs shard_writer=, the function that streams a shard "
            "into its file (nnft_fast.store.write_shard; nf.sample passes it)"
        )
    if shard_size is None:
        shard_size = default_shard_size(n_networks)
    shard_size = check_int("shard_size", shard_size, 1)
    check_int("retries", retries, 0)
    check_int("max_pending", max_pending, 1)
    if batch_size is not None:
        check_int("batch_size", batch_size, 1)
    if threads is not None:
        check_int("threads", threads, 1)
    check_backend(backend)
    check_compression(compression)
    return shard_size


def _prepare_store(store, overwrite):
    path = os.fspath(store)
    check_new_file(path, overwrite)
    shards = shard_directory(path)
    if overwrite:
        old = (
            [
                os.path.join(shards, name)
                for name in sorted(os.listdir(shards))
                if name.startswith("shard_") and name.endswith(".h5")
            ]
            if os.path.isdir(shards)
            else []
        )
        for old_path in ([path] if os.path.exists(path) else []) + old:
            _remove_unused(old_path)
    os.makedirs(shards, exist_ok=True)
    return path


def _remove_unused(path):
    """Delete a store file no writer holds (the writer lock is taken first, as the plain
    store's overwrite does); a file in use is a StoreError."""
    try:
        lock = WriterLock(path)
    except BlockingIOError:
        raise StoreError(f"{path} is open by another process; refusing to overwrite it") from None
    try:
        os.remove(path)
    finally:
        lock.release()


def sample_sharded(
    run,
    n_networks,
    executor,
    *,
    first_network=0,
    shard_size=None,
    store=None,
    shard_writer=None,
    overwrite=False,
    compression=DEFAULT_COMPRESSION,
    threads=None,
    progress=None,
    retries=DEFAULT_RETRIES,
    batch_size=None,
    max_pending=DEFAULT_MAX_PENDING,
    backend=DEFAULT_WORKER_BACKEND,
):
    """Run ``run`` (a validated ``EnsembleRun``) for networks first_network, ...,
    first_network + n_networks - 1, cut into shards executed on ``executor``; returns
    an ``nf.Ensemble`` (module docstring: what is bit-identical to what).

    executor: any ``concurrent.futures.Executor`` -- ``dask.distributed.Client(addr)
    .get_executor()``, ``mpi4py.futures.MPIPoolExecutor()``, a ``ProcessPoolExecutor``.
    shard_size: networks per shard (default ``default_shard_size(n_networks)``).
    store: path of the merged HDF5 file; shard files go to ``<store>.shards/``, written
    on the workers by ``shard_writer(run, config, path, *, batch_size, threads,
    compression, backend) -> Ensemble`` (``nnft_fast.store.write_shard``, which resumes
    what an earlier attempt committed; required with a store).
    threads, batch_size: Numba threads and networks per batch inside each shard.
    progress: ``progress(networks done, total)`` as shards complete; if it also has a
    ``shard_done(done, total)`` method, that is called first (``ShardProgress``).
    retries: resubmissions of a failed shard (a store shard resumes from its file).
    max_pending: at most this many shards are submitted and not yet merged, which bounds
    the driver's memory for results that arrive out of order.
    backend: what each worker computes on ("cpu" default; "auto" lets every worker take
    its GPU if it has one, "cuda" requires one). Bit-identity across worker counts is
    stated for a fixed backend.
    """
    first_network, n_networks = check_network_range(first_network, n_networks, 2)
    shard_size = _check_arguments(
        run,
        executor,
        shard_size,
        n_networks,
        retries,
        batch_size,
        threads,
        compression,
        max_pending,
        backend,
        store,
        shard_writer,
    )
    # The workers' descriptions of their shards (a user activation is refused here).
    configs = [
        run_config(run, count, start)
        for start, count in shard_ranges(first_network, n_networks, shard_size)
    ]
    path = _prepare_store(store, overwrite) if store is not None else None
    inputs = np.ascontiguousarray(run.inputs)
    token = uuid.uuid4().hex
    tasks = [
        {
            "index": index,
            "token": token,
            "inputs": inputs,
            "config": config,
            "path": None if path is None else os.path.abspath(shard_path(path, index)),
            "writer": shard_writer,
            "batch_size": batch_size,
            "threads": threads,
            "compression": compression,
            "backend": backend,
        }
        for index, config in enumerate(configs)
    ]
    acc, ntk_acc, backends = _execute(
        run, tasks, executor, n_networks, progress, retries, max_pending
    )
    backend_used = ",".join(sorted(backends))
    if path is None:
        return run.ensemble(acc, first_network, n_networks, ntk_acc, backend=backend_used)
    write_merged_store(
        path, run, tasks, acc, ntk_acc, first_network, n_networks, shard_size, backend_used
    )
    return open_store(path)


def _execute(run, tasks, executor, n_networks, progress, retries, max_pending):
    """Submit, retry and merge (in shard order) every task; returns the accumulators and
    the set of backends the shards ran on."""
    acc = run.new_accumulator()
    ntk_acc = run.new_ntk_accumulator()
    n_shards = len(tasks)
    attempts = [0] * n_shards
    pending = {}
    ready = {}
    next_submit = next_merge = 0
    done_shards = done_networks = 0
    backends = set()

    def submit(index):
        pending[executor.submit(_run_shard, tasks[index], attempts[index])] = index

    try:
        while next_merge < n_shards:
            while next_submit < n_shards and next_submit - next_merge < max_pending:
                submit(next_submit)
                next_submit += 1
            finished, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for future in sorted(finished, key=pending.get):
                index = pending.pop(future)
                try:
                    result = future.result()
                except Exception as exc:
                    if attempts[index] < retries:
                        attempts[index] += 1
                        submit(index)
                        continue
                    config = tasks[index]["config"]
                    raise ShardError(
                        f"shard {index} (networks {config['first_network']}.."
                        f"{config['first_network'] + config['n_networks'] - 1}) failed "
                        f"{attempts[index] + 1} times; last error: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                _check_result(result, tasks[index], acc, ntk_acc)
                ready[index] = result
                backends.update(str(result.get("backend", "cpu")).split(","))
                done_shards += 1
                done_networks += result["count"]
                if progress is not None:
                    shard_done = getattr(progress, "shard_done", None)
                    if callable(shard_done):
                        shard_done(done_shards, n_shards)
                    progress(done_networks, n_networks)
            while next_merge in ready:
                result = ready.pop(next_merge)
                acc.add_state(result["accumulator"])
                if ntk_acc is not None:
                    ntk_acc.add_state(result["ntk_accumulator"])
                next_merge += 1
    finally:
        for future in pending:
            future.cancel()
    return acc, ntk_acc, backends


def _check_result(result, task, acc, ntk_acc):
    """Refuse a shard result that does not count each of its networks exactly once."""
    config = task["config"]
    start, count = config["first_network"], config["n_networks"]
    if (
        not isinstance(result, dict)
        or result.get("index") != task["index"]
        or result.get("start") != start
        or result.get("count") != count
    ):
        raise ShardError(f"shard {task['index']} returned a result for another shard")
    expected = _expected_counts(start, count, acc.n_blocks)
    for name, target in (("accumulator", acc), ("ntk_accumulator", ntk_acc)):
        state = result.get(name)
        if target is None:
            continue
        if (
            state is None
            or state["block_sums"].shape != target.block_sums.shape
            or not np.array_equal(state["block_counts"], expected)
        ):
            raise ShardError(
                f"shard {task['index']} returned a {name} that does not hold "
                f"networks {start}..{start + count - 1} exactly once"
            )


@contextmanager
def dask_executor(scheduler=None, workers=None, threads_per_worker=1):
    """An Executor on a Dask cluster, closed on exit: ``scheduler`` = the address of a
    running scheduler ("tcp://HOST:8786"), or ``workers`` = the number of worker
    processes of a LocalCluster started here (``threads_per_worker`` task threads each).
    """
    if (scheduler is None) == (workers is None):
        raise ValueError(
            "give exactly one of scheduler (address of a running Dask "
            "scheduler, e.g. tcp://host:8786) and workers (size of a local "
            "cluster)"
        )
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(
            "sharded runs on Dask need dask.distributed: pip install 'nnft_fast[dask]'"
        ) from None
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client.get_executor()
        return
    workers = check_int("workers", workers, 1)
    threads_per_worker = check_int("threads_per_worker", threads_per_worker, 1)
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client.get_executor()


# --------------------------------------------------------------------------- merged file


def write_merged_store(
    path,
    run,
    tasks,
    acc,
    ntk_acc,
    first_network,
    n_networks,
    shard_size,
    backend=DEFAULT_WORKER_BACKEND,
):
    """Write the store file ``path`` (``nnft_fast.h5format``) over complete shard files:
    merged accumulators, raw outputs as virtual datasets, ``committed`` last."""
    config = run_config(run, n_networks, first_network)
    directory = os.path.dirname(os.path.abspath(path))
    names = [os.path.relpath(task["path"], directory) for task in tasks]
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    shards = {"shard_size": shard_size, "n_shards": len(tasks), "files": names}
    try:
        with h5py.File(tmp, "w", libver="latest", locking=False) as f:
            write_header(f, run, config, backend, shards=shards)
            nb = run.inputs.shape[0]
            for layer, neurons in run.save:
                layout = h5py.VirtualLayout(shape=(n_networks, neurons, nb), dtype=run.dtype)
                row = 0
                for task, name in zip(tasks, names):
                    count = task["config"]["n_networks"]
                    layout[row : row + count] = h5py.VirtualSource(
                        name, f"raw/layer_{layer}", shape=(count, neurons, nb)
                    )
                    row += count
                f.create_virtual_dataset(f"raw/layer_{layer}", layout, fillvalue=np.nan)
            groups = [
                (name, merged)
                for name, merged in zip(ACCUMULATOR_GROUPS, (acc, ntk_acc))
                if merged is not None
            ]
            create_slots(f, groups)
            for name, merged in groups:
                write_slot(f[f"{name}/{SLOTS[0]}"], merged, n_networks)
            f.flush()
            f.attrs["committed"] = np.int64(n_networks)
            f.flush()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


__all__ = [
    "ShardError",
    "ShardProgress",
    "dask_executor",
    "default_shard_size",
    "sample_sharded",
    "shard_path",
    "shard_ranges",
    "write_merged_store",
]
