"""Command line ``nnft``: run, resume, info, report, demo.

``nnft demo`` is the built-in default job: Gaussian against Haar-orthogonal weights at
criticality for ReLU (C_W = 2) and tanh (C_W = 1), narrow and deep, written to HDF5
stores with a report (plots of K and V/K^2 per layer, Markdown table).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from . import store
from .backends import BACKENDS
from .config import ConfigError, load_config
from .network import Network
from .progress import Progress, ShardProgress
from .report import quadrature_summary, weights_summary, write_report
from .run import DEFAULT_BACKEND, DEFAULT_SEED
from .sampling import sample

DEMO_WIDTH = 32
DEMO_DEPTH = 12
DEMO_INPUT_DIM = 16
DEMO_CONFIGS = (("relu", 2.0), ("tanh", 1.0))
DEMO_INITS = ("gaussian", "orthogonal")


def _check_output(path):
    """Refuse an output path that is empty or an existing non-regular file (a device such
    as /dev/null, a directory, a pipe): a store is a regular HDF5 file."""
    if not path:
        raise ValueError("the output path is empty: give --out FILE.h5")
    if os.path.exists(path) and not os.path.isfile(path):
        raise ValueError(
            f"output {path} exists and is not a regular file (a device, "
            "directory or pipe); give the path of an .h5 file"
        )


def _cmd_run(args):
    cfg = load_config(args.config)
    out = args.out if args.out is not None else cfg.out
    if out is None:
        raise ConfigError("no output file: give --out or set 'store.out' in the config")
    _check_output(out)
    start = time.perf_counter()
    batch_size = args.batch_size if args.batch_size is not None else cfg.batch_size
    kw = dict(
        method=cfg.method,
        dtype=cfg.dtype,
        observables=cfg.observables,
        batch_size=batch_size,
        store=out,
        save=cfg.save,
        overwrite=args.overwrite,
        compression=cfg.compression,
        lambda_b=cfg.lambda_b,
        lambda_w=cfg.lambda_w,
        ntk_readouts=cfg.ntk_readouts,
        backend=args.backend,
        quadruples=cfg.quadruples,
        sextuples=cfg.sextuples,
        deformation=cfg.deformation,
    )
    if args.scheduler or args.workers:
        from .distributed import dask_executor

        threads = args.threads or (1 if args.workers else None)  # no oversubscription
        with dask_executor(scheduler=args.scheduler, workers=args.workers) as executor:
            ens = sample(
                cfg.network,
                cfg.inputs,
                cfg.n_networks,
                cfg.seed,
                **kw,
                threads=threads,
                progress=ShardProgress(args.quiet),
                executor=executor,
                shard_size=args.shard_size,
            )
    else:
        if args.shard_size is not None:
            raise ValueError("--shard-size needs --scheduler or --workers")
        ens = sample(
            cfg.network,
            cfg.inputs,
            cfg.n_networks,
            cfg.seed,
            **kw,
            threads=args.threads,
            progress=Progress(args.quiet),
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


def _cmd_info(args):
    info = store.store_info(args.file, verify_raw=args.verify_raw)
    if "deformation" in info.get("config", {}):  # a deformed run (cos-net or MLP)
        ens = store.open_store(args.file)
        info["weights"] = weights_summary(ens)
        info["quadrature"] = quadrature_summary(ens.quadrature)
    print(json.dumps(info, indent=2, default=str))


def _cmd_report(args):
    ensembles = [store.open_store(path) for path in args.files]
    paths = write_report(ensembles, args.out)
    print("\n".join(f"wrote {p}" for p in paths.values()))


def _cmd_demo(args):
    os.makedirs(args.out, exist_ok=True)
    x = np.ones((1, DEMO_INPUT_DIM))
    widths = (DEMO_INPUT_DIM,) + (DEMO_WIDTH,) * DEMO_DEPTH
    ensembles = []
    for activation, cw in DEMO_CONFIGS:
        for init in DEMO_INITS:
            net = Network(widths, activation, init, cw=cw, cb=0.0)
            path = os.path.join(args.out, f"{activation}_{init}.h5")
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
                    overwrite=True,
                    progress=Progress(args.quiet),
                )
            )
    paths = write_report(
        ensembles, args.out, title=f"Gaussian vs orthogonal at criticality, width {DEMO_WIDTH}"
    )
    with open(paths["summary"]) as fh:
        print(fh.read())
    print("\n".join(f"wrote {p}" for p in paths.values()))


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


def build_parser():
    parser = argparse.ArgumentParser(prog="nnft", description="nnft_fast command line")
    sub = parser.add_subparsers(dest="command", required=True)
    positive = _int_at_least(1)

    def common(p):
        p.add_argument(
            "--backend",
            choices=BACKENDS,
            default=DEFAULT_BACKEND,
            help="cpu, cuda (a GPU is required) or auto (the GPU if Numba sees one); default auto",
        )
        p.add_argument("--threads", type=positive, default=None, help="Numba threads")
        p.add_argument("--batch-size", type=positive, default=None, help="networks per batch")
        p.add_argument("--quiet", action="store_true", help="no progress output")

    run = sub.add_parser("run", help="run a TOML configuration into an HDF5 store")
    run.add_argument("config")
    run.add_argument("--out", default=None, help="output .h5 (overrides store.out)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing file")
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run sharded on a running Dask scheduler (dask extra)",
    )
    run.add_argument(
        "--workers",
        type=positive,
        default=None,
        help="run sharded on a local Dask cluster of N worker processes",
    )
    run.add_argument("--shard-size", type=positive, default=None, help="networks per shard")
    common(run)
    resume = sub.add_parser("resume", help="continue an interrupted run")
    resume.add_argument("file")
    common(resume)
    info = sub.add_parser(
        "info",
        help="print a store's header and progress as JSON (a deformed run: also its weights' "
        "coupling, effective sample size and largest share, and its quadrature rule)",
    )
    info.add_argument("file")
    info.add_argument(
        "--verify-raw",
        action="store_true",
        help="also read every committed raw row, checking its checksums",
    )
    report = sub.add_parser("report", help="plots and a Markdown table for stores")
    report.add_argument("files", nargs="+")
    report.add_argument("--out", required=True, help="output directory")
    demo = sub.add_parser("demo", help="Gaussian vs orthogonal weights at criticality")
    demo.add_argument(
        "--networks",
        type=_int_at_least(2),
        default=400_000,
        help="networks per ensemble (default 400000)",
    )
    demo.add_argument("--seed", type=int, default=DEFAULT_SEED)
    demo.add_argument("--out", default="nnft-demo", help="output directory")
    demo.add_argument("--threads", type=positive, default=None)
    demo.add_argument("--quiet", action="store_true")
    return parser


COMMANDS = {
    "run": _cmd_run,
    "resume": _cmd_resume,
    "info": _cmd_info,
    "report": _cmd_report,
    "demo": _cmd_demo,
}


# Errors that mean the command's arguments were wrong (exit 2); other OSErrors exit 1.
_ARGUMENT_ERRORS = (
    ValueError,
    TypeError,
    ImportError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except _ARGUMENT_ERRORS as exc:
        parser.exit(2, f"nnft {args.command}: error: {exc}\n")
    except OSError as exc:  # the run itself failed (a full disk, an I/O error)
        parser.exit(1, f"nnft {args.command}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
