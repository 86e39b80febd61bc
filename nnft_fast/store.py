"""HDF5 ensemble store: streaming raw outputs, checkpointed accumulators, crash-safe resume.

File layout (schema 1), readable with plain h5py or ``h5dump``::

    /                      attrs: schema_version, package_version, config (JSON),
                           created, host, backend, committed (written LAST per batch)
    /inputs                (B, n_0) float64, the inputs X
    /raw/layer_<l>         (N, n_saved, B) float32|float64, chunked ~1 MiB, resizable,
                           compressed (lzf|gzip), fletcher32; row e - first_network is
                           network e; rows at or beyond ``committed`` are not valid
    /accumulator/slot_0    block_sums (n_blocks, L, n_stat), block_counts (n_blocks,);
    /accumulator/slot_1    attrs committed: the number of networks each slot holds
    /ntk_accumulator/slot_0, slot_1   the same for the NTK statistics (runs with "ntk";
                           config["ntk"] holds lambda_b, lambda_w, readouts)

Commit protocol per batch of networks [c, c+k): grow and write the raw datasets, write
the accumulators into the slot that does *not* hold the committed state, flush, then set
``committed = c + k`` and flush again. A process killed at any moment leaves a file whose
``committed`` networks are complete, with one slot holding exactly their accumulator.
The writer keeps the file in SWMR mode and holds an exclusive OS lock on it (see
``writer_lock``): a second writer is refused, and readers watch a running file with
``h5py.File(path, "r", swmr=True, locking=False)`` (``nf.open`` does this). On file
systems without ``flock`` only the user can make sure a single writer runs.
"""
import datetime
import json
import os
import socket

import h5py
import numpy as np

from nnft_fast.kernels.cpu.moments import sample_statistics

from .accumulators import DEFAULT_BLOCKS, MomentAccumulator
from .network import Network
from .sampling import EnsembleRun, check_int
from .threads import thread_limit
from .writer_lock import (SWMR_WRITE_FLAG, WriterLock, clear_stale_write_flags, read_superblock,
                          writer_alive)

SCHEMA_VERSION = 1
CHUNK_BYTES = 2 ** 20
COMPRESSIONS = ("lzf", "gzip", None)


class StoreError(ValueError):
    """A store file that cannot be used as asked (corrupt, mismatched, in use)."""


def _package_version():
    from . import __version__
    return __version__


def run_config(run: EnsembleRun, n_networks, first_network):
    """JSON-able description that fully determines the results of a run."""
    if not run.network.activation.is_builtin:
        raise ValueError("runs with a user-supplied activation cannot be stored: the file "
                         "could not rebuild the activation to resume; use a built-in one")
    config = {
        "network": run.network.config(),
        "seed": run.seed,
        "method": run.method,
        "dtype": run.dtype.name,
        "observables": list(run.observables),
        "save": [[layer, count] for layer, count in run.save],
        "n_networks": int(n_networks),
        "first_network": int(first_network),
        "n_inputs": int(run.inputs.shape[0]),
    }
    if run.ntk is not None:
        config["ntk"] = {"lambda_b": run.ntk.lambda_b, "lambda_w": run.ntk.lambda_w,
                         "readouts": run.ntk.readouts}
    return config


def run_from_config(config, inputs, backend="cpu"):
    """Rebuild the EnsembleRun described by a stored config (on ``backend``)."""
    net = config["network"]
    network = Network(tuple(net["widths"]), net["activation"], net["init"], cw=net["cw"],
                      cb=net["cb"])
    ntk = config.get("ntk", {})
    return EnsembleRun(network, inputs, config["seed"], method=config["method"],
                       dtype=config["dtype"], observables=tuple(config["observables"]),
                       save={layer: count for layer, count in config["save"]} or None,
                       lambda_b=ntk.get("lambda_b", 1.0), lambda_w=ntk.get("lambda_w", 1.0),
                       ntk_readouts=ntk.get("readouts", 2), backend=backend)


def _open_reader(path):
    """Open for reading; in SWMR mode when a writer is running or was killed.

    A killed writer's file with fewer bytes than its superblock's end-of-file address
    is refused here: HDF5's SWMR reader would retry its reads for a long time.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such store file: {path}") from None
    try:
        state = read_superblock(fd)
        swmr = state is not None and bool(state[0] & SWMR_WRITE_FLAG)
        size = os.fstat(fd).st_size
        if swmr and size < state[1] and not writer_alive(fd):
            raise StoreError(f"{path} is truncated ({size} bytes, the superblock expects "
                             f"{state[1]})")
    finally:
        os.close(fd)
    try:
        return h5py.File(path, "r", libver="latest", swmr=swmr, locking=False)
    except OSError as exc:
        raise StoreError(f"{path} is not a readable nnft_fast store: {exc}") from None


class _Writer:
    """The single writer of a store file: OS lock, stale-flag recovery, HDF5 handle."""

    def __init__(self, path, create):
        try:
            self.lock = WriterLock(path, create=create)
        except FileNotFoundError:
            raise FileNotFoundError(f"no such store file: {path}") from None
        except BlockingIOError:
            raise StoreError(f"{path} is open by another process (a second writer is "
                             "refused; readers of a running file must open it with "
                             "swmr=True, locking=False)") from None
        try:
            if not create:
                clear_stale_write_flags(self.lock.fd)
            self.file = h5py.File(path, "w" if create else "r+", libver="latest",
                                  locking=False)
        except OSError as exc:
            self.lock.release()
            raise StoreError(f"{path} is not a writable nnft_fast store: {exc}") from None
        except BaseException:
            self.lock.release()
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Close and unlock; when an error is already on its way up, a failing close
        (e.g. on a full disk) must not mask it."""
        try:
            self.file.close()
        except Exception:
            if exc_type is None:
                raise
        finally:
            self.lock.release()


def _read_header(f, path):
    try:
        schema = int(f.attrs["schema_version"])
        config = json.loads(f.attrs["config"])
        committed = int(f.attrs["committed"])
        inputs = f["inputs"][...]
    except (KeyError, ValueError, OSError, TypeError) as exc:
        raise StoreError(f"{path} is not a complete nnft_fast store "
                         f"(missing or corrupt header: {exc})") from None
    if schema != SCHEMA_VERSION:
        raise StoreError(f"{path} has schema version {schema}; this nnft_fast reads "
                         f"version {SCHEMA_VERSION}")
    short = {name: d.shape[0] for name, d in f.get("raw", {}).items() if d.shape[0] < committed}
    if committed < 0 or committed > config.get("n_networks", 0) or short:
        raise StoreError(f"{path} claims {committed} committed networks but holds fewer "
                         f"(raw rows: {short or 'n/a'}); the file is corrupt")
    return config, committed, inputs


def _accumulator_groups(run):
    """(HDF5 group, fresh accumulator) of every accumulator the run checkpoints."""
    groups = [("accumulator", run.new_accumulator())]
    if run.ntk is not None:
        groups.append(("ntk_accumulator", run.new_ntk_accumulator()))
    return groups


def _load_accumulators(f, run, committed, path):
    """The run's accumulators (moments, then NTK or None) from the slot that holds
    exactly the ``committed`` networks."""
    loaded = []
    for name, acc in _accumulator_groups(run):
        loaded.append(_load_slot(f, name, acc, committed, path))
    return loaded[0], (loaded[1] if len(loaded) > 1 else None)


def _load_slot(f, name, acc, committed, path):
    if committed == 0:
        return acc
    for slot in ("slot_0", "slot_1"):
        group = f.get(f"{name}/{slot}")
        if group is not None and int(group.attrs["committed"]) == committed:
            try:
                sums = group["block_sums"][...]
                counts = group["block_counts"][...]
            except OSError as exc:
                raise StoreError(f"{path}: {name} checkpoint is corrupt ({exc})") from None
            if sums.shape != acc.block_sums.shape or int(counts.sum()) != committed:
                raise StoreError(f"{path}: {name} checkpoint does not match the header")
            acc.block_sums = sums
            acc.block_counts = counts
            return acc
    raise StoreError(f"{path}: no {name} checkpoint holds the {committed} committed "
                     "networks (file corrupt)")


def _raw_chunk_rows(n_neurons, n_inputs, itemsize):
    return max(1, CHUNK_BYTES // (n_neurons * n_inputs * itemsize))


def _create(path, run, config, compression):
    writer = _Writer(path, create=True)
    try:
        _write_header(writer.file, run, config, compression)
    except BaseException as exc:
        writer.__exit__(type(exc), exc, None)
        raise
    return writer


def _write_header(f, run, config, compression):
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["package_version"] = _package_version()
    f.attrs["config"] = json.dumps(config, sort_keys=True)
    f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    f.attrs["host"] = socket.gethostname()
    f.attrs["backend"] = run.backend
    f.attrs["committed"] = np.int64(0)
    f.create_dataset("inputs", data=run.inputs)
    nb = run.inputs.shape[0]
    for layer, count in run.save:
        rows = _raw_chunk_rows(count, nb, run.dtype.itemsize)
        f.create_dataset(f"raw/layer_{layer}", shape=(0, count, nb), maxshape=(None, count, nb),
                         dtype=run.dtype, chunks=(rows, count, nb), compression=compression,
                         fletcher32=True)
    for name, acc in _accumulator_groups(run):
        for slot in ("slot_0", "slot_1"):
            group = f.create_group(f"{name}/{slot}")
            group.create_dataset("block_sums", data=acc.block_sums)
            group.create_dataset("block_counts", data=acc.block_counts)
            group.attrs["committed"] = np.int64(-1)
    f.flush()
    f.swmr_mode = True


def _commit_batch(f, run, accs, committed, stats, raw, ntk_stats, start):
    """Write one batch and advance ``committed`` last (protocol in the module docstring).
    ``accs``: (moment accumulator, NTK accumulator or None)."""
    count = stats.shape[0]
    rows = committed + count
    for (layer, _), block in zip(run.save, raw):
        dset = f[f"raw/layer_{layer}"]
        dset.resize(rows, axis=0)
        dset[committed:rows] = block
    free = next(s for s in ("slot_0", "slot_1")
                if int(f[f"accumulator/{s}"].attrs["committed"]) != committed)
    for name, acc, batch in (("accumulator", accs[0], stats),
                             ("ntk_accumulator", accs[1], ntk_stats)):
        if acc is None:
            continue
        acc.add(batch, start)
        group = f[f"{name}/{free}"]
        group["block_sums"][...] = acc.block_sums
        group["block_counts"][...] = acc.block_counts
        group.attrs["committed"] = np.int64(rows)
    f.flush()
    f.attrs["committed"] = np.int64(rows)
    f.flush()
    return rows


def _drive(f, run, accs, config, committed, batch_size, threads, progress):
    n_networks = config["n_networks"]
    first = config["first_network"]
    for raw_layer, _ in run.save:
        f[f"raw/layer_{raw_layer}"].resize(committed, axis=0)  # drop uncommitted rows
    with thread_limit(threads):
        while committed < n_networks:
            count = min(batch_size, n_networks - committed)
            start = first + committed
            stats, raw, ntk_stats = run.compute(start, count)
            try:
                committed = _commit_batch(f, run, accs, committed, stats, raw, ntk_stats,
                                          start)
            except OSError as exc:
                raise OSError(exc.errno, f"writing {f.filename} failed after {committed} "
                              f"committed networks ({exc}); the file keeps those: free "
                              "the space and nf.resume it") from exc
            if progress is not None:
                progress(committed, n_networks)
    return committed


def check_new_file(path, overwrite, hint=""):
    """Refuse to create ``path`` where a file exists (unless ``overwrite``) or the directory
    is missing or not writable; ``hint`` ends the FileExistsError message."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to "
                              f"replace it{hint}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise PermissionError(f"cannot write {path}: directory {directory} is missing or "
                              "not writable")


def sample_to_store(run, n_networks, path, *, first_network=0, batch_size=None, threads=None,
                    overwrite=False, compression="lzf", progress=None):
    """Run ``run`` for n_networks networks, streaming into a new store file at ``path``."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    path = os.fspath(path)
    check_new_file(path, overwrite, ", or resume it with nf.resume")
    config = run_config(run, n_networks, first_network)
    if batch_size is None:
        batch_size = run.default_batch_size(n_networks)
    batch_size = check_int("batch_size", batch_size, 1)
    with _create(path, run, config, compression) as writer:
        _drive(writer.file, run, (run.new_accumulator(), run.new_ntk_accumulator()), config,
               0, batch_size, threads, progress)
    return open_store(path)


def _record_backend(f, backend):
    """Provenance: the ``backend`` attribute lists every backend that computed networks
    of the file ("cpu", "cuda" or "cpu,cuda"; the networks are the same on both)."""
    used = set(str(f.attrs.get("backend", backend)).split(","))
    f.attrs["backend"] = ",".join(sorted(used | {backend}))


def resume(path, *, batch_size=None, threads=None, progress=None, expect=None,
           backend="auto"):
    """Continue an interrupted run from its committed count on ``backend`` ("cpu",
    "cuda", "auto"); returns the Ensemble.

    ``expect``: a config dict (as ``run_config``) the file must match; resuming a file
    whose configuration differs is refused.
    """
    path = os.fspath(path)
    with _Writer(path, create=False) as writer:
        f = writer.file
        config, committed, inputs = _read_header(f, path)
        if "shards" in f.attrs:
            raise StoreError(f"{path} is the merged view of a sharded run; re-run the same "
                             "sharded call (nf.sample(..., executor=...)) to complete it")
        if expect is not None and expect != config:
            diff = sorted(k for k in set(expect) | set(config) if expect.get(k) != config.get(k))
            raise StoreError(f"{path} holds a different configuration (differs in: "
                             f"{', '.join(diff)}); refusing to resume")
        run = run_from_config(config, inputs, backend)
        accs = _load_accumulators(f, run, committed, path)
        _record_backend(f, run.backend)
        f.swmr_mode = True
        if batch_size is None:
            batch_size = run.default_batch_size(config["n_networks"])
        batch_size = check_int("batch_size", batch_size, 1)
        _drive(f, run, accs, config, committed, batch_size, threads, progress)
    return open_store(path)


def open_store(path):
    """The Ensemble of the committed networks of a store file (read only)."""
    path = os.fspath(path)
    with _open_reader(path) as f:
        config, committed, inputs = _read_header(f, path)
        run = run_from_config(config, inputs)
        acc, ntk_acc = _load_accumulators(f, run, committed, path)
        backend = str(f.attrs.get("backend", "cpu"))
    ens = run.ensemble(acc, config["first_network"], committed, ntk_acc)
    ens.backend = backend  # provenance: the backend(s) that computed the networks
    ens.store_path = path
    ens.target_networks = config["n_networks"]
    return ens


def store_info(path):
    """Header of a store file as a dict (config, committed, provenance)."""
    path = os.fspath(path)
    with _open_reader(path) as f:
        config, committed, _ = _read_header(f, path)
        info = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()
                if k != "config"}
        info["config"] = config
        info["committed"] = committed
        info["raw"] = {name: f["raw"][name].shape for name in f.get("raw", {})}
    return info


def reanalyze(path, *, chunk_networks=65536, threads=None):
    """Recompute the correlators out of core from the stored raw outputs.

    Reads each saved layer chunk by chunk (memory bounded by ``chunk_networks``), so
    estimates use the saved neurons only: with every neuron of a layer saved they equal
    the online results to rounding; with a subset they estimate the same quantities
    (DESIGN.md §3 with n = number of saved neurons) with larger errors.
    Returns an Ensemble whose layers are the saved ones.
    """
    path = os.fspath(path)
    chunk_networks = check_int("chunk_networks", chunk_networks, 1)
    with _open_reader(path) as f:
        config, committed, inputs = _read_header(f, path)
        run = run_from_config(config, inputs)
        if not run.save:
            raise ValueError(f"{path} stores no raw outputs to re-analyse")
        neurons = list(run.network.widths[1:])
        for layer, count in run.save:
            neurons[layer - 1] = count
        acc = MomentAccumulator(run.network.widths, run.inputs.shape[0],
                                run.layout.four_point, DEFAULT_BLOCKS, neurons,
                                tuple(layer for layer, _ in run.save))
        tables = run.layout.kernel_tables()
        first = config["first_network"]
        with thread_limit(threads):
            for row in range(0, committed, chunk_networks):
                stop = min(row + chunk_networks, committed)
                stats = np.zeros((stop - row, run.network.n_layers, run.layout.n_stat))
                for layer, _ in run.save:
                    z = f[f"raw/layer_{layer}"][row:stop]
                    sample_statistics(z, *tables, run.layout.four_point, stats[:, layer - 1])
                acc.add(stats, first + row)
    ens = run.ensemble(acc, first, committed)
    ens.store_path = path
    return ens


def read_raw(path, layer, start=0, stop=None):
    """Committed raw outputs of ``layer``: array (networks, n_saved, B)."""
    path = os.fspath(path)
    with _open_reader(path) as f:
        _, committed, _ = _read_header(f, path)
        name = f"raw/layer_{layer}"
        if name not in f:
            raise ValueError(f"{path} stores no raw outputs for layer {layer}")
        stop = committed if stop is None else min(stop, committed)
        return f[name][start:stop]


__all__ = ["SCHEMA_VERSION", "StoreError", "open_store", "read_raw", "reanalyze", "resume",
           "sample_to_store", "store_info"]
