"""The store file format: its layout, the one writer of a header and of the checkpoint
slots, and the verified reader (plain stores and merged sharded stores alike).

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

The config is ``jobs.run_config`` of the run. A merged sharded store (``nnft_fast.
distributed``) has the same layout, with a checksummed ``shards`` attribute (JSON: shard
size, count and files) and ``/raw/layer_<l>`` as virtual datasets over the shard files.
The writers -- ``store`` for plain files (its commit protocol keeps one slot holding
exactly the ``committed`` networks at any moment) and ``distributed`` for the merged
view -- both write the header with ``write_header`` and the slots with ``create_slots``
and ``write_slot``.

Integrity: every reader (``open_store``, ``store.store_info``, ``store.read_raw``,
``store.reanalyze``) and ``store.resume`` verify the configuration, the inputs and the
committed slot against their checksums (``nnft_fast.integrity``), the raw datasets'
layout against the configuration, and HDF5 checks raw chunks (fletcher32) and metadata;
any mismatch is a ``StoreError`` naming the part. Handles fail fast on corrupt metadata
(``h5files.open_h5``).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from typing import TYPE_CHECKING

import numpy as np

from .cosnet import CosNet
from .h5files import LIVE_WRITER_READ_ATTEMPTS, has_hdf5_signature, open_h5
from .integrity import digest, slot_digest
from .jobs import run_from_config
from .run import READER_BACKEND
from .writer_lock import SWMR_WRITE_FLAG, read_superblock, writer_alive

if TYPE_CHECKING:
    from .ensemble import Ensemble

SCHEMA_VERSION = 2
SLOTS = ("slot_0", "slot_1")
ACCUMULATOR_GROUPS = ("accumulator", "ntk_accumulator")
# Everything h5py and HDF5 raise on unreadable or corrupt contents.
READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError, IndexError)


class StoreError(ValueError):
    """A store file that cannot be used as asked (corrupt, mismatched, in use)."""


def _package_version():
    from . import __version__

    return __version__


@contextlib.contextmanager
def reading(path, part):
    """Turn any failure to read ``part`` of the file into a StoreError naming it."""
    try:
        yield
    except StoreError:
        raise
    except READ_ERRORS as exc:
        raise StoreError(f"{path}: {part} is unreadable or corrupt ({exc})") from None


def check_store_file(path):
    """FileNotFoundError / StoreError for a path that cannot be a store; reads only."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such store file: {path!r}")
    if not os.path.isfile(path):
        raise StoreError(f"{path} is not a regular file")
    if not has_hdf5_signature(path):
        raise StoreError(f"{path} is not an HDF5 file (no HDF5 signature; empty or another format)")


def open_reader(path):
    """Open for reading; in SWMR mode when a writer is running or was killed.

    A killed writer's file with fewer bytes than its superblock's end-of-file address
    is refused here: HDF5's SWMR reader would retry its reads for a long time.
    """
    check_store_file(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        state = read_superblock(fd)
        swmr = state is not None and bool(state[0] & SWMR_WRITE_FLAG)
        live = writer_alive(fd)
        size = os.fstat(fd).st_size
        if swmr and size < state[1] and not live:
            raise StoreError(
                f"{path} is truncated ({size} bytes, the superblock expects {state[1]})"
            )
    finally:
        os.close(fd)
    try:
        return open_h5(path, "r", swmr=swmr, read_attempts=LIVE_WRITER_READ_ATTEMPTS if live else 1)
    except READ_ERRORS as exc:
        hint = (
            "; it was left open by a killed writer: resume it (nf.resume / nnft resume)"
            if state is not None and state[0] and not live
            else ""
        )
        raise StoreError(f"{path} is not a readable nnft_fast store: {exc}{hint}") from None


class Contents:
    """A verified store: config, committed count, inputs, the rebuilt run, accumulators."""

    def __init__(
        self, config, committed, inputs, run, accumulator, ntk_accumulator, backend, sharded
    ):
        self.config = config
        self.committed = committed
        self.inputs = inputs
        self.run = run
        self.accumulator = accumulator
        self.ntk_accumulator = ntk_accumulator
        self.backend = backend
        self.sharded = sharded

    def ensemble(self, path):
        """The Ensemble of the committed networks, with the file's provenance: the
        backend(s) that computed them, ``path``, the networks its run aims at and its
        configuration (``store_config``)."""
        ensemble = self.run.ensemble(
            self.accumulator,
            self.config["first_network"],
            self.committed,
            self.ntk_accumulator,
            backend=self.backend,
            store_path=path,
            target_networks=self.config["n_networks"],
        )
        ensemble.store_config = self.config
        return ensemble


def attr_text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def set_attr_text(attrs, name, text):
    """Store ``text`` as a fixed-length byte-string attribute: it then lives in the
    checksummed object header (h5py's variable-length strings go to HDF5's global heap,
    which has no checksum, and HDF5 can loop forever parsing a corrupt one)."""
    attrs[name] = np.bytes_(text.encode())


def verified(f, path, backend=READER_BACKEND):
    """Read and verify everything the results depend on (module docstring)."""
    with reading(path, "the header"):
        attrs = f.attrs
        schema = int(attrs["schema_version"])
        if schema != SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {schema}; this nnft_fast reads version {SCHEMA_VERSION}"
            )
        config_text = attr_text(attrs["config"])
        checksums = json.loads(attr_text(attrs["checksums"]))
        committed = int(attrs["committed"])
        stored_backend = attr_text(attrs.get("backend", "cpu"))
        shards_text = attr_text(attrs["shards"]) if "shards" in attrs else None
    if digest(config_text) != checksums.get("config"):
        raise StoreError(
            f"{path}: the stored configuration does not match its checksum (file corrupt)"
        )
    if shards_text is not None and digest(shards_text) != checksums.get("shards"):
        raise StoreError(f"{path}: the shard list does not match its checksum (file corrupt)")
    with reading(path, "/inputs"):
        inputs = f["inputs"][...]
    if digest(inputs) != checksums.get("inputs"):
        raise StoreError(f"{path}: /inputs does not match its checksum (file corrupt)")
    with reading(path, "the stored configuration"):
        config = json.loads(config_text)
        run = run_from_config(config, inputs, backend)
        n_networks = int(config["n_networks"])
    if not 0 <= committed <= n_networks:
        raise StoreError(
            f"{path} claims {committed} committed networks of {n_networks}; the file is corrupt"
        )
    with reading(path, "an object header"):
        f.visit(lambda name: None)  # reads every object header once, failing fast
    _verify_raw(f, path, run, committed)
    accs = [_load_slot(f, path, name, acc, committed) for name, acc in accumulator_groups(run)]
    return Contents(
        config,
        committed,
        inputs,
        run,
        accs[0],
        accs[1] if len(accs) > 1 else None,
        stored_backend,
        shards_text is not None,
    )


def _verify_raw(f, path, run, committed):
    """The raw datasets are exactly the configured ones, shaped and typed as configured,
    and hold at least the committed rows."""
    expected = {f"layer_{layer}": (count, run.inputs.shape[0]) for layer, count in run.save}
    with reading(path, "/raw"):
        names = set(f["raw"]) if "raw" in f else set()
        if names != set(expected):
            raise StoreError(
                f"{path}: raw datasets {sorted(names)} differ from the "
                f"configured {sorted(expected)} (file corrupt)"
            )
        for name, shape in expected.items():
            dset = f[f"raw/{name}"]
            if (
                dset.shape[1:] != shape
                or dset.dtype != run.dtype
                or (not dset.is_virtual and not dset.fletcher32)
            ):
                raise StoreError(
                    f"{path}: /raw/{name} has shape {dset.shape}, dtype "
                    f"{dset.dtype}; the configuration says (N, {shape[0]}, "
                    f"{shape[1]}) {run.dtype} with fletcher32 (file corrupt)"
                )
            if dset.shape[0] < committed:
                raise StoreError(
                    f"{path} claims {committed} committed networks but "
                    f"/raw/{name} holds {dset.shape[0]} rows; the file is "
                    "corrupt"
                )


def accumulator_groups(run):
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
        with reading(path, part):
            group = f[name][slot]
            if int(group.attrs["committed"]) != committed:
                continue
            arrays = {key: group[key][...] for key in template}
            stored = attr_text(group.attrs["sha256"])
        if slot_digest(committed, arrays) != stored:
            raise StoreError(f"{path}: {part} does not match its checksum (file corrupt)")
        if any(arrays[key].shape != template[key].shape for key in template):
            raise StoreError(f"{path}: {part} does not match the configuration (corrupt)")
        acc.load_state(arrays)
        if acc.n_networks != committed:
            raise StoreError(
                f"{path}: {part} counts {acc.n_networks} networks, the header "
                f"{committed} (file corrupt)"
            )
        return acc
    raise StoreError(
        f"{path}: no {name} checkpoint holds the {committed} committed networks (file corrupt)"
    )


def read_verified(path):
    with open_reader(path) as f:
        return verified(f, path)


def open_store(path: str | os.PathLike) -> Ensemble:
    """The Ensemble of the committed networks of a store file (read only, verified).

    Available as ``nf.open``. The file is verified against its checksums first
    (docs/reliability.md#integrity); a file that a live writer is still filling is read
    as of its committed count.

    Parameters
    ----------
    path : str or os.PathLike
        A store written by ``nf.sample(..., store=path)`` or a merged sharded store.

    Returns
    -------
    Ensemble
        The same object ``nf.sample`` returns, for the committed networks, with
        ``store_path`` set.

    Raises
    ------
    StoreError
        The file is not an nnft_fast store, or a part of it does not match its checksum
        (the message names the part).
    """
    path = os.fspath(path)
    return read_verified(path).ensemble(path)


def write_header(f, run, config, backend, shards=None):
    """Root attributes (config, checksums, provenance; ``committed`` = 0) and /inputs:
    the one writer of a store header, for plain and merged sharded files."""
    config_text = json.dumps(config, sort_keys=True)
    checksums = {"config": digest(config_text), "inputs": digest(run.inputs)}
    f.attrs["schema_version"] = SCHEMA_VERSION
    set_attr_text(f.attrs, "package_version", _package_version())
    set_attr_text(f.attrs, "config", config_text)
    set_attr_text(f.attrs, "created", datetime.datetime.now(datetime.UTC).isoformat())
    set_attr_text(f.attrs, "host", socket.gethostname())
    set_attr_text(f.attrs, "backend", backend)
    if shards is not None:
        shards_text = json.dumps(shards, sort_keys=True)
        set_attr_text(f.attrs, "shards", shards_text)
        checksums["shards"] = digest(shards_text)
    set_attr_text(f.attrs, "checksums", json.dumps(checksums, sort_keys=True))
    f.attrs["committed"] = np.int64(0)
    f.create_dataset("inputs", data=run.inputs)


# The netCDF-4 mark of a dimension scale that is a dimension only (no coordinate values):
# netCDF-C and h5netcdf read its name as the dimension's and list no variable for it.
NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."


def dimension_names(run):
    """{dataset path: its dimension names} of a run's store (docs/file-format.md#labels):
    /inputs (input, input_dim) and /raw/layer_<l> (network, neuron_<l>, input); for a
    cos-net field (point, point_dim) and (network, output, point)."""
    field = isinstance(run.network, CosNet)
    entry, space = ("point", "point_dim") if field else ("input", "input_dim")
    names = {"inputs": (entry, space)}
    for layer, _ in run.save:
        neuron = "output" if field else f"neuron_{layer}"
        names[f"raw/layer_{layer}"] = ("network", neuron, entry)
    return names


def label_dimensions(f, run):
    """Name the dimensions of /inputs and of every /raw/layer_<l> of ``f`` with netCDF-4
    dimension scales, so that h5netcdf and xarray read them (``dimension_names``).

    The scales are empty root datasets, one per name, marked ``NOT_A_VARIABLE``; the
    network dimension is unlimited (its size is that of the raw datasets, which grow by
    commit). They sit at the root because the readers allow no other object in /raw;
    the raw data and every checksummed part are unchanged."""
    scales = {}
    for path, dims in dimension_names(run).items():
        dset = f[path]
        for axis, name in enumerate(dims):
            if name not in scales:
                unlimited = name == "network"
                size = 0 if unlimited else dset.shape[axis]
                scales[name] = f.create_dataset(
                    name,
                    shape=(size,),
                    maxshape=(None,) if unlimited else (size,),
                    dtype="f4",
                    chunks=(1024,) if unlimited else None,
                )
                scales[name].make_scale(f"{NOT_A_VARIABLE}{size:10d}")
            dset.dims[axis].attach_scale(scales[name])


def create_slots(f, accumulators):
    """Both checkpoint slots of every (group name, accumulator), holding nothing yet."""
    for name, acc in accumulators:
        for slot in SLOTS:
            group = f.create_group(f"{name}/{slot}")
            for key, array in acc.state().items():
                group.create_dataset(key, data=array)
            group.attrs["committed"] = np.int64(-1)
            set_attr_text(group.attrs, "sha256", "none")


def write_slot(group, acc, committed):
    """Checkpoint ``acc`` (holding ``committed`` networks) into ``group`` with its checksum."""
    state = acc.state()
    for key, array in state.items():
        group[key][...] = array
    group.attrs["committed"] = np.int64(committed)
    set_attr_text(group.attrs, "sha256", slot_digest(committed, state))


def check_new_file(path, overwrite, hint=""):
    """Refuse to create ``path`` where a file exists (unless ``overwrite``), where it is
    not a regular file, or where the directory is missing or not writable; ``hint`` ends
    the FileExistsError message."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it{hint}"
        )
    if os.path.exists(path) and not os.path.isfile(path):
        raise StoreError(f"cannot write a store to {path}: it is not a regular file")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise PermissionError(
            f"cannot write {path}: directory {directory} is missing or not writable"
        )


__all__ = [
    "ACCUMULATOR_GROUPS",
    "READ_ERRORS",
    "SCHEMA_VERSION",
    "SLOTS",
    "StoreError",
    "check_new_file",
    "create_slots",
    "label_dimensions",
    "open_store",
    "write_header",
    "write_slot",
]
