"""Benchmark matrix: nnft_fast against NumPy, PyTorch, JAX (and neural-tangents) on four
network shapes, with a statistical agreement check and the random-number floor.

    python -m bench.matrix                 # full, ~10 min on 2 cores
    python -m bench.matrix --quick         # ~2-3 min
    python -m bench.matrix --json out.json --only R1,wide

Configs (ReLU throughout):
    R1           n_0 = 64, 8 layers of width 512, B = 4, C_W = 2, C_b = 0 (docs/performance.md#r1)
    narrow_deep  n_0 = 32, 64 layers of width 32, B = 4, C_W = 2, C_b = 0
    wide         n_0 = 64, 4 layers of width 2048, B = 4, C_W = 2, C_b = 0
    nnft_1hl     single hidden layer (Halverson-Maiti-Stoner ReLU-net): widths (1, 1000, 1),
                 six scalar inputs x = linspace(-1, 1, 6), sigma_W^2 = C_W = 1,
                 sigma_b^2 = C_b = 1; the output layer's K and same-neuron connected
                 four-point function are the NNFT correlators (Gaussian weights only)

Methods per config: nnft_fast ``nf.sample(backend="cpu")`` projected Gaussian, dense
Gaussian, projected orthogonal (2+4-point statistics on every layer); the dense baselines
NumPy (bench/baselines.py), PyTorch (bench/torch_baseline.py), JAX
(bench/jax_baseline.py), Gaussian and orthogonal, all accumulating the same per-network
[G | Q | GG] vectors; neural-tangents' Monte-Carlo NNGP / NTK where it imports. A missing
package is skipped with a message. Everything is warmed up (compiled) first, then each
method is sized to ~``target`` seconds per repeat and the repeats run interleaved
round-robin within a config; figures are medians, ratios are within one run.

Agreement: every method against nnft_fast projected of the same weight law, at a few
layers, on the unique entries of K, the distinct-neuron and the same-neuron connected
four-point functions, from ``Ensemble.two_point`` / ``four_point`` (the project's jackknife
errors). z uses both sides' own errors; z_pt uses the larger ensemble's error for both
sides and Student's t (``bench.compare.agreement`` explains why); |z_pt| > 5 is flagged.
"""
import argparse
import importlib
import json
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

import nnft_fast as nf
from nnft_fast.accumulators import MomentAccumulator, MomentLayout

from . import jax_baseline
from .baselines import BaselineStats, run_dense_baseline
from .compare import (FLOOR_ARRAY, SAMPLE_SEED, X_SEED, FloorMethod, Method, fmt_rate,
                      round_robin, unique_indices, machine_info,
                      projected_normals_per_network, r1_inputs)

Z_FLAG = 5.0


# --------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    key: str
    title: str
    widths: tuple
    X: np.ndarray
    cw: float
    cb: float
    orthogonal: bool          # run the orthogonal methods too
    check_layers: tuple       # layers of the agreement check
    activation: str = "relu"

    @property
    def n_inputs(self):
        return self.X.shape[0]

    def network(self, init):
        return nf.Network(self.widths, self.activation, init, cw=self.cw, cb=self.cb)

    def describe(self):
        w = self.widths
        hidden = ", ".join(f"{w[l]}" for l in range(1, len(w)))
        if len(w) > 6:
            hidden = f"{len(w) - 1} x {w[1]}" if len(set(w[1:])) == 1 else hidden
        return (f"{self.title}: n_0 = {w[0]}, layers {hidden}, B = {self.n_inputs}, "
                f"{self.activation}, C_W = {self.cw}, C_b = {self.cb}")


def configs():
    rng = np.random.default_rng(X_SEED)
    return [
        Config("R1", "R1 (docs/performance.md#r1)", (64,) + (512,) * 8, r1_inputs(), 2.0, 0.0, True,
               (1, 4, 8)),
        # Checked up to layer 16 only: with Gaussian weights E[z^4]/3K^2 grows like
        # (1 + 5/32)^(l-1) (docs/exact-results.md#deep-relu), ~10^4 at l = 64, so there the
        # four-point (and even K) estimates of 10^4 networks are dominated by rare networks and
        # their jackknife errors are not trustworthy (a quick run gave |z_pt| ~ 14 at l >= 32
        # for nnft_fast dense vs projected, |z| <= 2.3 with own errors).
        Config("narrow_deep", "narrow-deep", (32,) + (32,) * 64,
               rng.standard_normal((4, 32)), 2.0, 0.0, True, (1, 4, 8, 16)),
        Config("wide", "wide", (64,) + (2048,) * 4, rng.standard_normal((4, 64)), 2.0, 0.0,
               True, (1, 2, 4)),
        Config("nnft_1hl", "single-hidden-layer NNFT (ReLU-net, N = 1000)", (1, 1000, 1),
               np.linspace(-1.0, 1.0, 6)[:, None], 1.0, 1.0, False, (1, 2)),
    ]


def dense_chunk(widths, budget=1 << 21):
    """Networks per batch for the dense baselines: ~``budget`` weights in the largest layer."""
    return jax_baseline.default_chunk(widths, budget)


# --------------------------------------------------------------------------------------
# Methods (bench.compare.Method: calibrate / repeat / rates)
# --------------------------------------------------------------------------------------
class MatrixMethod(Method):
    """A method of one config; ``init`` is its weight law, ``ensemble()`` its statistics
    as an ``nf.Ensemble`` (None when it has no per-layer moments)."""

    kind = "baseline"
    n_start = 1

    def __init__(self, key, label, cfg, init):
        super().__init__(key, label)
        self.cfg = cfg
        self.init = init
        self.next_network = 0

    def ensemble(self):
        raise NotImplementedError


class NnftMethod(MatrixMethod):
    """``nf.sample(backend="cpu")`` with two- and four-point statistics."""

    kind = "nnft_fast"

    def __init__(self, cfg, init, method):
        super().__init__(f"nnft_{method}_{init}", f"nnft_fast {method} {init}", cfg, init)
        self.method = method
        self.network = cfg.network(init)
        self.n_start = 256 if method == "projected" else 2
        self._ens = None

    def _sample(self, n, seed, first):
        t0 = time.perf_counter()
        ens = nf.sample(self.network, self.cfg.X, n, seed=seed, method=self.method,
                        observables=("two_point", "four_point"), first_network=first,
                        backend="cpu")
        return time.perf_counter() - t0, ens

    def warmup(self):
        self.first_call_s, _ = self._sample(2, SAMPLE_SEED + 1, 0)

    def _timed(self, n, keep):
        if not keep:
            return self._sample(n, SAMPLE_SEED + 1, 0)[0]
        dt, ens = self._sample(n, SAMPLE_SEED, self.next_network)
        self.next_network += n
        self._ens = ens if self._ens is None else self._ens.merge(ens)
        return dt

    def ensemble(self):
        return self._ens


class NumpyMethod(MatrixMethod):
    """bench/baselines.py ``run_dense_baseline`` (default OpenBLAS threads)."""

    def __init__(self, cfg, init):
        super().__init__(f"numpy_dense_{init}", f"NumPy dense {init}", cfg, init)
        self.chunk = dense_chunk(cfg.widths)
        self.stats = None

    def _run(self, n, seed, stats, first):
        t0 = time.perf_counter()
        stats = run_dense_baseline(self.cfg.widths, self.cfg.X, n, seed, init=self.init,
                                   cw=self.cfg.cw, cb=self.cfg.cb, chunk=self.chunk,
                                   stats=stats, first=first)
        return time.perf_counter() - t0, stats

    def warmup(self):
        self.first_call_s, _ = self._run(1, [SAMPLE_SEED, 10 ** 6], None, 0)

    def _timed(self, n, keep):
        if not keep:
            return self._run(n, [SAMPLE_SEED, 10 ** 6 + 1], None, 0)[0]
        dt, self.stats = self._run(n, [SAMPLE_SEED, self.next_network], self.stats,
                                   self.next_network)
        self.next_network += n
        return dt

    def ensemble(self):
        if self.stats is None:
            return None
        return nf.Ensemble(self.cfg.network(self.init), self.cfg.X, SAMPLE_SEED, "numpy-dense",
                           np.float64, baseline_accumulator(self.stats),
                           ((0, self.next_network),))


def baseline_accumulator(stats: BaselineStats):
    """The NumPy baseline's full-tensor block sums as a compact ``MomentAccumulator``
    (block sums are linear, so picking the ``MomentLayout`` entries commutes with them)."""
    layout = MomentLayout(stats.n_inputs, stats.four_point)
    pairs, quads = layout.pairs, layout.quads
    a, b = (np.array(v) for v in zip(*pairs))
    parts = [stats.g[..., a, b]]
    if stats.four_point:
        q = tuple(np.array(v) for v in zip(*quads))
        t1, t2 = np.triu_indices(len(pairs))
        parts += [stats.q[(Ellipsis,) + q], stats.gg[..., a[t1], b[t1], a[t2], b[t2]]]
    acc = MomentAccumulator(stats.widths, stats.n_inputs, stats.four_point, stats.n_blocks)
    acc.block_sums = np.concatenate(parts, axis=-1)
    acc.block_counts = stats.counts.copy()
    return acc


class FrameworkMethod(MatrixMethod):
    """A dense baseline object with ``run(n, keep)``, ``chunk`` and ``as_ensemble()``
    (``TorchDenseEnsemble``, ``JaxDenseEnsemble``); n is rounded to whole chunks."""

    def __init__(self, key, label, cfg, init, make):
        super().__init__(key, label, cfg, init)
        self.runner = make(cfg.widths, cfg.X, init=init, cw=cfg.cw, cb=cfg.cb,
                           activation=cfg.activation, seed=SAMPLE_SEED)
        self.n_start = self.runner.chunk

    def _whole(self, n):
        c = self.runner.chunk
        return -(-n // c) * c

    def warmup(self):
        t0 = time.perf_counter()
        self.runner.run(1, keep=False)
        self.first_call_s = time.perf_counter() - t0

    def calibrate(self, target_s, n_start, n_min, n_max):
        self.n_per_repeat = self._whole(super().calibrate(target_s, n_start, n_min, n_max))
        return self.n_per_repeat

    def _timed(self, n, keep):
        t0 = time.perf_counter()
        self.runner.run(self._whole(n), keep=keep)
        dt = time.perf_counter() - t0
        self.next_network = self.runner.next_network
        return dt

    def ensemble(self):
        return self.runner.as_ensemble() if self.runner.next_network else None


class NeuralTangentsMethod(FrameworkMethod):
    """neural-tangents ``monte_carlo_kernel_fn``: output-layer NNGP and mean NTK only."""

    def __init__(self, cfg):
        super().__init__("neural_tangents_mc", "neural-tangents MC (NNGP + NTK, last layer)",
                         cfg, "gaussian", self._make)

    @staticmethod
    def _make(widths, X, *, init, cw, cb, activation, seed):
        return jax_baseline.NeuralTangentsMC(widths, X, cw=cw, cb=cb, activation=activation,
                                             seed=seed)

    def ensemble(self):
        return None


# --------------------------------------------------------------------------------------
# Which baselines are available
# --------------------------------------------------------------------------------------
def baseline_status():
    """{name: None if usable else the reason it is skipped}."""
    status = {}
    try:
        importlib.import_module("torch")
        status["torch"] = None
    except ImportError:
        status["torch"] = "skipped: torch not installed (pip install torch)"
    try:
        jax_baseline._jax()
        status["jax"] = None
    except ImportError:
        status["jax"] = "skipped: jax not installed (pip install jax)"
    if status["jax"] is None:
        reason = jax_baseline.neural_tangents_status()
        status["neural_tangents"] = None if reason is None else f"skipped: {reason}"
    else:
        status["neural_tangents"] = "skipped: jax not installed (pip install jax neural-tangents)"
    return status


def build_methods(cfg, status):
    inits = ("gaussian", "orthogonal") if cfg.orthogonal else ("gaussian",)
    methods = [NnftMethod(cfg, "gaussian", "projected"), NnftMethod(cfg, "gaussian", "dense")]
    if cfg.orthogonal:
        methods.append(NnftMethod(cfg, "orthogonal", "projected"))
    for init in inits:
        methods.append(NumpyMethod(cfg, init))
    if status["torch"] is None:
        from .torch_baseline import TorchDenseEnsemble
        for init in inits:
            methods.append(FrameworkMethod(f"torch_dense_{init}", f"PyTorch dense {init}", cfg,
                                           init, TorchDenseEnsemble))
    if status["jax"] is None:
        for init in inits:
            methods.append(FrameworkMethod(f"jax_dense_{init}", f"JAX dense {init}", cfg, init,
                                           jax_baseline.JaxDenseEnsemble))
    if status["neural_tangents"] is None and cfg.key in ("R1", "nnft_1hl"):
        methods.append(NeuralTangentsMethod(cfg))
    return methods


# --------------------------------------------------------------------------------------
# Agreement
# --------------------------------------------------------------------------------------
def layer_estimates(ens, layer):
    """{name: (value, error)} of K and the connected four-point functions at ``layer``."""
    out = {"K": ens.two_point(layer)}
    if ens.accumulator.neurons[layer - 1] > 1:
        out["C_distinct"] = ens.four_point(layer, neurons="distinct")
    out["C_same"] = ens.four_point(layer, neurons="same")
    return {k: (v.value, v.error) for k, v in out.items()}


def z_scores(va, ea, na, vb, eb, nb, dof, rel_floor=1e-9):
    """(z with own errors, z_pt with the larger ensemble's error for both, t-mapped)."""
    from scipy import stats as sps
    floor2 = (rel_floor * np.maximum(np.abs(va), np.abs(vb))) ** 2 + 1e-300
    z = (va - vb) / np.sqrt(ea ** 2 + eb ** 2 + floor2)
    e_big = ea if na >= nb else eb
    zp = (va - vb) / np.sqrt(e_big ** 2 * (1.0 + max(na, nb) / min(na, nb)) + floor2)
    zpt = np.sign(zp) * sps.norm.isf(np.clip(sps.t.sf(np.abs(zp), dof), 1e-300, 0.5))
    return z, zpt


def agreement(ref, ref_n, other, other_n, layers, n_inputs):
    """Max |z| and |z_pt| over the unique entries of K, C_distinct, C_same at ``layers``
    of two ensembles (``nf.Ensemble``)."""
    idx = dict(zip(("K", "C_distinct", "C_same"), unique_indices(n_inputs)))
    big = ref if ref_n >= other_n else other
    dof = int(np.count_nonzero(big.accumulator.block_counts)) - 1
    out = {}
    for layer in layers:
        ea, eb = layer_estimates(ref, layer), layer_estimates(other, layer)
        for name in ea:
            va, sa = (t[idx[name]] for t in ea[name])
            vb, sb = (t[idx[name]] for t in eb[name])
            z, zpt = z_scores(va, sa, ref_n, vb, sb, other_n, dof)
            r = out.setdefault(name, {"max_abs_z": 0.0, "max_abs_z_pt": 0.0, "n": 0})
            r["max_abs_z"] = max(r["max_abs_z"], float(np.nanmax(np.abs(z))))
            r["max_abs_z_pt"] = max(r["max_abs_z_pt"], float(np.nanmax(np.abs(zpt))))
            r["n"] += int(z.size)
    return out


def nt_agreement(nt, ref, ref_n, cfg, n_ntk):
    """neural-tangents' output-layer NNGP against nnft_fast's K, and its mean NTK against
    an nnft_fast NTK run (lambda_b = C_b, lambda_W = C_W); pooled errors as for z_pt."""
    L = len(cfg.widths) - 1
    k = ref.two_point(L)
    n_nt = nt.runner.next_network
    zk = (nt.runner.mean("nngp") - k.value) / (k.error * np.sqrt(1.0 + ref_n / n_nt) + 1e-300)
    ens = nf.sample(cfg.network("gaussian"), cfg.X, n_ntk, seed=SAMPLE_SEED + 5,
                    observables=("two_point", "ntk"), lambda_b=cfg.cb, lambda_w=cfg.cw,
                    backend="cpu")
    th = ens.ntk(L)
    zt = (nt.runner.mean("ntk") - th.value) / (th.error * np.sqrt(1.0 + n_ntk / n_nt) + 1e-300)
    return {"K": {"max_abs_z_pt": float(np.max(np.abs(zk))), "n": int(zk.size)},
            "NTK": {"max_abs_z_pt": float(np.max(np.abs(zt))), "n": int(zt.size)}}


# --------------------------------------------------------------------------------------
# One config
# --------------------------------------------------------------------------------------
def run_config(cfg, status, args, threads):
    target = 0.4 if args.quick else 2.0
    repeats = 3 if args.quick else 5
    print(f"## {cfg.key}: {cfg.describe()}")
    n_proj = projected_normals_per_network(cfg.widths, cfg.n_inputs, cfg.cb)
    print(f"normals per network: projected {n_proj:,}")
    methods = build_methods(cfg, status)
    floor = FloorMethod("rng_floor", "random-number floor", FLOOR_ARRAY)
    t0 = time.perf_counter()
    for m in methods + [floor]:
        m.warmup()
    print(f"warm-up (compile, first calls; untimed) {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{m.label} {m.first_call_s:.1f} s" for m in methods))
    for m in methods:
        m.calibrate(target, m.n_start, 1, 10 ** 7)
    floor.calibrate(target / 2, 16, 1, 10 ** 6)
    print("networks per repeat: " + ", ".join(f"{m.label} {m.n_per_repeat:,}" for m in methods))
    round_robin(methods + [floor], repeats, f"  {cfg.key}")
    floor_rate = floor.rate * threads / n_proj

    # agreement against nnft_fast projected of the same law
    refs = {m.init: m for m in methods if isinstance(m, NnftMethod) and m.method == "projected"}
    rows = []
    for m in methods:
        ref = refs[m.init]
        res = None
        if isinstance(m, NeuralTangentsMethod):
            res = nt_agreement(m, ref.ensemble(), ref.next_network, cfg,
                               2000 if args.quick else 20000)
        elif m is not ref and m.ensemble() is not None:
            res = agreement(ref.ensemble(), ref.next_network, m.ensemble(), m.next_network,
                            cfg.check_layers, cfg.n_inputs)
        rows.append((m, res))
    return {"cfg": cfg, "methods": methods, "floor": floor, "floor_rate": floor_rate,
            "n_proj": n_proj, "rows": rows, "repeats": repeats}


def _same_init_rates(methods, init, kind):
    return {m.key: m.rate for m in methods if m.init == init and m.kind == kind
            and not isinstance(m, NeuralTangentsMethod)}


def print_config(result, threads):
    cfg, methods, rows = result["cfg"], result["methods"], result["rows"]
    print()
    print(f"| {cfg.key}: method | networks (all repeats) | networks/s (best) | "
          "vs NumPy dense, same law | vs best other baseline, same law | "
          f"max abs z | max abs z_pt | agreement (abs z_pt < {Z_FLAG:g}) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    numpy_rate = {m.init: m.rate for m in methods if isinstance(m, NumpyMethod)}
    verdicts = []
    for m, res in rows:
        base = _same_init_rates(methods, m.init, "baseline")
        others = {k: v for k, v in base.items() if k != m.key}
        best = max(others.values()) if others else float("nan")
        if res is None:
            zs, zp, verdict = "-", "-", "reference" if m.kind == "nnft_fast" else "-"
        else:
            zmax = max(r.get("max_abs_z", float("nan")) for r in res.values())
            zpmax = max(r["max_abs_z_pt"] for r in res.values())
            ok = zpmax < Z_FLAG
            verdicts.append(ok)
            zs = f"{zmax:.2f}" if np.isfinite(zmax) else "-"
            zp = f"{zpmax:.2f}"
            verdict = "ok" if ok else "DISAGREE"
            if isinstance(m, NeuralTangentsMethod):
                verdict += " (last-layer K and mean NTK only)"
        print(f"| {m.label} | {sum(m.counts):,} | {fmt_rate(m.rate)} ({fmt_rate(m.best)}) | "
              f"{m.rate / numpy_rate[m.init]:,.2f}x | {m.rate / best:,.2f}x | {zs} | {zp} | "
              f"{verdict} |")
    floor = result["floor"]
    print(f"| random-number floor: {floor.rate / 1e6:.0f} M normals/s/thread x {threads} "
          f"threads / {result['n_proj']:,} normals | - | {fmt_rate(result['floor_rate'])} | "
          f"{result['floor_rate'] / numpy_rate['gaussian']:,.2f}x | - | - | - | - |")
    print()
    checked = ", ".join(f"{l}" for l in cfg.check_layers)
    print(f"(agreement at layers {checked}: unique entries of K, C_distinct (where the layer "
          "has > 1 neuron) and C_same vs nnft_fast projected of the same law)")
    return all(verdicts)


def summary_table(results, status):
    keys = []
    for r in results:
        for m in r["methods"]:
            if m.key not in keys:
                keys.append(m.key)
    labels = {m.key: m.label for r in results for m in r["methods"]}
    print("## summary: networks/s (median), ratio vs NumPy dense of the same law in brackets")
    print()
    print("| method | " + " | ".join(r["cfg"].key for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    for key in keys:
        cells = []
        for r in results:
            by = {m.key: m for m in r["methods"]}
            numpy_rate = {m.init: m.rate for m in r["methods"] if isinstance(m, NumpyMethod)}
            m = by.get(key)
            cells.append("-" if m is None else
                         f"{fmt_rate(m.rate)} ({m.rate / numpy_rate[m.init]:,.1f}x)")
        print(f"| {labels[key]} | " + " | ".join(cells) + " |")
    cells = []
    for r in results:
        numpy_g = next(m.rate for m in r["methods"] if m.key == "numpy_dense_gaussian")
        cells.append(f"{fmt_rate(r['floor_rate'])} ({r['floor_rate'] / numpy_g:,.0f}x)")
    print("| random-number floor (projected normals) | " + " | ".join(cells) + " |")
    for name, reason in status.items():
        if reason is not None:
            print(f"\n{name}: {reason}")


def to_json(results, info, status, args, elapsed):
    out = {"machine": info, "baselines": status, "quick": args.quick, "wall_time_s": elapsed,
           "configs": {}}
    for r in results:
        cfg = r["cfg"]
        out["configs"][cfg.key] = {
            "widths": list(cfg.widths), "inputs": cfg.X.tolist(), "cw": cfg.cw, "cb": cfg.cb,
            "activation": cfg.activation, "check_layers": list(cfg.check_layers),
            "normals_per_network_projected": r["n_proj"],
            "rng_floor": {"normals_per_s_per_thread": r["floor"].rate,
                          "networks_per_s": r["floor_rate"]},
            "methods": {m.key: {"label": m.label, "init": m.init, "kind": m.kind,
                                "counts": m.counts, "times_s": m.times,
                                "median_rate": m.rate, "best_rate": m.best,
                                "first_call_s": m.first_call_s, "agreement": res}
                        for m, res in r["rows"]},
        }
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.matrix", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short run (~2-3 min)")
    ap.add_argument("--json", metavar="PATH", help="write all results as JSON")
    ap.add_argument("--only", metavar="KEYS", help="comma-separated config keys")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    info = machine_info()
    status = baseline_status()
    versions = jax_baseline.versions()
    if status["torch"] is None:
        from .torch_baseline import versions as torch_versions
        versions.update(torch_versions())
    info.update(versions)
    threads = info["numba_threads"]
    print(f"# nnft_fast benchmark matrix{' (--quick)' if args.quick else ''}")
    print()
    print(f"machine: {info['cpu_model']}; {info['cpu_count']} cores ({info['cpus_usable']} "
          f"usable); load average {' '.join(f'{v:.2f}' for v in info['load_average_at_start'])}")
    print(f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']} "
          f"({threads} threads), nnft_fast {info['nnft_fast']}, "
          + ", ".join(f"{k} {v}" for k, v in versions.items())
          + f"; NumPy BLAS threads {info['numpy_blas_threads_default']}")
    for name, reason in status.items():
        print(f"{name}: {'available' if reason is None else reason}")
    print()
    chosen = configs()
    if args.only:
        keys = args.only.split(",")
        chosen = [c for c in chosen if c.key in keys]
    results, all_ok = [], True
    for cfg in chosen:
        r = run_config(cfg, status, args, threads)
        all_ok &= print_config(r, threads)
        results.append(r)
        print(f"(load average now {os.getloadavg()[0]:.2f}; "
              f"{time.perf_counter() - t_start:.0f} s so far)")
        print()
    summary_table(results, status)
    elapsed = time.perf_counter() - t_start
    print()
    print("agreement: " + ("all methods consistent" if all_ok
                           else "SOME METHODS DISAGREE - see the tables"))
    print(f"total wall time {elapsed:.0f} s; load average at end "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(to_json(results, info, status, args, elapsed), f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
