"""Command line ``nnft``: run, sweep, resume, info, report, demo (``python -m nnft_fast``).

``nnft demo`` is the built-in default job: Gaussian against Haar-orthogonal weights at
criticality for ReLU (C_W = 2) and tanh (C_W = 1), narrow and deep, written to HDF5
stores with a report (plots of K and V/K^2 per layer, Markdown table).

Exit codes: 0 success; 2 a usage error, the command or its configuration is wrong (bad
arguments, a malformed or impossible TOML config, an output that exists without
--overwrite, a missing input file); 1 a runtime error, the run itself failed (a corrupt or
mismatched store, a full disk or other I/O error, a failed shard, no GPU for --backend
cuda); 130 interrupted (Ctrl-C: a store keeps every committed batch, ``nnft resume``
continues it). Messages name things in CLI words: flags, TOML keys, ``nnft`` commands.
"""

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import time

import numpy as np

from . import __version__, store
from .backends import BACKENDS, BackendUnavailable
from .config import ConfigError, load_config
from .distributed import parse_resources
from .h5format import StoreError
from .network import Network
from .progress import Progress, ShardProgress
from .report import quadrature_summary, weights_summary, write_report
from .run import DEFAULT_BACKEND, DEFAULT_SEED
from .sampling import sample
from .sweep import is_sweep_directory, run_sweep
from .sweep_report import write_sweep_report

DEMO_WIDTH = 32
DEMO_DEPTH = 12
DEMO_INPUT_DIM = 16
DEMO_CONFIGS = (("relu", 2.0), ("tanh", 1.0))
DEMO_INITS = ("gaussian", "orthogonal")
DEMO_NETWORKS = 400_000
DEMO_OUT = "nnft-demo"

EXIT_RUNTIME = 1  # the run itself failed
EXIT_USAGE = 2  # the command or its configuration is wrong (argparse's own code)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell convention

# Library words -> CLI words in error messages.
_CLI_WORDS = (
    ("nf.resume / nnft resume", "nnft resume"),
    ("nf.resume", "nnft resume"),
    ("pass overwrite=True (CLI: --overwrite)", "pass --overwrite"),
    ("overwrite=True", "--overwrite"),
    ("nf.store_info", "nnft info"),
)
# Parameters of nf.sample that a run's TOML config sets, and their keys.
_TOML_KEYS = {
    "n_networks": "run.n_networks",
    "seed": "run.seed",
    "method": "run.method",
    "dtype": "run.dtype",
    "observables": "run.observables",
    "lambda_b": "run.lambda_b",
    "lambda_w": "run.lambda_w",
    "ntk_readouts": "run.ntk_readouts",
    "quadruples": "run.quadruples",
    "sextuples": "run.sextuples",
    "save": "store.save",
    "compression": "store.compression",
    "deformation": "[deformation]",
}


class UsageError(ValueError):
    """A command line that cannot be run as given (exit code 2)."""


def in_cli_words(message):
    """``message`` with the library's names of things replaced by the CLI's."""
    for library, cli in _CLI_WORDS:
        message = message.replace(library, cli)
    return message


def _naming_the_key(message):
    """A validation message of nf.sample's, prefixed with the TOML key of the parameter it
    starts with (``method must be ...`` -> ``'run.method': method must be ...``)."""
    names = "|".join(_TOML_KEYS)
    found = re.match(rf"(?:unknown )?({names})\b", message)
    return f"'{_TOML_KEYS[found.group(1)]}': {message}" if found else message


def _check_output(path):
    """Refuse an output path that is empty or an existing non-regular file (a device such
    as /dev/null, a directory, a pipe): a store is a regular HDF5 file."""
    if not path:
        raise UsageError("the output path is empty: give --out FILE.h5")
    if os.path.exists(path) and not os.path.isfile(path):
        raise UsageError(
            f"output {path} exists and is not a regular file (a device, "
            "directory or pipe); give the path of an .h5 file"
        )


class _SetUpWatch:
    """A run's progress callback that also notes when the run's set-up is over (the
    drivers call ``started`` before the first batch); every other attribute (a
    ShardProgress's ``shard_done``) is the wrapped callback's."""

    def __init__(self, progress):
        self.progress = progress
        self.set_up = False

    def started(self, done, total):
        self.set_up = True
        getattr(self.progress, "started", lambda done, total: None)(done, total)

    def __call__(self, done, total):
        self.set_up = True
        self.progress(done, total)

    def __getattr__(self, name):
        return getattr(self.progress, name)


def _sample_configured(cfg, progress, **kw):
    """nf.sample of a loaded config; a ValueError/TypeError raised while the run is set up
    (an impossible value in the config) becomes a ConfigError naming its TOML key."""
    watch = _SetUpWatch(progress)
    try:
        return cfg.sample(progress=watch, **kw)
    except (ValueError, TypeError) as exc:
        if watch.set_up or isinstance(exc, (StoreError, BackendUnavailable, FileExistsError)):
            raise
        raise ConfigError(_naming_the_key(str(exc))) from None


def _sharded(args):
    """Whether the command asks for a sharded run on Dask."""
    return bool(args.scheduler or args.scheduler_file or args.workers)


@contextlib.contextmanager
def _executor(args):
    """(executor, threads) of a run command: a Dask executor for --scheduler,
    --scheduler-file or --workers (one Numba thread per local worker, no
    oversubscription), else (None, --threads)."""
    if not _sharded(args):
        if args.shard_size is not None or args.resources:
            flag = "--shard-size" if args.shard_size is not None else "--resources"
            raise UsageError(f"{flag} needs --scheduler, --scheduler-file or --workers")
        yield None, args.threads
        return
    from .distributed import dask_executor

    threads = args.threads or (1 if args.workers else None)
    with dask_executor(
        scheduler=args.scheduler,
        workers=args.workers,
        scheduler_file=args.scheduler_file,
        resources=args.resources,
    ) as executor:
        yield executor, threads


def _progress(args):
    """The progress line of a run command (shards and networks when sharded)."""
    return (ShardProgress if _sharded(args) else Progress)(args.quiet)


def _cmd_run(args):
    cfg = load_config(args.config)
    out = args.out if args.out is not None else cfg.out
    if out is None:
        raise ConfigError("no output file: give --out or set 'store.out' in the config")
    _check_output(out)
    start = time.perf_counter()
    with _executor(args) as (executor, threads):
        sharding = {"executor": executor, "shard_size": args.shard_size} if executor else {}
        ens = _sample_configured(
            cfg,
            batch_size=args.batch_size if args.batch_size is not None else cfg.batch_size,
            store=out,
            overwrite=args.overwrite,
            backend=args.backend,
            threads=threads,
            progress=_progress(args),
            **sharding,
        )
    if not args.quiet:
        print(
            f"{ens.n_networks:,} networks -> {out} in {time.perf_counter() - start:.1f} s "
            f"(backend: {ens.backend})"
        )
        if getattr(ens, "is_deformed", False):
            print(f"weights: {weights_summary(ens)['summary']}")
            if ens.quadrature is not None:
                print(f"quadrature: {quadrature_summary(ens.quadrature)['summary']}")


def _cmd_sweep(args):
    start = time.perf_counter()
    with _executor(args) as (executor, threads):
        manifest = run_sweep(
            args.config,
            args.out,
            executor=executor,
            shard_size=args.shard_size,
            threads=threads,
            batch_size=args.batch_size,
            backend=args.backend,
            overwrite=args.overwrite,
            log=None if args.quiet else print,
            progress_factory=lambda point: _progress(args),
        )
    if not args.quiet:
        print(
            f"{len(manifest['points'])} points -> {args.out} in "
            f"{time.perf_counter() - start:.1f} s (report: nnft report {args.out})"
        )


def _cmd_resume(args):
    ens = store.resume(
        args.file,
        batch_size=args.batch_size,
        threads=args.threads,
        progress=Progress(args.quiet),
        backend=args.backend,
    )
    if not args.quiet:
        print(f"{args.file}: {ens.n_networks:,} networks committed")


def _store_info(path, verify_raw):
    """store_info of ``path``, with a deformed run's weights and quadrature summaries."""
    info = store.store_info(path, verify_raw=verify_raw)
    if "deformation" in info.get("config", {}):  # a deformed run (cos-net or MLP)
        ens = store.open_store(path)
        info["weights"] = weights_summary(ens)
        info["quadrature"] = quadrature_summary(ens.quadrature)
    return info


def _values(mapping):
    """``key = value, ...`` of a JSON-able mapping, lists of equal entries shortened."""
    parts = []
    for key, value in mapping.items():
        if isinstance(value, list) and value and all(v == value[0] for v in value):
            value = f"{value[0]} (every layer)" if len(value) > 1 else value[0]
        parts.append(f"{key} = {value}")
    return ", ".join(parts)


def describe_store(path, info):
    """A person's summary of ``_store_info``: completeness, network, run, raw data and
    provenance, one topic per line."""
    config = info["config"]
    target, committed = config["n_networks"], info["committed"]
    state = "complete" if committed >= target else f"INCOMPLETE (nnft resume {path})"
    lines = [f"{path}: {committed:,} of {target:,} networks committed, {state}"]
    rows = [
        ("network", _values(config["network"])),
        ("inputs", f"{config['n_inputs']} (the store's /inputs)"),
        (
            "run",
            f"seed {config['seed']}, networks {config['first_network']:,}.."
            f"{config['first_network'] + target - 1:,}, method {config['method']}, "
            f"{config['dtype']}, observables {', '.join(config['observables'])}",
        ),
    ]
    if "ntk" in config:
        rows.append(("ntk", _values(config["ntk"])))
    if "deformation" in config:
        rows.append(("deformation", _values(config["deformation"])))
        rows.append(("weights", info["weights"]["summary"]))
        rows.append(("quadrature", info["quadrature"]["summary"]))
    raw = ", ".join(f"{name} {' x '.join(map(str, shape))}" for name, shape in info["raw"].items())
    rows.append(("raw", raw or "none saved"))
    rows.append(
        (
            "written",
            f"{info.get('created', '?')} on {info.get('host', '?')} by nnft_fast "
            f"{info.get('package_version', '?')} (schema {info.get('schema_version', '?')}), "
            f"backend {info.get('backend', '?')}",
        )
    )
    width = max(len(name) for name, _ in rows)
    return "\n".join(lines + [f"  {name:<{width}}  {text}" for name, text in rows])


def _cmd_info(args):
    info = _store_info(args.file, args.verify_raw)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(describe_store(args.file, info))


def _cmd_report(args):
    if len(args.files) == 1 and is_sweep_directory(args.files[0]):
        paths = write_sweep_report(args.files[0], args.out)
    elif args.out is None:
        raise UsageError("give --out DIR (only a sweep directory reports into itself)")
    else:
        paths = write_report([store.open_store(path) for path in args.files], args.out)
    print("\n".join(f"wrote {p}" for p in paths.values()))


def demo_paths(out):
    """The demo's store files in the directory ``out``, in run order."""
    return [
        os.path.join(out, f"{activation}_{init}.h5")
        for activation, _ in DEMO_CONFIGS
        for init in DEMO_INITS
    ]


def _cmd_demo(args):
    existing = [p for p in demo_paths(args.out) if os.path.exists(p)]
    if existing and not args.overwrite:
        raise UsageError(
            f"{args.out} holds results of an earlier demo ({', '.join(existing)}); "
            "pass --overwrite to replace them, or choose another --out"
        )
    os.makedirs(args.out, exist_ok=True)
    x = np.ones((1, DEMO_INPUT_DIM))
    widths = (DEMO_INPUT_DIM,) + (DEMO_WIDTH,) * DEMO_DEPTH
    ensembles = []
    paths = iter(demo_paths(args.out))
    for activation, cw in DEMO_CONFIGS:
        for init in DEMO_INITS:
            net = Network(widths, activation, init, cw=cw, cb=0.0)
            path = next(paths)
            if not args.quiet:
                print(f"{activation} {init} (C_W={cw}) -> {path}")
            ensembles.append(
                sample(
                    net,
                    x,
                    args.networks,
                    seed=args.seed,
                    threads=args.threads,
                    store=path,
                    overwrite=True,  # checked above, for all four files at once
                    progress=Progress(args.quiet),
                )
            )
    written = write_report(
        ensembles, args.out, title=f"Gaussian vs orthogonal at criticality, width {DEMO_WIDTH}"
    )
    with open(written["summary"]) as fh:
        print(fh.read())
    print("\n".join(f"wrote {p}" for p in written.values()))


def _int_at_least(minimum):
    """argparse type: an integer >= ``minimum`` (otherwise a usage error, exit code 2)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _seed(text):
    """argparse type: a seed, an integer 0 <= seed < 2^64."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be in 0 .. 2^64 - 1, got {value}")
    return value


def _resources(text):
    """argparse type: Dask resources ``NAME=N[,NAME=N...]`` -> {NAME: N}."""
    try:
        return parse_resources(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser():
    parser = argparse.ArgumentParser(
        prog="nnft",
        description="nnft_fast: ensembles of random neural networks and the field theories "
        "they define, streamed to HDF5 stores.",
        epilog="Exit codes: 0 success, 1 the run failed, 2 usage error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"nnft_fast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    positive = _int_at_least(1)

    def verbosity(p):
        p.add_argument("--quiet", action="store_true", help="no progress output")
        p.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="log the run's events (backend choice, resumes, shard retries) on stderr",
        )

    def common(p):
        p.add_argument(
            "--backend",
            choices=BACKENDS,
            default=DEFAULT_BACKEND,
            help="cpu, cuda (a GPU is required) or auto (the GPU if Numba sees one); default auto",
        )
        p.add_argument(
            "--threads", type=positive, default=None, help="Numba threads (default: all cores)"
        )
        p.add_argument(
            "--batch-size",
            type=positive,
            default=None,
            help="networks per batch (default: sized to memory; results do not depend on it)",
        )
        verbosity(p)

    def sharding(p):
        p.add_argument(
            "--scheduler",
            default=None,
            metavar="tcp://HOST:PORT",
            help="run sharded on a running Dask scheduler (dask extra)",
        )
        p.add_argument(
            "--scheduler-file",
            default=None,
            metavar="FILE",
            help="run sharded on the Dask scheduler that wrote FILE (dask scheduler "
            "--scheduler-file, dask-mpi, dask-jobqueue: Dask's HPC convention)",
        )
        p.add_argument(
            "--workers",
            type=positive,
            default=None,
            help="run sharded on a local Dask cluster of N worker processes",
        )
        p.add_argument(
            "--resources",
            type=_resources,
            default=None,
            metavar="NAME=N[,...]",
            help="Dask resources every shard needs, e.g. GPU=1: shards run only on workers "
            "started with them (dask worker --resources GPU=1)",
        )
        p.add_argument(
            "--shard-size",
            type=positive,
            default=None,
            help="networks per shard of a sharded run (default: a function of the run's size)",
        )
        p.add_argument("--overwrite", action="store_true", help="replace existing results")

    run = sub.add_parser("run", help="run a TOML configuration into an HDF5 store")
    run.add_argument(
        "config",
        help="the run's TOML configuration (examples/*.toml; the format: nnft_fast.config)",
    )
    run.add_argument("--out", default=None, help="output .h5 (overrides store.out)")
    sharding(run)
    common(run)
    sweep = sub.add_parser(
        "sweep",
        help="run every point of a TOML configuration with a [sweep] table into one "
        "directory (resumable point by point)",
    )
    sweep.add_argument("config", help="a TOML configuration with a [sweep] table")
    sweep.add_argument(
        "--out", required=True, help="the sweep directory (point_000.h5, ..., sweep.json)"
    )
    sharding(sweep)
    common(sweep)
    resume = sub.add_parser("resume", help="continue an interrupted run")
    resume.add_argument("file", help="the store .h5 of the interrupted run")
    common(resume)
    info = sub.add_parser(
        "info",
        help="describe a store: progress, network, run, raw data, provenance (a deformed run: "
        "also its weights and quadrature rule)",
    )
    info.add_argument("file", help="a store .h5")
    info.add_argument(
        "--verify-raw",
        action="store_true",
        help="also read every committed raw row, checking its checksums",
    )
    info.add_argument("--json", action="store_true", help="print the header as JSON")
    info.add_argument("-v", "--verbose", action="store_true", help="log events on stderr")
    report = sub.add_parser(
        "report", help="plots and a Markdown table for stores, or for a sweep directory"
    )
    report.add_argument(
        "files", nargs="+", help="store files (.h5) to report on together, or one sweep directory"
    )
    report.add_argument(
        "--out", default=None, help="output directory (a sweep's default: the sweep directory)"
    )
    report.add_argument("-v", "--verbose", action="store_true", help="log events on stderr")
    demo = sub.add_parser("demo", help="Gaussian vs orthogonal weights at criticality")
    demo.add_argument(
        "--networks",
        type=_int_at_least(2),
        default=DEMO_NETWORKS,
        help=f"networks per ensemble (default {DEMO_NETWORKS})",
    )
    demo.add_argument(
        "--seed", type=_seed, default=DEFAULT_SEED, help=f"seed (default {DEFAULT_SEED})"
    )
    demo.add_argument("--out", default=DEMO_OUT, help=f"output directory (default {DEMO_OUT})")
    demo.add_argument(
        "--overwrite", action="store_true", help="replace the stores of an earlier demo in --out"
    )
    demo.add_argument(
        "--threads", type=positive, default=None, help="Numba threads (default: all cores)"
    )
    verbosity(demo)
    return parser


COMMANDS = {
    "run": _cmd_run,
    "sweep": _cmd_sweep,
    "resume": _cmd_resume,
    "info": _cmd_info,
    "report": _cmd_report,
    "demo": _cmd_demo,
}

# Errors that mean the run itself failed or cannot run here (exit 1: a missing optional
# package too); other ValueError/TypeError and the file errors of a wrong path are usage
# errors (exit 2); any other OSError (a full disk, an I/O error) exits 1.
_RUNTIME_ERRORS = (StoreError, BackendUnavailable, ImportError, RuntimeError, MemoryError)
_USAGE_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def exit_code(exc):
    """The exit code of a command that raised ``exc`` (module docstring)."""
    if isinstance(exc, _RUNTIME_ERRORS):
        return EXIT_RUNTIME
    if isinstance(exc, _USAGE_ERRORS):
        return EXIT_USAGE
    return EXIT_RUNTIME  # OSError: a full disk, an I/O error


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "verbose", False):
        logging.basicConfig(level=logging.INFO, format="nnft: %(name)s: %(message)s")
    try:
        COMMANDS[args.command](args)
    except KeyboardInterrupt:
        parser.exit(
            EXIT_INTERRUPTED,
            f"nnft {args.command}: interrupted; a store keeps its committed batches "
            "(nnft resume FILE continues it)\n",
        )
    except (*_RUNTIME_ERRORS, *_USAGE_ERRORS, OSError) as exc:
        parser.exit(exit_code(exc), f"nnft {args.command}: error: {in_cli_words(str(exc))}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
