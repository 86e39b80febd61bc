"""HDF5 ensemble store: streaming raw outputs, checkpointed accumulators, crash-safe resume.

File layout (schema 2), readable with plain h5py or ``h5dump``::

    /                      attrs: schema_version, package_version, config (JSON),
                           checksums (JSON: SHA-256 of config and inputs), created, host,
                           backend, committed (written LAST per batch)
    /inputs                (B, n_0) float64, the inputs X
    /raw/layer_<l>         (N, n_saved, B) float32|float64, chunked (<= 1 MiB, at most one
                           batch of rows), resizable, compressed (lzf|gzip), fletcher32; row
                           e - first_network is network e; rows at or beyond ``committed``
                           are not valid
    /accumulator/slot_0    the accumulator's arrays (``state()``: block_sums, block_counts,
    /accumulator/slot_1    ...); attrs committed (networks the slot holds) and sha256
    /ntk_accumulator/slot_0, slot_1   the same for the NTK statistics (runs with "ntk";
                           config["ntk"] holds lambda_b, lambda_w, readouts)

Commit protocol per batch of networks [c, c+k): check that the disk has room for the
batch, grow and write the raw datasets, write the accumulators with their checksum into
the slot that does *not* hold the committed state, flush, then set ``committed = c + k``
and flush again. A process killed at any moment leaves a file whose ``committed``
networks are complete, with one slot holding exactly their accumulator. Batches end on
raw-chunk boundaries where they can, so no compressed chunk is rewritten (the file stays
close to its payload at any batch size).

Integrity: every reader (``open_store``, ``store_info``, ``read_raw``, ``reanalyze``) and
``resume`` verify the configuration, the inputs and the committed slot against their
checksums (``nnft_fast.integrity``), the raw datasets' layout against the configuration,
and HDF5 checks raw chunks (fletcher32) and metadata; any mismatch is a ``StoreError``
naming the part. Handles fail fast on corrupt metadata (``h5files.open_h5``).

The writer keeps the file in SWMR mode and holds an exclusive OS lock on it (see
``writer_lock``): a second writer is refused, and readers watch a running file (``nf.open``
does this). On file systems without ``flock`` only the user can make sure a single writer
runs.
"""
import contextlib
import datetime
import errno
import json
import os
import re
import socket

import h5py
import numpy as np

from nnft_fast.kernels.cpu.moments import sample_statistics

from .accumulators import DEFAULT_BLOCKS, MomentAccumulator
from .h5files import (LIVE_WRITER_READ_ATTEMPTS, has_hdf5_signature, open_h5, release_space,
                      reserve_space)
from .integrity import digest, slot_digest
from .network import Network
from .sampling import EnsembleRun, check_int
from .threads import thread_limit
from .writer_lock import (SWMR_WRITE_FLAG, WriterLock, clear_stale_write_flags, read_superblock,
                          writer_alive)

SCHEMA_VERSION = 2
CHUNK_BYTES = 2 ** 20
COMPRESSIONS = ("lzf", "gzip", None)
SLOTS = ("slot_0", "slot_1")
_ACCUMULATOR_GROUPS = ("accumulator", "ntk_accumulator")
# Everything h5py and HDF5 raise on unreadable or corrupt contents.
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError,
                IndexError)


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


# ------------------------------------------------------------------------------- reading

@contextlib.contextmanager
def _reading(path, part):
    """Turn any failure to read ``part`` of the file into a StoreError naming it."""
    try:
        yield
    except StoreError:
        raise
    except _READ_ERRORS as exc:
        raise StoreError(f"{path}: {part} is unreadable or corrupt ({exc})") from None


def _check_store_file(path):
    """FileNotFoundError / StoreError for a path that cannot be a store; reads only."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such store file: {path!r}")
    if not os.path.isfile(path):
        raise StoreError(f"{path} is not a regular file")
    if not has_hdf5_signature(path):
        raise StoreError(f"{path} is not an HDF5 file (no HDF5 signature; empty or "
                         "another format)")


def _open_reader(path):
    """Open for reading; in SWMR mode when a writer is running or was killed.

    A killed writer's file with fewer bytes than its superblock's end-of-file address
    is refused here: HDF5's SWMR reader would retry its reads for a long time.
    """
    _check_store_file(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        state = read_superblock(fd)
        swmr = state is not None and bool(state[0] & SWMR_WRITE_FLAG)
        live = writer_alive(fd)
        size = os.fstat(fd).st_size
        if swmr and size < state[1] and not live:
            raise StoreError(f"{path} is truncated ({size} bytes, the superblock expects "
                             f"{state[1]})")
    finally:
        os.close(fd)
    try:
        return open_h5(path, "r", swmr=swmr,
                       read_attempts=LIVE_WRITER_READ_ATTEMPTS if live else 1)
    except _READ_ERRORS as exc:
        hint = ("; it was left open by a killed writer: resume it (nf.resume / nnft resume)"
                if state is not None and state[0] and not live else "")
        raise StoreError(f"{path} is not a readable nnft_fast store: {exc}{hint}") from None


class _Contents:
    """A verified store: config, committed count, inputs, the rebuilt run, accumulators."""

    def __init__(self, config, committed, inputs, run, accumulator, ntk_accumulator,
                 backend, sharded):
        self.config = config
        self.committed = committed
        self.inputs = inputs
        self.run = run
        self.accumulator = accumulator
        self.ntk_accumulator = ntk_accumulator
        self.backend = backend
        self.sharded = sharded

    def ensemble(self, path):
        ens = self.run.ensemble(self.accumulator, self.config["first_network"],
                                self.committed, self.ntk_accumulator)
        ens.backend = self.backend  # provenance: the backend(s) that computed the networks
        ens.store_path = path
        ens.target_networks = self.config["n_networks"]
        return ens


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _set_text(attrs, name, text):
    """Store ``text`` as a fixed-length byte-string attribute: it then lives in the
    checksummed object header (h5py's variable-length strings go to HDF5's global heap,
    which has no checksum, and HDF5 can loop forever parsing a corrupt one)."""
    attrs[name] = np.bytes_(text.encode())


def _verified(f, path, backend="cpu"):
    """Read and verify everything the results depend on (module docstring)."""
    with _reading(path, "the header"):
        attrs = f.attrs
        schema = int(attrs["schema_version"])
        if schema != SCHEMA_VERSION:
            raise StoreError(f"{path} has schema version {schema}; this nnft_fast reads "
                             f"version {SCHEMA_VERSION}")
        config_text = _text(attrs["config"])
        checksums = json.loads(_text(attrs["checksums"]))
        committed = int(attrs["committed"])
        stored_backend = _text(attrs.get("backend", "cpu"))
        shards_text = _text(attrs["shards"]) if "shards" in attrs else None
    if digest(config_text) != checksums.get("config"):
        raise StoreError(f"{path}: the stored configuration does not match its checksum "
                         "(file corrupt)")
    if shards_text is not None and digest(shards_text) != checksums.get("shards"):
        raise StoreError(f"{path}: the shard list does not match its checksum (file corrupt)")
    with _reading(path, "/inputs"):
        inputs = f["inputs"][...]
    if digest(inputs) != checksums.get("inputs"):
        raise StoreError(f"{path}: /inputs does not match its checksum (file corrupt)")
    with _reading(path, "the stored configuration"):
        config = json.loads(config_text)
        run = run_from_config(config, inputs, backend)
        n_networks = int(config["n_networks"])
    if not 0 <= committed <= n_networks:
        raise StoreError(f"{path} claims {committed} committed networks of {n_networks}; "
                         "the file is corrupt")
    with _reading(path, "an object header"):
        f.visit(lambda name: None)   # reads every object header once, failing fast
    _verify_raw(f, path, run, committed)
    accs = [_load_slot(f, path, name, acc, committed)
            for name, acc in _accumulator_groups(run)]
    return _Contents(config, committed, inputs, run, accs[0],
                     accs[1] if len(accs) > 1 else None, stored_backend,
                     shards_text is not None)


def _verify_raw(f, path, run, committed):
    """The raw datasets are exactly the configured ones, shaped and typed as configured,
    and hold at least the committed rows."""
    expected = {f"layer_{layer}": (count, run.inputs.shape[0]) for layer, count in run.save}
    with _reading(path, "/raw"):
        names = set(f["raw"]) if "raw" in f else set()
        if names != set(expected):
            raise StoreError(f"{path}: raw datasets {sorted(names)} differ from the "
                             f"configured {sorted(expected)} (file corrupt)")
        for name, shape in expected.items():
            dset = f[f"raw/{name}"]
            if (dset.shape[1:] != shape or dset.dtype != run.dtype
                    or (not dset.is_virtual and not dset.fletcher32)):
                raise StoreError(f"{path}: /raw/{name} has shape {dset.shape}, dtype "
                                 f"{dset.dtype}; the configuration says (N, {shape[0]}, "
                                 f"{shape[1]}) {run.dtype} with fletcher32 (file corrupt)")
            if dset.shape[0] < committed:
                raise StoreError(f"{path} claims {committed} committed networks but "
                                 f"/raw/{name} holds {dset.shape[0]} rows; the file is "
                                 "corrupt")


def _accumulator_groups(run):
    """(HDF5 group, fresh accumulator) of every accumulator the run checkpoints."""
    groups = [("accumulator", run.new_accumulator())]
    if run.ntk is not None:
        groups.append(("ntk_accumulator", run.new_ntk_accumulator()))
    return groups


def _load_slot(f, path, name, acc, committed):
    """``acc`` loaded from the slot of group ``name`` that holds exactly ``committed``
    networks, after checking the slot's checksum and shapes."""
    if committed == 0:
        return acc
    template = acc.state()
    for slot in SLOTS:
        part = f"/{name}/{slot}"
        with _reading(path, part):
            group = f[name][slot]
            if int(group.attrs["committed"]) != committed:
                continue
            arrays = {key: group[key][...] for key in template}
            stored = _text(group.attrs["sha256"])
        if slot_digest(committed, arrays) != stored:
            raise StoreError(f"{path}: {part} does not match its checksum (file corrupt)")
        if any(arrays[key].shape != template[key].shape for key in template):
            raise StoreError(f"{path}: {part} does not match the configuration (corrupt)")
        acc.load_state(arrays)
        if acc.n_networks != committed:
            raise StoreError(f"{path}: {part} counts {acc.n_networks} networks, the header "
                             f"{committed} (file corrupt)")
        return acc
    raise StoreError(f"{path}: no {name} checkpoint holds the {committed} committed "
                     "networks (file corrupt)")


def _read_verified(path, backend="cpu"):
    with _open_reader(path) as f:
        return _verified(f, path, backend)


# ------------------------------------------------------------------------------- writing

def write_header(f, run, config, backend, shards=None):
    """Root attributes (config, checksums, provenance; ``committed`` = 0) and /inputs:
    the one writer of a store header, for plain and merged sharded files."""
    config_text = json.dumps(config, sort_keys=True)
    checksums = {"config": digest(config_text), "inputs": digest(run.inputs)}
    f.attrs["schema_version"] = SCHEMA_VERSION
    _set_text(f.attrs, "package_version", _package_version())
    _set_text(f.attrs, "config", config_text)
    _set_text(f.attrs, "created", datetime.datetime.now(datetime.timezone.utc).isoformat())
    _set_text(f.attrs, "host", socket.gethostname())
    _set_text(f.attrs, "backend", backend)
    if shards is not None:
        shards_text = json.dumps(shards, sort_keys=True)
        _set_text(f.attrs, "shards", shards_text)
        checksums["shards"] = digest(shards_text)
    _set_text(f.attrs, "checksums", json.dumps(checksums, sort_keys=True))
    f.attrs["committed"] = np.int64(0)
    f.create_dataset("inputs", data=run.inputs)


def create_slots(f, accumulators):
    """Both checkpoint slots of every (group name, accumulator), holding nothing yet."""
    for name, acc in accumulators:
        for slot in SLOTS:
            group = f.create_group(f"{name}/{slot}")
            for key, array in acc.state().items():
                group.create_dataset(key, data=array)
            group.attrs["committed"] = np.int64(-1)
            _set_text(group.attrs, "sha256", "none")


def write_slot(group, acc, committed):
    """Checkpoint ``acc`` (holding ``committed`` networks) into ``group`` with its checksum."""
    state = acc.state()
    for key, array in state.items():
        group[key][...] = array
    group.attrs["committed"] = np.int64(committed)
    _set_text(group.attrs, "sha256", slot_digest(committed, state))


def _raw_chunk_rows(run, batch_size):
    """Rows per raw chunk, shared by every saved layer: at most one batch and 1 MiB."""
    nb = run.inputs.shape[0]
    per_mib = min(max(1, CHUNK_BYTES // (count * nb * run.dtype.itemsize))
                  for _, count in run.save)
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
            f.create_dataset(f"raw/layer_{layer}", shape=(0, count, nb),
                             maxshape=(None, count, nb), dtype=run.dtype,
                             chunks=(rows, count, nb), compression=compression,
                             fletcher32=True)
        create_slots(f, _accumulator_groups(run))
        f.flush()
        f.swmr_mode = True
    except BaseException as exc:
        writer.__exit__(type(exc), exc, None)
        if not existed and os.path.getsize(path) == 0:
            os.remove(path)   # leave no empty file where the run could not start
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
            raise StoreError(f"{path} is open by another process (a second writer is "
                             "refused; readers of a running file must open it with "
                             "swmr=True, locking=False)") from None
        self.file = None

    def reserve(self, needed_bytes, committed=None):
        """``h5files.reserve_space`` for this file."""
        reserve_space(self.lock.fd, self.lock.path, needed_bytes, committed)

    def open(self, create=False, swmr=False):
        try:
            self.file = (h5py.File(self.lock.path, "w", libver="latest", locking=False)
                         if create else open_h5(self.lock.path, "r+", swmr=swmr))
        except _READ_ERRORS as exc:
            self.lock.release()
            raise StoreError(f"{self.lock.path} is not a writable nnft_fast store: "
                             f"{exc}") from None
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
    for name, acc, batch in zip(_ACCUMULATOR_GROUPS, accs, (stats, ntk_stats)):
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
        with contextlib.suppress(*_READ_ERRORS):
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
    nb = run.inputs.shape[0]
    return count * nb * run.dtype.itemsize * sum(n for _, n in run.save)


def _write_failure(path, committed, exc):
    """The OSError a failed batch write becomes: it names the committed count and keeps
    the errno HDF5 reports inside its message (ENOSPC on a full disk)."""
    code = getattr(exc, "errno", None)
    found = re.search(r"errno = (\d+)", str(exc))
    if not code and found:
        code = int(found.group(1))
    return OSError(code or errno.EIO, f"writing {path} failed after {committed} committed "
                   f"networks ({exc}); the file keeps those: free the space and resume it "
                   "(nf.resume / nnft resume)")


def _drive(writer, run, accs, config, committed, batch_size, threads, progress):
    f = writer.file
    n_networks = config["n_networks"]
    first = config["first_network"]
    raw_datasets = [f[f"raw/layer_{layer}"] for layer, _ in run.save]
    for dset in raw_datasets:
        dset.resize(committed, axis=0)  # drop uncommitted rows
    chunk_rows = min((d.chunks[0] for d in raw_datasets), default=1)
    with thread_limit(threads):
        while committed < n_networks:
            count = _batch_end(committed, n_networks, batch_size, chunk_rows) - committed
            start = first + committed
            stats, raw, ntk_stats = run.compute(start, count)
            writer.reserve(_batch_bytes(run, count), committed)
            failure = None
            try:
                committed = _commit_batch(f, accs, committed, stats, raw_datasets, raw,
                                          ntk_stats, start)
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


def check_new_file(path, overwrite, hint=""):
    """Refuse to create ``path`` where a file exists (unless ``overwrite``), where it is
    not a regular file, or where the directory is missing or not writable; ``hint`` ends
    the FileExistsError message."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to "
                              f"replace it{hint}")
    if os.path.exists(path) and not os.path.isfile(path):
        raise StoreError(f"cannot write a store to {path}: it is not a regular file")
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
    if not path:
        raise ValueError("store path is empty")
    check_new_file(path, overwrite, ", or resume it with nf.resume")
    config = run_config(run, n_networks, first_network)
    if batch_size is None:
        batch_size = run.default_batch_size(n_networks)
    batch_size = check_int("batch_size", batch_size, 1)
    with _create(path, run, config, compression, batch_size) as writer:
        _drive(writer, run, (run.new_accumulator(), run.new_ntk_accumulator()), config,
               0, batch_size, threads, progress)
    return open_store(path)


def _record_backend(f, backend):
    """Provenance: the ``backend`` attribute lists every backend that computed networks
    of the file ("cpu", "cuda" or "cpu,cuda"; the networks are the same on both)."""
    used = set(_text(f.attrs.get("backend", backend)).split(","))
    _set_text(f.attrs, "backend", ",".join(sorted(used | {backend})))


def resume(path, *, batch_size=None, threads=None, progress=None, expect=None,
           backend="auto"):
    """Continue an interrupted run from its committed count on ``backend`` ("cpu",
    "cuda", "auto"); returns the Ensemble.

    ``expect``: a config dict (as ``run_config``) the file must match; resuming a file
    whose configuration differs is refused. Nothing is written before the file is
    verified (and a file on a full disk is left exactly as it is).
    """
    path = os.fspath(path)
    _check_store_file(path)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
    with _Writer(path, create=False) as writer:
        writer.reserve(0)
        clear_stale_write_flags(writer.lock.fd)   # the lock proves no writer is alive
        try:
            with open_h5(path, "r") as f:
                contents = _verified(f, path, backend)
        except _READ_ERRORS as exc:
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"{path} is not a readable nnft_fast store: {exc}") from None
        config = contents.config
        if contents.sharded:
            raise StoreError(f"{path} is the merged view of a sharded run; re-run the same "
                             "sharded call (nf.sample(..., executor=...)) to complete it")
        if expect is not None and expect != config:
            diff = sorted(k for k in set(expect) | set(config) if expect.get(k) != config.get(k))
            raise StoreError(f"{path} holds a different configuration (differs in: "
                             f"{', '.join(diff)}); refusing to resume")
        run = contents.run
        if batch_size is None:
            batch_size = run.default_batch_size(config["n_networks"])
        remaining = config["n_networks"] - contents.committed
        if remaining > 0:
            writer.reserve(_batch_bytes(run, min(batch_size, remaining)), contents.committed)
            writer.open()
            _record_backend(writer.file, run.backend)
            writer.file.close()
            writer.open(swmr=True)
            _drive(writer, run, (contents.accumulator, contents.ntk_accumulator), config,
                   contents.committed, batch_size, threads, progress)
    return open_store(path)


def open_store(path):
    """The Ensemble of the committed networks of a store file (read only, verified)."""
    path = os.fspath(path)
    return _read_verified(path).ensemble(path)


def store_info(path, *, verify_raw=False, chunk_networks=65536):
    """Header of a store file as a dict (config, committed, provenance), after verifying
    the whole file as ``open_store`` does; ``verify_raw`` also reads every committed raw
    row (``chunk_networks`` at a time), so HDF5 checks each chunk's fletcher32."""
    path = os.fspath(path)
    chunk_networks = check_int("chunk_networks", chunk_networks, 1)
    with _open_reader(path) as f:
        contents = _verified(f, path)
        with _reading(path, "the header"):
            info = {k: _text(v) if isinstance(v, (bytes, str)) else v.item()
                    for k, v in f.attrs.items() if k not in ("config", "checksums")}
            info["raw"] = {name: f["raw"][name].shape for name in f.get("raw", {})}
        if verify_raw:
            for layer, _ in contents.run.save:
                for row in range(0, contents.committed, chunk_networks):
                    with _reading(path, f"/raw/layer_{layer}"):
                        f[f"raw/layer_{layer}"][row:min(row + chunk_networks,
                                                        contents.committed)]
    info["config"] = contents.config
    info["committed"] = contents.committed
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
        contents = _verified(f, path)
        run, committed = contents.run, contents.committed
        if not run.save:
            raise ValueError(f"{path} stores no raw outputs to re-analyse")
        neurons = list(run.network.widths[1:])
        for layer, count in run.save:
            neurons[layer - 1] = count
        acc = MomentAccumulator(run.network.widths, run.inputs.shape[0],
                                run.layout.four_point, DEFAULT_BLOCKS, neurons,
                                tuple(layer for layer, _ in run.save))
        tables = run.layout.kernel_tables()
        first = contents.config["first_network"]
        with thread_limit(threads):
            for row in range(0, committed, chunk_networks):
                stop = min(row + chunk_networks, committed)
                stats = np.zeros((stop - row, run.network.n_layers, run.layout.n_stat))
                for layer, _ in run.save:
                    with _reading(path, f"/raw/layer_{layer}"):
                        z = f[f"raw/layer_{layer}"][row:stop]
                    sample_statistics(z, *tables, run.layout.four_point, stats[:, layer - 1])
                acc.add(stats, first + row)
    ens = run.ensemble(acc, first, committed)
    ens.store_path = path
    return ens


def payload_bytes(path):
    """Bytes the datasets of a store occupy as stored (raw chunks after compression,
    accumulator slots, inputs): the file's size divided by this is its overhead."""
    total = 0
    with _open_reader(os.fspath(path)) as f:
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


def read_raw(path, layer, start=0, stop=None):
    """Committed raw outputs of ``layer``: array (networks, n_saved, B).

    ``start``, ``stop`` select rows as a Python slice of the *committed* rows: negative
    values count from the committed count, and rows beyond it are never returned.
    """
    path = os.fspath(path)
    layer = check_int("layer", layer, 1)
    start = _check_row_bound("start", start)
    stop = _check_row_bound("stop", stop)
    with _open_reader(path) as f:
        contents = _verified(f, path)
        name = f"raw/layer_{layer}"
        if layer not in dict(contents.run.save):
            raise ValueError(f"{path} stores no raw outputs for layer {layer}")
        lo, hi, _ = slice(start, stop).indices(contents.committed)
        with _reading(path, f"/{name}"):
            return f[name][lo:max(lo, hi)]


__all__ = ["SCHEMA_VERSION", "StoreError", "create_slots", "open_store", "payload_bytes",
           "read_raw", "reanalyze", "resume", "sample_to_store", "store_info", "write_header",
           "write_slot"]
