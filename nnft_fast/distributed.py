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

The executor: anything with ``submit(fn, *args)`` returning a
``concurrent.futures.Future`` (the driver waits with ``concurrent.futures.wait``): every
``concurrent.futures.Executor`` (process and thread pools, ``mpi4py.futures``,
``dask.distributed.Client.get_executor()``) and duck-typed objects with such a
``submit``. A Dask ``Client`` itself returns Dask futures: pass ``client.get_executor()``.
``dask_executor`` opens one on a running cluster (its address or its scheduler file) or a
local one, optionally restricted to workers that advertise resources (e.g. GPUs).

Logging (``nnft_fast.distributed``): the start of a run (INFO), a failed shard that is
resubmitted (WARNING) or that failed for good (ERROR), a shard file resumed or reused
from an earlier run (INFO), the merged store written (INFO).
"""

import concurrent.futures as cf
import contextlib
import logging
import math
import numbers
import os
import time
import uuid
from contextlib import contextmanager

import h5py
import numpy as np

from .backends import check_backend
from .h5files import open_h5
from .h5format import (
    ACCUMULATOR_GROUPS,
    SLOTS,
    StoreError,
    check_new_file,
    create_slots,
    label_dimensions,
    open_store,
    write_header,
    write_slot,
)
from .progress import ShardProgress, notify_started  # ShardProgress: re-exported
from .jobs import RUN_TYPES, run_config, run_from_config
from .run import (
    DEFAULT_COMPRESSION,
    check_compression,
    check_int,
    check_network_range,
    check_progress,
)
from .threads import thread_limit
from .writer_lock import WriterLock

SHARD_DIGITS = 6
MIN_DEFAULT_SHARD = 4096
MAX_DEFAULT_SHARD = 2**18
DEFAULT_MAX_PENDING = 256
DEFAULT_RETRIES = 2
DEFAULT_WORKER_BACKEND = "cpu"  # bit-identity across worker counts holds per backend
DEFAULT_DASK_TIMEOUT = 60.0  # seconds dask_executor waits for a scheduler file, a worker
EXECUTOR_NEEDED = (
    "executor must be a concurrent.futures.Executor, or any object whose submit(fn, *args) "
    "returns a concurrent.futures.Future (e.g. dask.distributed.Client(...).get_executor(), "
    "mpi4py.futures.MPIPoolExecutor(), ProcessPoolExecutor())"
)

log = logging.getLogger(__name__)


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
    "backend", "found": networks its file already held, "accumulator": state,
    "ntk_accumulator": state or None}."""
    config, inputs = task["config"], task["inputs"]
    run = run_from_config(config, inputs, task["backend"])
    start, count = config["first_network"], config["n_networks"]
    path = task["path"]
    found = 0 if path is None else _committed_in(path)
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
        "found": found,
        "accumulator": acc.state(),
        "ntk_accumulator": None if ntk_acc is None else ntk_acc.state(),
    }


def _committed_in(path):
    """Networks the shard file ``path`` of an earlier attempt or run holds (0 without a
    readable one): what the shard writer will resume from, reported to the driver."""
    if not os.path.exists(path):
        return 0
    try:
        with open_h5(path, "r") as f:
            return int(f.attrs.get("committed", 0))
    except Exception:  # unreadable: the writer decides (replace or refuse)
        return 0


def _compute_in_memory(run, start, count, batch_size, threads):
    with thread_limit(threads):
        return run.accumulate(start, count, batch_size)


# --------------------------------------------------------------------------- driver side


def check_executor(executor):
    """Refuse (TypeError) what cannot run shards: an object without a callable
    ``submit``, or a Dask ``Client`` (whose futures are not ``concurrent.futures``
    ones: its ``get_executor()`` is). What ``submit`` returns is checked as each shard
    is submitted (``_submitted``)."""
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"{EXECUTOR_NEEDED}; got {type(executor).__name__}, which has no submit method"
        )
    if type(executor).__module__.split(".")[0] == "distributed" and callable(
        getattr(executor, "get_executor", None)
    ):
        raise TypeError(
            f"{EXECUTOR_NEEDED}; got a Dask {type(executor).__name__}, whose submit returns "
            "Dask futures: pass client.get_executor()"
        )
    return executor


def _submitted(future, executor):
    """``future``, the return of ``executor.submit``, if it is a concurrent.futures.Future
    (``concurrent.futures.wait`` takes nothing else); otherwise it is cancelled where it
    can be and a TypeError names both."""
    if isinstance(future, cf.Future):
        return future
    with contextlib.suppress(Exception):
        future.cancel()
    raise TypeError(
        f"{EXECUTOR_NEEDED}; {type(executor).__name__}.submit returned a "
        f"{type(future).__module__}.{type(future).__qualname__}, not a "
        "concurrent.futures.Future"
    )


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
    check_executor(executor)
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
    ``shard_done(done, total)`` method, that is called first (``ShardProgress``), and a
    ``started(done, total)`` method is called before the first shard is submitted.
    ``True`` is a ``ShardProgress`` on stderr, ``False`` or None none.
    retries: resubmissions of a failed shard (a store shard resumes from its file).
    max_pending: at most this many shards are submitted and not yet merged, which bounds
    the driver's memory for results that arrive out of order.
    backend: what each worker computes on ("cpu" default; "auto" lets every worker take
    its GPU if it has one, "cuda" requires one). Bit-identity across worker counts is
    stated for a fixed backend.
    """
    first_network, n_networks = check_network_range(first_network, n_networks, 2)
    progress = check_progress(progress, sharded=True)
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
    log.info(
        "sharded run of networks %d..%d: %d shards of %d networks on %s (backend %r)%s",
        first_network,
        first_network + n_networks - 1,
        len(tasks),
        shard_size,
        type(executor).__name__,
        backend,
        "" if path is None else f", store {path}",
    )
    acc, ntk_acc, backends = _execute(
        run, tasks, executor, n_networks, progress, retries, max_pending
    )
    backend_used = ",".join(sorted(backends))
    if path is None:
        return run.ensemble(acc, first_network, n_networks, ntk_acc, backend=backend_used)
    write_merged_store(
        path, run, tasks, acc, ntk_acc, first_network, n_networks, shard_size, backend_used
    )
    log.info(
        "wrote %s: %d networks merged from %d shard files in %s",
        path,
        n_networks,
        len(tasks),
        shard_directory(path),
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

    reused = resumed = 0

    def submit(index):
        future = executor.submit(_run_shard, tasks[index], attempts[index])
        pending[_submitted(future, executor)] = index

    if progress is not None:
        notify_started(progress, 0, n_networks)
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
                    error = f"{type(exc).__name__}: {exc}"
                    if attempts[index] < retries:
                        attempts[index] += 1
                        log.warning(
                            "shard %d (networks %s) failed (attempt %d of %d): %s; resubmitted",
                            index,
                            _networks(tasks[index]),
                            attempts[index],
                            retries + 1,
                            error,
                        )
                        submit(index)
                        continue
                    message = (
                        f"shard {index} (networks {_networks(tasks[index])}) failed "
                        f"{attempts[index] + 1} times; last error: {error}"
                    )
                    log.error("%s", message)
                    raise ShardError(message) from exc
                _check_result(result, tasks[index], acc, ntk_acc)
                found = int(result.get("found", 0))
                if found > 0:
                    reused += found >= result["count"]
                    resumed += found < result["count"]
                    log.info(
                        "shard %d (networks %s): %s",
                        index,
                        _networks(tasks[index]),
                        "reused its complete file (from an earlier attempt or run)"
                        if found >= result["count"]
                        else f"resumed its file at {found} of {result['count']} networks",
                    )
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
    log.info(
        "%d shards merged (%d complete shard files reused, %d resumed)",
        n_shards,
        reused,
        resumed,
    )
    return acc, ntk_acc, backends


def _networks(task):
    """'first..last': the networks of a shard, for messages."""
    config = task["config"]
    return f"{config['first_network']}..{config['first_network'] + config['n_networks'] - 1}"


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


def parse_resources(text):
    """Dask worker resources from text, as ``dask worker --resources`` writes them:
    "GPU=1" or "GPU=1,MEM=10e9" (commas or spaces) -> {"GPU": 1, "MEM": 1e10}; a
    ValueError names a malformed item (usable as an argparse ``type``)."""
    resources = {}
    for item in str(text).replace(",", " ").split():
        name, sep, value = item.partition("=")
        try:
            amount = float(value) if sep and name else None
        except ValueError:
            amount = None
        if amount is None:
            raise ValueError(f"resources: expected NAME=AMOUNT (e.g. GPU=1), got {item!r}")
        resources[name] = int(amount) if amount.is_integer() else amount
    return _check_resources(resources)


def _check_resources(resources):
    """None, or a dict {name: positive finite amount} (TypeError/ValueError naming it)."""
    if resources is None:
        return None
    if not hasattr(resources, "items"):
        raise TypeError(
            f"resources must be a mapping such as {{'GPU': 1}}, got {type(resources).__name__}"
        )
    checked = {}
    for name, amount in resources.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"resources: names must be non-empty strings, got {name!r}")
        if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
            raise TypeError(f"resources[{name!r}] must be a number, got {amount!r}")
        if not math.isfinite(amount) or amount <= 0:
            raise ValueError(f"resources[{name!r}] must be finite and > 0, got {amount}")
        checked[name] = amount
    if not checked:
        raise ValueError("resources is empty: give e.g. {'GPU': 1}, or None")
    return checked


def _resource_text(resources):
    return ",".join(f"{name}={amount:g}" for name, amount in resources.items())


def _wait_for_file(path, timeout):
    """Wait up to ``timeout`` s for the scheduler file ``path`` (a scheduler started in
    the same job may not have written it yet); FileNotFoundError naming it after that."""
    deadline = time.monotonic() + timeout
    if not os.path.exists(path):
        log.info("waiting up to %g s for the Dask scheduler file %s", timeout, path)
    while not os.path.exists(path):
        if time.monotonic() >= deadline:
            raise FileNotFoundError(
                f"no Dask scheduler file {path} after {timeout:g} s (start the scheduler "
                "with: dask scheduler --scheduler-file PATH)"
            )
        time.sleep(0.1)


def check_worker_resources(client, resources, timeout=DEFAULT_DASK_TIMEOUT):
    """ValueError when no worker of ``client``'s cluster advertises all of ``resources``
    (its shards would wait for one forever). Waits up to ``timeout`` s for a first worker;
    with none by then, a WARNING says the check could not be made and the run goes on
    (Dask waits for workers). Workers that join later are not seen."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception:  # dask's TimeoutError (asyncio's or its own, by version)
        log.warning(
            "no Dask worker joined within %g s: cannot check that one advertises "
            "resources %s; the shards wait for such a worker",
            timeout,
            _resource_text(resources),
        )
        return
    workers = client.scheduler_info(n_workers=-1)["workers"]
    offered = [dict(info.get("resources") or {}) for info in workers.values()]
    if any(all(have.get(k, 0) >= v for k, v in resources.items()) for have in offered):
        return
    missing = [
        f"{k}={v:g}" for k, v in resources.items() if not any(h.get(k, 0) >= v for h in offered)
    ]
    seen = sorted({_resource_text(have) or "none" for have in offered})
    raise ValueError(
        f"no worker of the Dask cluster advertises resources {_resource_text(resources)}"
        f" ({'missing: ' + ', '.join(missing) if missing else 'never all on one worker'}; "
        f"the {len(offered)} connected workers advertise: {'; '.join(seen)}): its shards would "
        "wait forever. Start workers with dask worker --resources "
        f'"{_resource_text(resources)}", or leave resources out'
    )


@contextmanager
def dask_executor(
    scheduler=None,
    workers=None,
    scheduler_file=None,
    resources=None,
    threads_per_worker=1,
    timeout=DEFAULT_DASK_TIMEOUT,
):
    """An Executor on a Dask cluster, closed on exit. Exactly one of:

    - ``scheduler``: the address of a running scheduler ("tcp://HOST:8786");
    - ``scheduler_file``: the JSON file a running scheduler writes (``dask scheduler
      --scheduler-file PATH``, dask-mpi; Dask's HPC convention), waited
      for up to ``timeout`` s;
    - ``workers``: the number of worker processes of a LocalCluster started here
      (``threads_per_worker`` task threads each).

    ``resources`` (e.g. ``{"GPU": 1}``, a running cluster only): every shard is a Dask
    task that needs these resources, so it runs only on workers started with them
    (``dask worker --resources "GPU=1"``), one such shard per resource unit at a time.
    A ValueError names resources that no connected worker advertises (``timeout`` s are
    given for a first worker to connect); workers that join later are not checked.
    """
    given = [
        name
        for name, value in (
            ("scheduler", scheduler),
            ("scheduler_file", scheduler_file),
            ("workers", workers),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise ValueError(
            "give exactly one of scheduler (address of a running Dask scheduler, e.g. "
            "tcp://host:8786), scheduler_file (the file written by dask scheduler "
            "--scheduler-file) and workers (size of a local cluster)"
            + (f"; got {' and '.join(given)}" if given else "")
        )
    resources = _check_resources(resources)
    if resources is not None and workers is not None:
        raise ValueError(
            "resources= selects workers of a running cluster (scheduler= or "
            "scheduler_file=); the workers of a local cluster advertise none"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or timeout < 0:
        raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(
            "sharded runs on Dask need dask.distributed: pip install 'nnft_fast[dask]'"
        ) from None
    if workers is None:
        if scheduler_file is not None:
            scheduler_file = os.fspath(scheduler_file)
            _wait_for_file(scheduler_file, timeout)
            client = Client(scheduler_file=scheduler_file)
        else:
            client = Client(scheduler)
        with client:
            log.info("Dask scheduler %s", client.scheduler.address)
            if resources is None:
                yield client.get_executor()
                return
            check_worker_resources(client, resources, timeout)
            yield client.get_executor(resources=resources)
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
            label_dimensions(f, run)
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
    "check_executor",
    "check_worker_resources",
    "dask_executor",
    "default_shard_size",
    "parse_resources",
    "sample_sharded",
    "shard_path",
    "shard_ranges",
    "write_merged_store",
]
