"""Parameter sweeps: one TOML config with a [sweep] table, many runs in one directory.

A [sweep] table (format in ``nnft_fast.config``, docs/sweeps.md) maps keys "table.key"
of the config's schema to lists of values. ``mode = "grid"`` (the default) runs the
outer product of the lists, in ``itertools.product`` order (the last key varies
fastest); ``mode = "zip"`` runs the i-th values of all lists together (lists of equal
length). Each point is the config without [sweep] and with its values substituted,
validated by the ordinary parser (``config.parse_data``): every point is checked before
any runs. ``network.kind`` and ``store.out`` cannot be swept (the points' files are
named by the sweep; a base ``store.out`` is not used).

``run_sweep`` runs point i into ``out_dir/point_<i>.h5`` (``POINT_DIGITS`` digits) and
keeps the manifest ``out_dir/sweep.json`` (``MANIFEST``, replaced atomically after every
change): the sweep's mode and keys and, per point, its index, swept values, store file,
checksum and status (``STATUSES``). The checksum of a point is the SHA-256 of the
configuration its store records (``jobs.run_config``: everything that decides its
numbers) and of its inputs; the sweep's checksum is that of the points' checksums.

Re-running the same sweep into the same directory resumes it point by point: a point
whose store is complete (committed == n_networks, the configuration and inputs its own)
is skipped, an interrupted store is continued with ``store.resume`` (bit-identical to an
uninterrupted run), a missing one is run; a sharded point (``executor=``) whose merged
file is missing reuses its finished shard files (``nnft_fast.distributed``). A manifest
or point store of a *different* sweep in the directory is refused (``SweepError``)
before anything runs, unless ``overwrite=True``, which recomputes every point and
removes the point files that are not this sweep's. One driver per directory: two
concurrent ``run_sweep`` calls into the same directory are not coordinated (a point's
store refuses a second writer, the manifest is last-writer-wins).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import (
    _COSNET_SCHEMA,
    _SCHEMA,
    SWEEP_TABLE,
    ConfigError,
    RunConfig,
    _check_table,
    _kind,
    decode_config,
    parse_data,
    read_config_text,
)
from .h5format import StoreError, open_store
from .integrity import digest
from .jobs import make_run, run_config
from .run import DEFAULT_BACKEND, READER_BACKEND
from .store import resume, store_info

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

MANIFEST = "sweep.json"
MANIFEST_FORMAT = "nnft_fast sweep"
MANIFEST_VERSION = 1
MODES = ("grid", "zip")
DEFAULT_MODE = "grid"
MODE_KEY = "mode"
POINT_PREFIX = "point_"
POINT_DIGITS = 3  # point_000.h5 (more digits where a sweep has over 1000 points)
STATUSES = ("pending", "running", "complete", "failed")
# Keys that cannot be swept, and why.
UNSWEPT = {
    "network.kind": "the kind of network decides the schema of the whole config",
    "store.out": "a sweep names its point files itself (out_dir/point_<i>.h5)",
}
# The RunConfig fields that describe the run, passed to nf.sample as they are.
_POINT_FILE = re.compile(rf"^{POINT_PREFIX}(\d+)\.h5$")


class SweepError(ValueError):
    """A sweep directory that holds another sweep's results, or a manifest or point
    store that cannot be read."""


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: its ``index``, its swept ``values`` ({"table.key": value}
    in the sweep's key order), the parsed ``config``, the ``store`` file name in the
    sweep directory, the store configuration ``expected`` of its file and its
    ``checksum`` (module docstring)."""

    index: int
    values: dict
    config: RunConfig
    store: str
    expected: dict
    checksum: str

    @property
    def label(self):
        """The swept values as words, e.g. ``network.cw=1.5 network.init=gaussian``."""
        return point_label(self.values)


@dataclass(frozen=True)
class Sweep:
    """An expanded sweep: its ``mode``, swept ``keys``, ``points`` and ``checksum``."""

    mode: str
    keys: tuple
    points: tuple
    checksum: str


def format_value(value):
    """A swept value as a short word: numbers with ``%g``, strings as they are, arrays
    and tables as compact JSON."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def point_label(values):
    """``key=value`` words of a point's swept values ({"table.key": value})."""
    return " ".join(f"{key}={format_value(value)}" for key, value in values.items())


def _schema(data):
    """The schema ({table: {key: types}}) of a decoded config's kind of network."""
    return _COSNET_SCHEMA if _kind(data) == "cosnet" else _SCHEMA


def _flatten(table):
    """{"table.key": values} of a [sweep] table, its "mode" left out; accepts quoted keys
    ("network.cw" = [...]) and the dotted form (network.cw = [...], a sub-table)."""
    swept = {}
    for key, value in table.items():
        if key == MODE_KEY:
            continue
        items = (
            [(f"{key}.{sub}", v) for sub, v in value.items()]
            if isinstance(value, dict)
            else [(key, value)]
        )
        for name, values in items:
            if name in swept:
                raise ConfigError(f"[{SWEEP_TABLE}] '{name}' is swept twice")
            swept[name] = values
    return swept


def _check_swept(name, values, schema):
    """A swept key "table.key" of ``schema`` with a non-empty list of values of its type."""
    table, _, key = name.partition(".")
    if name in UNSWEPT:
        raise ConfigError(f"[{SWEEP_TABLE}] '{name}' cannot be swept: {UNSWEPT[name]}")
    if table not in schema or key not in schema[table]:
        allowed = ", ".join(f"{t}.<key>" for t in schema)
        where = (
            f"; [{table}] has {', '.join(schema[table])}"
            if table in schema
            else f"; sweep keys are {allowed}"
        )
        raise ConfigError(f"[{SWEEP_TABLE}] unknown key '{name}'{where}")
    if not isinstance(values, list) or not values:
        raise ConfigError(
            f"[{SWEEP_TABLE}] '{name}' must be a non-empty array of the values to sweep, "
            f"got {values!r}"
        )
    for i, value in enumerate(values):
        try:
            _check_table(table, {key: value}, schema[table])
        except ConfigError as exc:
            raise ConfigError(f"[{SWEEP_TABLE}] {exc} (entry {i + 1} of the list)") from None


def expand_sweep(data):
    """(mode, keys, [{key: value}, ...]): the points of a decoded config's [sweep] table,
    its keys and types checked against the config's schema (ConfigError naming the key)."""
    table = data.get(SWEEP_TABLE)
    if not isinstance(table, dict):
        raise ConfigError(f"no [{SWEEP_TABLE}] table: a single run is `nnft run CONFIG`")
    mode = table.get(MODE_KEY, DEFAULT_MODE)
    if not isinstance(mode, str) or mode not in MODES:
        raise ConfigError(
            f"'{SWEEP_TABLE}.{MODE_KEY}' must be one of {', '.join(MODES)}, got {mode!r}"
        )
    swept = _flatten(table)
    if not swept:
        raise ConfigError(f'[{SWEEP_TABLE}] sweeps no key: give "table.key" = [values, ...]')
    schema = _schema(data)
    for name, values in swept.items():
        _check_swept(name, values, schema)
    keys = tuple(swept)
    if mode == "zip":
        lengths = {name: len(values) for name, values in swept.items()}
        if len(set(lengths.values())) > 1:
            sizes = ", ".join(f"'{name}' {n}" for name, n in lengths.items())
            raise ConfigError(
                f'[{SWEEP_TABLE}] mode = "zip" needs lists of equal length, got {sizes}'
            )
        combos = zip(*swept.values())
    else:
        combos = itertools.product(*swept.values())
    return mode, keys, [dict(zip(keys, combo)) for combo in combos]


def point_data(data, values):
    """The decoded config of one point: ``data`` without [sweep], ``values`` substituted."""
    point = copy.deepcopy({k: v for k, v in data.items() if k != SWEEP_TABLE})
    for name, value in values.items():
        table, _, key = name.partition(".")
        section = point.setdefault(table, {})
        if not isinstance(section, dict):
            raise ConfigError(f"[{table}] must be a table")
        section[key] = copy.deepcopy(value)
    return point


def point_name(index, n_points):
    """The store file name of point ``index`` of ``n_points``."""
    digits = max(POINT_DIGITS, len(str(n_points - 1)))
    return f"{POINT_PREFIX}{index:0{digits}d}.h5"


def _point(index, n_points, values, data):
    """The SweepPoint of ``values``: parsed, and its store configuration built (ConfigError
    naming the point for anything the parser or the run refuses)."""
    try:
        cfg = parse_data(point_data(data, values))
        run = make_run(
            cfg.network, cfg.inputs, cfg.seed, backend=READER_BACKEND, **cfg.run_options()
        )
        expected = run_config(run, cfg.n_networks, 0)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"sweep point {index} ({point_label(values)}): {exc}") from None
    checksum = digest(json.dumps(expected, sort_keys=True), np.ascontiguousarray(cfg.inputs))
    return SweepPoint(index, values, cfg, point_name(index, n_points), expected, checksum)


def parse_sweep(data):
    """The ``Sweep`` of a decoded config with a [sweep] table."""
    mode, keys, combos = expand_sweep(data)
    points = tuple(_point(i, len(combos), values, data) for i, values in enumerate(combos))
    return Sweep(mode, keys, points, digest(*(p.checksum for p in points)))


def load_sweep(path):
    """The ``Sweep`` of the TOML file ``path`` (ConfigError naming the problem)."""
    return parse_sweep(decode_config(read_config_text(path)))


# --------------------------------------------------------------------------- manifest


def manifest_path(out_dir):
    return os.path.join(os.fspath(out_dir), MANIFEST)


def is_sweep_directory(path):
    """Whether ``path`` is a sweep directory (it holds a manifest ``sweep.json``)."""
    return os.path.isdir(path) and os.path.isfile(manifest_path(path))


def read_manifest(out_dir):
    """The manifest dict of the sweep directory ``out_dir`` (SweepError where it is
    missing or not a sweep manifest)."""
    path = manifest_path(out_dir)
    try:
        with open(path) as fh:
            manifest = json.load(fh)
    except FileNotFoundError:
        raise SweepError(f"{out_dir} holds no sweep manifest {MANIFEST}") from None
    except (OSError, ValueError) as exc:
        raise SweepError(f"{path} is not a readable sweep manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise SweepError(f"{path} is not an nnft_fast sweep manifest")
    if manifest.get("version") != MANIFEST_VERSION:
        raise SweepError(
            f"{path} has manifest version {manifest.get('version')!r}; this nnft_fast "
            f"reads version {MANIFEST_VERSION}"
        )
    return manifest


def _write_manifest(out_dir, manifest):
    """Write the manifest atomically: a temporary file, then ``os.replace``."""
    path = manifest_path(out_dir)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as fh:
            json.dump(manifest, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _new_manifest(sweep, config_path, states):
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "config": os.path.abspath(os.fspath(config_path)),
        "mode": sweep.mode,
        "keys": list(sweep.keys),
        "checksum": sweep.checksum,
        "points": [
            {
                "index": p.index,
                "values": p.values,
                "label": p.label,
                "store": p.store,
                "checksum": p.checksum,
                "n_networks": p.config.n_networks,
                "committed": committed,
                "status": "complete" if committed == p.config.n_networks else "pending",
            }
            for p, committed in zip(sweep.points, states)
        ],
    }


# --------------------------------------------------------------------------- directory


def _point_files(out_dir):
    """{index: file name} of the point stores in ``out_dir``."""
    return {
        int(match.group(1)): name
        for name in sorted(os.listdir(out_dir))
        if (match := _POINT_FILE.match(name))
    }


def _committed(point, path):
    """Networks committed in the store of ``point`` at ``path`` (SweepError for a file
    of another configuration or one that cannot be read)."""
    try:
        info = store_info(path)
        inputs = open_store(path).inputs
    except (StoreError, OSError) as exc:
        raise SweepError(
            f"{path} (sweep point {point.index}) cannot be read ({exc}); delete it to "
            "recompute the point, or pass overwrite=True (CLI: --overwrite)"
        ) from None
    if info["config"] != point.expected or not np.array_equal(inputs, point.config.inputs):
        raise SweepError(
            f"{path} holds another configuration than sweep point {point.index} "
            f"({point.label}): the directory belongs to a different sweep; use another "
            "directory, or pass overwrite=True (CLI: --overwrite) to replace it"
        )
    return int(info["committed"])


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def _check_directory(sweep, out_dir, overwrite):
    """Committed networks per point (0 where its store is missing), after refusing a
    directory with another sweep's manifest or point stores (module docstring); with
    ``overwrite`` every point counts as missing and other sweeps' point files go."""
    names = {p.store for p in sweep.points}
    foreign = [name for name in _point_files(out_dir).values() if name not in names]
    if overwrite:
        for name in foreign:
            for path in (name, name + ".shards"):
                _remove(os.path.join(out_dir, path))
        return [0] * len(sweep.points)
    if os.path.exists(manifest_path(out_dir)):
        old = read_manifest(out_dir)
        if old.get("checksum") != sweep.checksum:
            raise SweepError(
                f"{out_dir} holds the manifest of a different sweep (config "
                f"{old.get('config')}, {len(old.get('points', []))} points); use another "
                "directory, or pass overwrite=True (CLI: --overwrite) to replace it"
            )
    if foreign:
        raise SweepError(
            f"{out_dir} holds {', '.join(foreign)}, not a point of this sweep of "
            f"{len(sweep.points)} points; use another directory, or pass overwrite=True "
            "(CLI: --overwrite)"
        )
    return [
        _committed(p, path) if os.path.exists(path := os.path.join(out_dir, p.store)) else 0
        for p in sweep.points
    ]


# --------------------------------------------------------------------------- running


def _check_callable(name, value):
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable or None, got {type(value).__name__}")


def _run_point(point, path, committed, overwrite, progress, options):
    """Run, resume or rerun one point into ``path``; returns its Ensemble. ``options``:
    executor, shard_size, threads, batch_size (None: the point's) and backend."""
    cfg = point.config
    options = dict(options)
    if options["batch_size"] is None:
        options["batch_size"] = cfg.batch_size
    executor, shard_size = options.pop("executor"), options.pop("shard_size")
    if committed and not overwrite:  # an interrupted plain store: continue it
        return resume(path, expect=point.expected, progress=progress, **options)
    return cfg.sample(
        store=path,
        overwrite=overwrite,
        progress=progress,
        executor=executor,
        shard_size=shard_size,
        **options,
    )


def run_sweep(
    config: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    executor: Executor | None = None,
    shard_size: int | None = None,
    threads: int | None = None,
    batch_size: int | None = None,
    backend: str = DEFAULT_BACKEND,
    overwrite: bool = False,
    log: Callable[[str], object] | None = None,
    progress_factory: Callable[[SweepPoint], Callable[[int, int], object]] | None = None,
) -> dict[str, Any]:
    """Run every point of the sweep config ``config`` into the directory ``out_dir``.

    Parameters
    ----------
    config : str or os.PathLike
        A TOML run config with a [sweep] table (``nnft_fast.config``, docs/sweeps.md).
    out_dir : str or os.PathLike
        The sweep directory (created if missing): ``point_000.h5``, ... and the manifest
        ``sweep.json``.
    executor : concurrent.futures.Executor, optional
        Run each point sharded on this executor (``nf.sample(..., executor=...)``; e.g.
        ``nnft_fast.distributed.dask_executor``), points one after the other.
    shard_size : int, optional
        Networks per shard (with ``executor`` only; default as in ``nf.sample``).
    threads : int, optional
        Numba threads per point (per shard with ``executor``).
    batch_size : int, optional
        Networks per batch; default each point's ``run.batch_size`` (or ``nf.sample``'s
        default). Does not change the results.
    backend : {"auto", "cpu", "cuda"}, default "auto"
        Where the networks are computed (``nf.sample``).
    overwrite : bool, default False
        Recompute every point, replacing the directory's stores and manifest, even those
        of a different sweep (otherwise refused with ``SweepError``).
    log : callable, optional
        ``log(line)`` receives one line per point, e.g. ``point 3/8 (point_002.h5):
        network.cw=1.5 network.activation=relu``, saying whether it is run, resumed or
        skipped; nothing is printed without it.
    progress_factory : callable, optional
        ``progress_factory(point)`` returns the ``progress(done, total)`` callback of
        that point's run (``nnft_fast.progress.Progress``, ``ShardProgress``), or None.

    Returns
    -------
    dict
        The manifest as written to ``sweep.json``: "mode", "keys", "checksum" and per
        point "index", "values", "label", "store", "checksum", "n_networks",
        "committed" and "status" (all "complete" on return).

    Raises
    ------
    ConfigError
        The config or one of its points is invalid (before anything runs).
    SweepError
        ``out_dir`` holds another sweep's manifest or point stores (before anything
        runs), or a point store that cannot be read.

    Notes
    -----
    Re-running the same call resumes the sweep point by point: complete points are
    skipped, an interrupted point store is continued (``nf.resume``, also when
    ``executor`` is given: the remaining networks of that one point then run locally),
    missing points are run. The manifest's status of a point is "running" while it
    runs and "failed" (with "error") when its run raised; the exception propagates.
    Each point's store is what ``nf.sample`` of that point's config writes: same seed,
    bit-identical statistics (sharded: as ``nnft_fast.distributed`` states).
    """
    sweep = load_sweep(config)
    _check_callable("log", log)
    _check_callable("progress_factory", progress_factory)
    if shard_size is not None and executor is None:
        raise ValueError("shard_size needs executor= (a concurrent.futures.Executor)")
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    states = _check_directory(sweep, out_dir, overwrite)
    manifest = _new_manifest(sweep, config, states)
    _write_manifest(out_dir, manifest)
    options = {
        "executor": executor,
        "shard_size": shard_size,
        "threads": threads,
        "batch_size": batch_size,
        "backend": backend,
    }
    total = len(sweep.points)
    for point, committed, entry in zip(sweep.points, states, manifest["points"]):
        head = f"point {point.index + 1}/{total} ({point.store}): {point.label}"
        n = point.config.n_networks
        if committed == n and not overwrite:
            if log is not None:
                log(f"{head}  [complete, skipped]")
            continue
        if log is not None:
            resumed = f"  [resuming at {committed:,}/{n:,} networks]" if committed else ""
            log(head + resumed)
        entry["status"] = "running"
        _write_manifest(out_dir, manifest)
        try:
            ens = _run_point(
                point,
                os.path.join(out_dir, point.store),
                committed,
                overwrite,
                None if progress_factory is None else progress_factory(point),
                options,
            )
        except BaseException as exc:
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            _write_manifest(out_dir, manifest)
            raise
        entry.update(status="complete", committed=ens.n_networks)
        entry.pop("error", None)
        _write_manifest(out_dir, manifest)
    return manifest


def complete_points(out_dir):
    """[(manifest entry, Ensemble)] of the complete points of the sweep directory
    ``out_dir``, in index order: status "complete" in the manifest and every network
    committed in the store."""
    manifest = read_manifest(out_dir)
    points = []
    for entry in manifest["points"]:
        if entry.get("status") != "complete":
            continue
        ens = open_store(os.path.join(os.fspath(out_dir), entry["store"]))
        if ens.n_networks == entry["n_networks"]:
            points.append((entry, ens))
    return points


__all__ = [
    "MANIFEST",
    "Sweep",
    "SweepError",
    "SweepPoint",
    "complete_points",
    "expand_sweep",
    "is_sweep_directory",
    "load_sweep",
    "parse_sweep",
    "point_data",
    "point_label",
    "read_manifest",
    "run_sweep",
]
