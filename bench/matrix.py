"""Benchmark matrix: nnft_fast against NumPy, PyTorch, JAX (and neural-tangents) on four
network shapes, with a statistical agreement check and the random-number floor.

    python -m bench.matrix                 # full, ~10 min on 2 cores
    python -m bench.matrix --quick         # ~2-3 min
    python -m bench.matrix --json out.json --only R1,wide
    python -m bench.matrix --smoke         # two tiny configs, checks the wiring

Configs (bench.configs.MATRIX, ReLU throughout): R1, narrow_deep, wide, nnft_1hl.

Methods per config: nnft_fast ``nf.sample(backend="cpu")`` projected Gaussian, dense
Gaussian, projected orthogonal (2+4-point statistics on every layer); the dense baselines
NumPy (bench/numpy_baseline.py), PyTorch (bench/torch_baseline.py), JAX
(bench/jax_baseline.py) and the projected baselines, nnft_fast's own algorithm written
in each library (bench/numpy_projected.py, bench/torch_projected.py,
bench/jax_projected.py; bench/projected.py), Gaussian and orthogonal, all accumulating
the same per-network [G | Q | GG] vectors; neural-tangents' Monte-Carlo NNGP / NTK where
it imports. A missing package is skipped with a message. Every library gets nnft_fast's
Numba thread count: NumPy projected splits each chunk over that many threads (OpenBLAS
at one), PyTorch ``torch.set_num_threads``, JAX's pool is the usable cores (a warning
says where that differs). Everything is warmed up (compiled) first, then each method is
sized to ~``target`` seconds per repeat and the repeats run interleaved round-robin
within a config; figures are medians, ratios are within one run. Every row carries two
ratios: against the best (fastest median) dense baseline and against the best projected
baseline of the same weight law.

Floor: the project's own normal generator (``fill_normal``, one thread) times the
threads, over the normals one network of the config draws by the method's algorithm
(projected: sum_l n_l min(n_{l-1}, B); dense: sum_l n_l n_{l-1}). Every row also gives its
rate as a fraction of its algorithm's floor on this machine (the baselines' too: what
they reach of the floor nnft_fast's generator sets).

Agreement (bench.agreement): every method against nnft_fast projected of the same weight
law, at the config's check layers; |z_pt| > 5 is flagged.
"""

import importlib
import sys
import time

import numpy as np

import nnft_fast as nf

from . import agreement, jax_baseline
from .configs import MATRIX, SAMPLE_SEED, TINY, TINY_1HL
from .dense import NumpyDense
from .projected import NumpyProjected
from .harness import finish, fmt_rate, parser, round_robin, write_json
from .machine import load_average, machine_info, print_machine
from .methods import DenseMethod, FloorMethod, NnftMethod

Z_FLAG = 5.0
BASELINE_PACKAGES = ("jax", "torch", "neural-tangents")


def baseline_status():
    """{name: None if usable else the reason it is skipped}."""
    status = {}
    for name in ("torch", "jax"):
        try:
            importlib.import_module(name)
            status[name] = None
        except ImportError:
            status[name] = f"skipped: {name} not installed (pip install {name})"
    if status["jax"] is None:
        reason = jax_baseline.neural_tangents_status()
        status["neural_tangents"] = None if reason is None else f"skipped: {reason}"
    else:
        status["neural_tangents"] = "skipped: jax not installed (pip install jax neural-tangents)"
    return status


def frameworks(status, threads):
    """(key, name, algorithm, runner class, extra keywords, NumPy's BLAS threads) of every
    usable baseline."""
    blas = 1 if threads > 1 else None  # NumPy projected runs its own threads
    out = [
        ("numpy", "NumPy", "dense", NumpyDense, {}, None),
        ("numpy", "NumPy", "projected", NumpyProjected, {"threads": threads}, blas),
    ]
    if status["torch"] is None:
        from .torch_baseline import TorchDenseEnsemble
        from .torch_projected import TorchProjectedEnsemble

        out += [
            ("torch", "PyTorch", "dense", TorchDenseEnsemble, {}, None),
            ("torch", "PyTorch", "projected", TorchProjectedEnsemble, {}, None),
        ]
    if status["jax"] is None:
        from .jax_projected import JaxProjectedEnsemble

        out += [
            ("jax", "JAX", "dense", jax_baseline.JaxDenseEnsemble, {}, None),
            ("jax", "JAX", "projected", JaxProjectedEnsemble, {}, None),
        ]
    return out


def build_methods(cfg, status, threads):
    x = cfg.inputs()
    methods = [
        NnftMethod(cfg, "gaussian", "projected", x=x),
        NnftMethod(cfg, "gaussian", "dense", x=x),
    ]
    if cfg.orthogonal:
        methods.append(NnftMethod(cfg, "orthogonal", "projected", x=x))
    for key, name, algorithm, make, extra, blas in frameworks(status, threads):
        for init in cfg.inits:
            runner = make(
                cfg.widths,
                x,
                init=init,
                cw=cfg.cw,
                cb=cfg.cb,
                activation=cfg.activation,
                seed=SAMPLE_SEED,
                **extra,
            )
            methods.append(
                DenseMethod(
                    f"{key}_{algorithm}_{init}", f"{name} {algorithm} {init}", runner, blas=blas
                )
            )
    if status["neural_tangents"] is None and cfg.key in ("R1", "nnft_1hl"):
        runner = jax_baseline.NeuralTangentsMC(
            cfg.widths, x, cw=cfg.cw, cb=cfg.cb, activation=cfg.activation, seed=SAMPLE_SEED
        )
        methods.append(
            DenseMethod("neural_tangents_mc", "neural-tangents MC (NNGP + NTK, last layer)", runner)
        )
    return methods


def nt_agreement(nt, ref, cfg, n_ntk):
    """neural-tangents' output-layer NNGP against nnft_fast's K, and its mean NTK against
    an nnft_fast NTK run (lambda_b = C_b, lambda_W = C_W). neural-tangents gives means
    only, so nnft_fast's error, scaled to the other's network count, stands in for both
    (as for z_p in bench.agreement)."""
    L, n_nt = cfg.n_layers, nt.runner.next_network

    def z(value, est, n_ref):
        return (value - est.value) / (est.error * np.sqrt(1.0 + n_ref / n_nt) + 1e-300)

    zk = z(nt.runner.mean("nngp"), ref.two_point(L), ref.n_networks)
    ens = nf.sample(
        cfg.network("gaussian"),
        cfg.inputs(),
        n_ntk,
        seed=SAMPLE_SEED + 5,
        observables=("two_point", "ntk"),
        lambda_b=cfg.cb,
        lambda_w=cfg.cw,
        backend="cpu",
    )
    zt = z(nt.runner.mean("ntk"), ens.ntk(L), n_ntk)
    return {
        "K": {"max_abs_z_pt": float(np.max(np.abs(zk))), "n": int(zk.size)},
        "NTK": {"max_abs_z_pt": float(np.max(np.abs(zt))), "n": int(zt.size)},
    }


ALGORITHMS = ("dense", "projected")


def algorithm_of(m):
    """The algorithm ("dense" or "projected") a timed method runs."""
    return m.method if isinstance(m, NnftMethod) else m.runner.algorithm


def floor_fraction(m, result):
    """A method's median rate over its algorithm's floor (same run, same machine)."""
    return m.rate / result["floor_rates"][algorithm_of(m)]


def run_config(cfg, status, target, repeats, threads, n_ntk):
    print(f"## {cfg.key}: {cfg.describe()}")
    n_proj = cfg.normals_per_network("projected")
    print(f"normals per network: projected {n_proj:,}, dense {cfg.normals_per_network('dense'):,}")
    methods = build_methods(cfg, status, threads)
    floor = FloorMethod("rng_floor", "random-number floor")
    t0 = time.perf_counter()
    for m in methods + [floor]:
        m.warmup()
    print(
        f"warm-up (compile, first calls; untimed) {time.perf_counter() - t0:.1f} s: "
        + ", ".join(f"{m.label} {m.first_call_s:.1f} s" for m in methods)
    )
    for m in methods:  # first pilot: 256 / 2 networks (nnft_fast), one call (baselines)
        n_start = (
            (256 if m.method == "projected" else 2)
            if isinstance(m, NnftMethod)
            else m.runner.whole(1)
        )
        m.calibrate(target, n_start, 1, 10**7)
    floor.calibrate(target / 2, 16, 1, 10**6)
    print("networks per repeat: " + ", ".join(f"{m.label} {m.n_per_repeat:,}" for m in methods))
    round_robin(methods + [floor], repeats, f"  {cfg.key}")

    refs = {m.init: m for m in methods if isinstance(m, NnftMethod) and m.method == "projected"}
    rows = []
    for m in methods:
        ref, res = refs[m.init], None
        if m.key == "neural_tangents_mc":
            res = nt_agreement(m, ref.ensemble, cfg, n_ntk)
        elif m is not ref and m.ensemble is not None:
            res = agreement.compare(ref.ensemble, m.ensemble, cfg.check_layers)
        rows.append((m, res))
    return {
        "cfg": cfg,
        "methods": methods,
        "floor": floor,
        "n_proj": n_proj,
        "rows": rows,
        "floor_rates": {a: floor.networks_per_s(cfg, threads, algorithm=a) for a in ALGORITHMS},
    }


def best_baselines(methods):
    """{(algorithm, init): the fastest median rate among the baselines of that algorithm
    and weight law} (neural-tangents, output-layer kernels only, is left out)."""
    best = {}
    for m in methods:
        if m.kind == "baseline" and m.key != "neural_tangents_mc":
            k = (m.runner.algorithm, m.init)
            best[k] = max(best.get(k, 0.0), m.rate)
    return best


def ratios(rate, init, best, fmt="{:,.2f}x"):
    """The two ratio cells: ``rate`` over the best dense and the best projected baseline
    of law ``init`` ("-" where there is none)."""
    return [fmt.format(rate / best[(a, init)]) if (a, init) in best else "-" for a in ALGORITHMS]


def print_config(result, threads):
    cfg, methods, rows = result["cfg"], result["methods"], result["rows"]
    print(
        f"\n| {cfg.key}: method | networks (all repeats) | networks/s (best) | "
        "vs best dense baseline, same law | vs best projected baseline, same law | "
        "fraction of its algorithm's floor | "
        f"max abs z | max abs z_pt | agreement (abs z_pt < {Z_FLAG:g}) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    best = best_baselines(methods)
    verdicts = []
    for m, res in rows:
        if res is None:
            zs, zp, verdict = "-", "-", "reference" if m.kind == "nnft_fast" else "-"
        else:
            zmax = max(r.get("max_abs_z", float("nan")) for r in res.values())
            zpmax = agreement.worst(res)
            ok = zpmax < Z_FLAG
            verdicts.append(ok)
            zs, zp = (f"{zmax:.2f}" if np.isfinite(zmax) else "-"), f"{zpmax:.2f}"
            verdict = "ok" if ok else "DISAGREE"
            if m.key == "neural_tangents_mc":
                verdict += " (last-layer K and mean NTK only)"
        vs_dense, vs_projected = ratios(m.rate, m.init, best)
        print(
            f"| {m.label} | {sum(m.counts):,} | {fmt_rate(m.rate)} ({fmt_rate(m.best)}) | "
            f"{vs_dense} | {vs_projected} | {floor_fraction(m, result):.3f} | {zs} | {zp} | "
            f"{verdict} |"
        )
    floor = result["floor"]
    for algorithm in ALGORITHMS:
        rate = result["floor_rates"][algorithm]
        vs_dense, vs_projected = ratios(rate, "gaussian", best)
        print(
            f"| random-number floor, {algorithm}: {floor.rate / 1e6:.0f} M normals/s/thread x "
            f"{threads} threads / {cfg.normals_per_network(algorithm):,} normals | - | "
            f"{fmt_rate(rate)} | {vs_dense} | {vs_projected} | - | - | - | - |"
        )
    print(
        f"\n(agreement at layers {', '.join(map(str, cfg.check_layers))}: unique entries of "
        "K, C_distinct (where the layer has > 1 neuron) and C_same vs nnft_fast projected "
        "of the same law)"
    )
    return all(verdicts)


def summary_table(results, status):
    labels = {}
    for r in results:
        for m in r["methods"]:
            labels.setdefault(m.key, m.label)
    print(
        "## summary: networks/s (median); in brackets the ratio vs the best dense / the best "
        "projected baseline of the same law, and the fraction of its algorithm's floor\n"
    )
    print("| method | " + " | ".join(r["cfg"].key for r in results) + " |")
    print("|---|" + "---:|" * len(results))

    def cell(rate, init, r, fraction=None):
        two = ratios(rate, init, best_baselines(r["methods"]), "{:,.1f}x")
        share = "" if fraction is None else f"; {fraction:.2f} of floor"
        return f"{fmt_rate(rate)} ({' / '.join(two)}{share})"

    for key, label in labels.items():
        cells = []
        for r in results:
            m = {m.key: m for m in r["methods"]}.get(key)
            cells.append("-" if m is None else cell(m.rate, m.init, r, floor_fraction(m, r)))
        print(f"| {label} | " + " | ".join(cells) + " |")
    for algorithm in ALGORITHMS:
        cells = [cell(r["floor_rates"][algorithm], "gaussian", r) for r in results]
        print(f"| random-number floor ({algorithm} normals) | " + " | ".join(cells) + " |")
    for name, reason in status.items():
        if reason is not None:
            print(f"\n{name}: {reason}")


def config_json(r):
    cfg = r["cfg"]
    return {
        "widths": list(cfg.widths),
        "inputs": cfg.inputs().tolist(),
        "cw": cfg.cw,
        "cb": cfg.cb,
        "activation": cfg.activation,
        "check_layers": list(cfg.check_layers),
        "normals_per_network_projected": r["n_proj"],
        "normals_per_network_dense": r["cfg"].normals_per_network("dense"),
        "rng_floor": {
            "normals_per_s_per_thread": r["floor"].rate,
            "networks_per_s": r["floor_rates"]["projected"],
            "networks_per_s_dense": r["floor_rates"]["dense"],
        },
        "best_baselines": {
            f"{a}_{init}": rate for (a, init), rate in best_baselines(r["methods"]).items()
        },
        "methods": {
            m.key: {
                **m.to_json(),
                "algorithm": algorithm_of(m),
                "floor_fraction": floor_fraction(m, r),
                "agreement": res,
            }
            for m, res in r["rows"]
        },
    }


def main(argv=None):
    ap = parser("bench.matrix", __doc__, quick="short run (~2-3 min)")
    ap.add_argument("--only", metavar="KEYS", help="comma-separated config keys")
    args = ap.parse_args(argv)
    target, repeats = (0.02, 2) if args.smoke else (0.4, 3) if args.quick else (2.0, 5)
    started = time.perf_counter()
    info = machine_info(optional=BASELINE_PACKAGES)
    status = baseline_status()
    threads = info["numba_threads"]
    if status["torch"] is None:  # PyTorch at nnft_fast's thread count
        from .torch_baseline import set_threads, versions

        set_threads(threads)
        info.update(versions())
    if status["jax"] is None and info["cpus_usable"] != threads:
        print(
            f"warning: JAX's CPU pool has {info['cpus_usable']} threads (the usable cores), "
            f"nnft_fast {threads}: run under taskset to match"
        )
    print(
        f"# nnft_fast benchmark matrix{' (--quick)' if args.quick else ''}"
        f"{' (--smoke)' if args.smoke else ''}\n"
    )
    print_machine(info)
    for name, reason in status.items():
        print(f"{name}: {'available' if reason is None else reason}")
    print()
    chosen = (TINY, TINY_1HL) if args.smoke else MATRIX
    if args.only:
        chosen = [c for c in chosen if c.key in args.only.split(",")]
    n_ntk = 200 if args.smoke else 2000 if args.quick else 20000
    results, all_ok = [], True
    for cfg in chosen:
        r = run_config(cfg, status, target, repeats, threads, n_ntk)
        all_ok &= print_config(r, threads)
        results.append(r)
        print(
            f"(load average now {load_average()}; {time.perf_counter() - started:.0f} s so far)\n"
        )
    summary_table(results, status)
    print(
        "\nagreement: "
        + ("all methods consistent" if all_ok else "SOME METHODS DISAGREE - see the tables")
    )
    elapsed = finish(started)
    write_json(
        args.json,
        "matrix",
        args,
        info,
        elapsed,
        baselines=status,
        configs={r["cfg"].key: config_json(r) for r in results},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
