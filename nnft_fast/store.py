"""HDF5 ensemble store: streaming raw outputs, checkpointed accumulators, crash-safe resume.

The file layout, its header and slot writer and the verified reader are
``nnft_fast.h5format``; this module writes plain store files and reads them for the
public API (``open_store``, ``store_info``, ``read_raw``, ``reanalyze``, ``resume``).
It also writes the shard files of sharded runs: ``nf.sample(..., executor=..., store=...)``
hands ``write_shard`` to ``distributed.sample_sharded``, which never imports this module.

Commit protocol per batch of networks [c, c+k): check that the disk has room for the
batch, grow and write the raw datasets, write the accumulators with their checksum into
the slot that does *not* hold the committed state, flush, then set ``committed = c + k``
and flush again. A process killed at any moment leaves a file whose ``committed``
networks are complete, with one slot holding exactly their accumulator. Batches end on
raw-chunk boundaries where they can, so no compressed chunk is rewritten (the file stays
close to its payload at any batch size).

The writer keeps the file in SWMR mode and holds an exclusive OS lock on it (see
``writer_lock``): a second writer is refused, and readers watch a running file (``nf.open``
does this). On file systems without ``flock`` only the user can make sure a single writer
runs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from nnft_fast.kernels.cpu.moments import sample_statistics

from .accumulators import DEFAULT_BLOCKS, MomentAccumulator
from .backends import check_backend
from .h5files import open_h5, release_space, reserve_space
from .h5format import (
    ACCUMULATOR_GROUPS,
    READ_ERRORS,
    SCHEMA_VERSION,
    SLOTS,
    StoreError,
    accumulator_groups,
    attr_text,
    check_new_file,
    check_store_file,
    create_slots,
    label_dimensions,
    open_reader,
    open_store,
    reading,
    set_attr_text,
    verified,
    write_header,
    write_slot,
)
from .run import (
    DEFAULT_BACKEND,
    DEFAULT_COMPRESSION,
    check_compression,
    check_int,
    check_progress,
)
from .jobs import run_config
from .progress import notify_started
from .threads import thread_limit
from .writer_lock import WriterLock, clear_stale_write_flags

if TYPE_CHECKING:
    from collections.abc import Callable

    from .ensemble import Ensemble

log = logging.getLogger(__name__)

CHUNK_BYTES = 2**20
READ_CHUNK_NETWORKS = 65536  # networks read at a time by store_info and reanalyze


def _raw_chunk_rows(run, batch_size):
    """Rows per raw chunk, shared by every saved layer: at most one batch and 1 MiB."""
    nb = run.inputs.shape[0]
    per_mib = min(max(1, CHUNK_BYTES // (count * nb * run.dtype.itemsize)) for _, count in run.save)
    return max(1, min(batch_size, per_mib))


def _create(path, run, config, compression, batch_size):
    existed = os.path.exists(path)
    writer = _Writer(path, create=True)
    try:
        writer.reserve(0, 0)
        writer.open(create=True)
        f = writer.file
        write_header(f, run, config, run.backend)
        nb = run.inputs.shape[0]
        rows = _raw_chunk_rows(run, batch_size) if run.save else 1
        for layer, count in run.save:
            f.create_dataset(
                f"raw/layer_{layer}",
                shape=(0, count, nb),
                maxshape=(None, count, nb),
                dtype=run.dtype,
                chunks=(rows, count, nb),
                compression=compression,
                fletcher32=True,
            )
        label_dimensions(f, run)
        create_slots(f, accumulator_groups(run))
        f.flush()
        f.swmr_mode = True
    except BaseException as exc:
        writer.__exit__(type(exc), exc, None)
        if not existed and os.path.getsize(path) == 0:
            os.remove(path)  # leave no empty file where the run could not start
        raise
    return writer


class _Writer:
    """The single writer of a store file: OS lock, stale-flag recovery, HDF5 handle."""

    def __init__(self, path, create):
        try:
            self.lock = WriterLock(path, create=create)
        except FileNotFoundError:
            raise FileNotFoundError(f"no such store file: {path!r}") from None
        except BlockingIOError:
            raise StoreError(
                f"{path} is open by another process (a second writer is "
                "refused; readers of a running file must open it with "
                "swmr=True, locking=False)"
            ) from None
        self.file = None

    def reserve(self, needed_bytes, committed=None):
        """``h5files.reserve_space`` for this file."""
        reserve_space(self.lock.fd, self.lock.path, needed_bytes, committed)

    def open(self, create=False, swmr=False):
        try:
            self.file = (
                h5py.File(self.lock.path, "w", libver="latest", locking=False)
                if create
                else open_h5(self.lock.path, "r+", swmr=swmr)
            )
        except READ_ERRORS as exc:
            self.lock.release()
            raise StoreError(f"{self.lock.path} is not a writable nnft_fast store: {exc}") from None
        except BaseException:
            self.lock.release()
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Close and unlock; when an error is already on its way up, a failing close
        (e.g. on a full disk) must not mask it."""
        try:
            if self.file is not None:
                self.file.close()
        except Exception:
            if exc_type is None:
                raise
        finally:
            release_space(self.lock.fd)
            self.lock.release()


def _commit_batch(f, accs, committed, stats, raw_datasets, raw, ntk_stats, start):
    """Write one batch and advance ``committed`` last (protocol in the module docstring).
    ``accs``: (moment accumulator, NTK accumulator or None)."""
    count = stats.shape[0]
    rows = committed + count
    for dset, block in zip(raw_datasets, raw):
        dset.resize(rows, axis=0)
        dset[committed:rows] = block
    free = next(s for s in SLOTS if int(f[f"accumulator/{s}"].attrs["committed"]) != committed)
    for name, acc, batch in zip(ACCUMULATOR_GROUPS, accs, (stats, ntk_stats)):
        if acc is None:
            continue
        acc.add(batch, start)
        write_slot(f[f"{name}/{free}"], acc, rows)
    f.flush()
    try:
        f.attrs["committed"] = np.int64(rows)
        f.flush()
    except BaseException:
        # Keep the header at the count the error names: the closing flush writes it.
        with contextlib.suppress(*READ_ERRORS):
            f.attrs["committed"] = np.int64(committed)
        raise
    return rows


def _batch_end(committed, n_networks, batch_size, chunk_rows):
    """End of the next batch: ``batch_size`` networks on, moved back to a raw-chunk
    boundary when one lies inside the batch (so no compressed chunk is rewritten)."""
    end = min(committed + batch_size, n_networks)
    aligned = end - end % chunk_rows
    return aligned if end < n_networks and aligned > committed else end


def _batch_bytes(run, count):
    """Bytes of raw outputs ``count`` networks add to the file (before compression)."""
    return count * run.kernel_args.n_raw * run.dtype.itemsize


def _write_failure(path, committed, exc):
    """The OSError a failed batch write becomes: it names the committed count and keeps
    the errno HDF5 reports inside its message (ENOSPC on a full disk)."""
    code = getattr(exc, "errno", None)
    found = re.search(r"errno = (\d+)", str(exc))
    if not code and found:
        code = int(found.group(1))
    return OSError(
        code or errno.EIO,
        f"writing {path} failed after {committed} committed "
        f"networks ({exc}); the file keeps those: free the space and resume it "
        "(nf.resume / nnft resume)",
    )


def _drive(writer, run, accs, config, committed, batch_size, threads, progress):
    f = writer.file
    n_networks = config["n_networks"]
    first = config["first_network"]
    raw_datasets = [f[f"raw/layer_{layer}"] for layer, _ in run.save]
    for dset in raw_datasets:
        dset.resize(committed, axis=0)  # drop uncommitted rows
    chunk_rows = min((d.chunks[0] for d in raw_datasets), default=1)
    if progress is not None and committed < n_networks:
        notify_started(progress, committed, n_networks)
    with thread_limit(threads):
        while committed < n_networks:
            count = _batch_end(committed, n_networks, batch_size, chunk_rows) - committed
            start = first + committed
            stats, raw, ntk_stats = run.compute(start, count)
            writer.reserve(_batch_bytes(run, count), committed)
            failure = None
            try:
                committed = _commit_batch(
                    f, accs, committed, stats, raw_datasets, raw, ntk_stats, start
                )
            except (OSError, RuntimeError) as exc:
                failure = _write_failure(f.filename, committed, exc)
            if failure is not None:
                # Raised outside the handler, with no h5py object left in its traceback:
                # HDF5 objects freed after the failed file is closed can crash the process.
                raw_datasets.clear()
                raise failure
            if progress is not None:
                progress(committed, n_networks)
    return committed


def sample_to_store(
    run,
    n_networks,
    path,
    *,
    first_network=0,
    batch_size=None,
    threads=None,
    overwrite=False,
    compression=DEFAULT_COMPRESSION,
    progress=None,
):
    """Run ``run`` for n_networks networks, streaming into a new store file at ``path``."""
    check_compression(compression)
    path = os.fspath(path)
    if not path:
        raise ValueError("store path is empty")
    check_new_file(path, overwrite, ", or resume it with nf.resume")
    config = run_config(run, n_networks, first_network)
    if batch_size is None:
        batch_size = run.default_batch_size(n_networks)
    batch_size = check_int("batch_size", batch_size, 1)
    with _create(path, run, config, compression, batch_size) as writer:
        _drive(
            writer,
            run,
            (run.new_accumulator(), run.new_ntk_accumulator()),
            config,
            0,
            batch_size,
            threads,
            progress,
        )
    return open_store(path)


def write_shard(run, config, path, *, batch_size, threads, compression, backend):
    """Stream the networks of ``config`` (``run_config`` of ``run``: n_networks from
    first_network) into the shard file ``path`` and return its Ensemble; a file an earlier
    attempt left is resumed on ``backend`` (or replaced, where it never held a committed
    network of this shard). The shard writer ``nf.sample`` hands to
    ``distributed.sample_sharded``; it runs on a worker."""
    kwargs = {"batch_size": batch_size, "threads": threads}
    if os.path.exists(path):
        try:
            return resume(path, expect=config, backend=backend, **kwargs)
        except StoreError:
            if not _restartable(path, config):
                raise
            os.remove(path)  # never held a committed network of this shard: start over
    return sample_to_store(
        run,
        config["n_networks"],
        path,
        first_network=config["first_network"],
        overwrite=True,
        compression=compression,
        **kwargs,
    )


def _restartable(path, config):
    """Whether a shard file that cannot be resumed may be replaced: no live writer holds
    it, and it is not the store of a different configuration (a header that cannot be
    read at all means the writer died while creating it)."""
    try:
        lock = WriterLock(path)
    except BlockingIOError:
        return False
    try:
        try:
            with open_h5(path, "r") as f:
                stored = json.loads(f.attrs["config"])
        except Exception:
            return True
        return stored == config
    finally:
        lock.release()


def _record_backend(f, backend):
    """Provenance: the ``backend`` attribute lists every backend that computed networks
    of the file ("cpu", "cuda" or "cpu,cuda"; the networks are the same on both)."""
    used = set(attr_text(f.attrs.get("backend", backend)).split(","))
    set_attr_text(f.attrs, "backend", ",".join(sorted(used | {backend})))


def resume(
    path: str | os.PathLike,
    *,
    batch_size: int | None = None,
    threads: int | None = None,
    progress: bool | Callable[[int, int], object] | None = None,
    expect: dict[str, Any] | None = None,
    backend: str = DEFAULT_BACKEND,
) -> Ensemble:
    """Continue an interrupted store run from its committed count.

    The run is rebuilt from the configuration stored in the file, so the resumed networks
    are exactly those the uninterrupted run would have drawn and the result is
    bit-identical to it. Nothing is written before the whole file is verified, and a file
    on a full disk is left exactly as it is. A complete file is only verified and opened.

    Parameters
    ----------
    path : str or os.PathLike
        A store written by ``nf.sample(..., store=path)`` (not the merged file of a
        sharded run: run the same sharded call again instead).
    batch_size : int, optional
        Networks per batch (default as in ``nf.sample``); does not change the results.
    threads : int, optional
        Numba threads for this call.
    progress : bool or callable, optional
        ``True``: a progress line on stderr (``nnft_fast.progress.Progress``); a callable
        ``progress(done, total)`` is called after every batch.
    expect : dict, optional
        A configuration (as stored in the file's ``config`` attribute) the file must
        match; a file whose configuration differs is refused.
    backend : {"auto", "cpu", "cuda"}, default "auto"
        Where the remaining networks are computed; the store's ``backend`` attribute
        records every backend that contributed.

    Returns
    -------
    Ensemble
        The Ensemble of all committed networks, as ``nf.open(path)`` returns it.

    Raises
    ------
    StoreError
        The file is corrupt, in use by another writer, or does not match ``expect``.
    OSError
        The disk is full; the message names the committed count, the file stays
        resumable.
    """
    path = os.fspath(path)
    if expect is not None and not isinstance(expect, Mapping):
        raise TypeError(f"expect must be a config mapping or None, got {type(expect).__name__}")
    check_backend(backend)
    progress = check_progress(progress)
    check_store_file(path)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
    with _Writer(path, create=False) as writer:
        writer.reserve(0)
        clear_stale_write_flags(writer.lock.fd)  # the lock proves no writer is alive
        try:
            with open_h5(path, "r") as f:
                contents = verified(f, path, backend)
        except READ_ERRORS as exc:
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"{path} is not a readable nnft_fast store: {exc}") from None
        config = contents.config
        if contents.sharded:
            raise StoreError(
                f"{path} is the merged view of a sharded run; re-run the same "
                "sharded call (nf.sample(..., executor=...)) to complete it"
            )
        if expect is not None and expect != config:
            diff = sorted(k for k in set(expect) | set(config) if expect.get(k) != config.get(k))
            raise StoreError(
                f"{path} holds a different configuration (differs in: "
                f"{', '.join(diff)}); refusing to resume"
            )
        run = contents.run
        if batch_size is None:
            batch_size = run.default_batch_size(config["n_networks"])
        remaining = config["n_networks"] - contents.committed
        if remaining <= 0:
            log.info("%s is complete (%d networks): nothing to resume", path, contents.committed)
        else:
            log.info(
                "resuming %s: %d of %d networks committed, %d left, on backend %r",
                path,
                contents.committed,
                config["n_networks"],
                remaining,
                run.backend,
            )
            writer.reserve(_batch_bytes(run, min(batch_size, remaining)), contents.committed)
            writer.open()
            _record_backend(writer.file, run.backend)
            writer.file.close()
            writer.open(swmr=True)
            _drive(
                writer,
                run,
                (contents.accumulator, contents.ntk_accumulator),
                config,
                contents.committed,
                batch_size,
                threads,
                progress,
            )
    return open_store(path)


def store_info(
    path: str | os.PathLike, *, verify_raw: bool = False, chunk_networks: int = READ_CHUNK_NETWORKS
) -> dict[str, Any]:
    """Header of a store file as a dict (config, committed, provenance), after verifying
    the whole file as ``open_store`` does; ``verify_raw`` also reads every committed raw
    row (``chunk_networks`` at a time), so HDF5 checks each chunk's fletcher32."""
    path = os.fspath(path)
    chunk_networks = check_int("chunk_networks", chunk_networks, 1)
    with open_reader(path) as f:
        contents = verified(f, path)
        with reading(path, "the header"):
            info = {
                k: attr_text(v) if isinstance(v, (bytes, str)) else v.item()
                for k, v in f.attrs.items()
                if k not in ("config", "checksums")
            }
            info["raw"] = {name: f["raw"][name].shape for name in f.get("raw", {})}
        if verify_raw:
            for layer, _ in contents.run.save:
                for row in range(0, contents.committed, chunk_networks):
                    with reading(path, f"/raw/layer_{layer}"):
                        f[f"raw/layer_{layer}"][row : min(row + chunk_networks, contents.committed)]
    info["config"] = contents.config
    info["committed"] = contents.committed
    return info


def reanalyze(
    path: str | os.PathLike,
    *,
    chunk_networks: int = READ_CHUNK_NETWORKS,
    threads: int | None = None,
) -> Ensemble:
    """Recompute the correlators out of core from the stored raw outputs.

    Reads each saved layer chunk by chunk (memory bounded by ``chunk_networks``), so
    estimates use the saved neurons only: with every neuron of a layer saved they equal
    the online results to rounding; with a subset they estimate the same quantities
    (docs/estimators.md#reanalysis, with n = number of saved neurons) with larger errors.
    Returns an Ensemble whose layers are the saved ones.
    """
    path = os.fspath(path)
    chunk_networks = check_int("chunk_networks", chunk_networks, 1)
    with open_reader(path) as f:
        contents = verified(f, path)
        run, committed = contents.run, contents.committed
        if not run.save:
            raise ValueError(f"{path} stores no raw outputs to re-analyse")
        neurons = list(run.network.widths[1:])
        for layer, count in run.save:
            neurons[layer - 1] = count
        acc = MomentAccumulator(
            run.network.widths,
            run.inputs.shape[0],
            run.layout.four_point,
            DEFAULT_BLOCKS,
            neurons,
            tuple(layer for layer, _ in run.save),
        )
        first = contents.config["first_network"]
        with thread_limit(threads):
            for row in range(0, committed, chunk_networks):
                stop = min(row + chunk_networks, committed)
                stats = np.zeros((stop - row, run.network.n_layers, run.layout.n_stat))
                for layer, _ in run.save:
                    with reading(path, f"/raw/layer_{layer}"):
                        z = f[f"raw/layer_{layer}"][row:stop]
                    sample_statistics(
                        z, *run.kernel_args.tables, run.layout.four_point, stats[:, layer - 1]
                    )
                acc.add(stats, first + row)
    ensemble = run.ensemble(
        acc, first, committed, store_path=path, target_networks=contents.config["n_networks"]
    )
    ensemble.store_config = contents.config
    return ensemble


def payload_bytes(path):
    """Bytes the datasets of a store occupy as stored (raw chunks after compression,
    accumulator slots, inputs): the file's size divided by this is its overhead."""
    total = 0
    with open_reader(os.fspath(path)) as f:

        def add(_, obj):
            nonlocal total
            if isinstance(obj, h5py.Dataset):
                total += obj.id.get_storage_size()

        f.visititems(add)
    return total


def _check_row_bound(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer or None, got {value!r}")
    return int(value)


def read_raw(
    path: str | os.PathLike, layer: int, start: int | None = 0, stop: int | None = None
) -> np.ndarray:
    """Committed raw outputs of ``layer``: array (networks, n_saved, B).

    ``start``, ``stop`` select rows as a Python slice of the *committed* rows: negative
    values count from the committed count, and rows beyond it are never returned.
    """
    path = os.fspath(path)
    layer = check_int("layer", layer, 1)
    start = _check_row_bound("start", start)
    stop = _check_row_bound("stop", stop)
    with open_reader(path) as f:
        contents = verified(f, path)
        name = f"raw/layer_{layer}"
        if layer not in dict(contents.run.save):
            raise ValueError(f"{path} stores no raw outputs for layer {layer}")
        lo, hi, _ = slice(start, stop).indices(contents.committed)
        with reading(path, f"/{name}"):
            return f[name][lo : max(lo, hi)]


# SCHEMA_VERSION, StoreError and open_store are h5format's, part of the store's API too.
__all__ = [
    "SCHEMA_VERSION",
    "StoreError",
    "open_store",
    "payload_bytes",
    "read_raw",
    "reanalyze",
    "resume",
    "sample_to_store",
    "store_info",
    "write_shard",
]
