"""Cos-net fields: nnft_fast ``nf.sample`` against a vectorised NumPy ensemble and the
cosine floor, all measured in one run, plus peak memory against the ensemble size.

    python -m bench.fields                 # F1 and F2, ~4 min on 2 cores
    python -m bench.fields --quick         # ~1.5 min
    python -m bench.fields --scaling       # also networks/s against B = 2 ... 1024 (+1.5 min)
    python -m bench.fields --scaling-only  # the B series alone
    python -m bench.fields --smoke         # tiny configs: checks the wiring (~20 s)

Configs (bench.configs.FIELDS): d = 3, N = 1000, m = 1, Lambda = 10, alpha = 0, Gaussian
amplitudes, points uniform in a box of side 4/m; F1: B = 256, two-point statistics only;
F2: B = 16, two- and four-point.

Methods per config, each warmed up (compiled) outside the timing, sized to ~``target``
seconds per repeat, repeats interleaved round-robin, medians (bench.harness):

- nnft_fast: the whole ``nf.sample(backend="cpu")`` call (draw, field, statistics, block
  sums), all Numba threads, and threads=1;
- NumPy (bench/numpy_fields.py): the same law drawn with ``np.random.Generator``, one big
  ``np.cos`` per chunk of networks, the same per-network statistics summed by matrix
  products; default OpenBLAS threads (its chunk size picked by a pilot) and 1 thread;
- the floor, N B cosines per network: (a) the project's own cosine,
  ``kernels.cpu.rng.cos_turns`` (the turns reduced as in ``evaluate_field``), in a
  small @njit loop over FLOOR_ARRAY doubles, one thread; networks/s at the floor = its
  cosines/s x Numba threads / (N B); (b) ``np.cos`` on the same number of doubles, one
  thread (NumPy's cosine is single-threaded): NumPy's own floor.

Before any timing the baseline is checked against nnft_fast: the NumPy field of the
parameters ``FieldCpuEngine.features`` gives equals ``FieldCpuEngine.fields`` to 1e-12 and
its statistics of those fields equal nnft_fast's per-network statistics (relative 1e-12);
the NumPy Newton inverse solves F(k) = u F(Lambda) to rounding; |w| and the amplitudes
follow the same laws (two-sample Kolmogorov-Smirnov); the two-point function (and for F2
the same-output connected four-point function) of independent NumPy and nnft_fast
ensembles agree (bench.agreement's z_pt, flagged above Z_FLAG).

Ratios (targets): nnft_fast (all threads) / NumPy (default threads) >= 10; nnft_fast /
the floor >= 0.5 (within 2x of the floor). Memory: peak RSS of a fresh interpreter running
``nf.sample`` of n and of 4n networks (bench.scaling's method: the peak is reset after the
warm-up via /proc/self/clear_refs and read from VmHWM); flat if the ratio is within 10%.

B series (``--scaling``): F1's field, two-point only, B = 2, 4, ..., 1024, nnft_fast all
threads. A network costs c_0 + c_cos N B + c_pair B (B + 1) / 2 (its draw, its cosines,
its pair products): networks/s falls as 1/B (log-log slope -1, fitted for B >= 16) as
long as the pair products stay cheaper than the cosines (B << 2 N c_cos / c_pair); the
least-squares fit of that model is printed with the crossover B.

Output: printed, and written to bench/fields.txt and bench/fields.json (``--txt``,
``--json``; bench/fields_scaling.* with ``--scaling-only``; with ``--smoke`` only when
given).
"""

import math
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

from nnft_fast.accumulators import MomentLayout
from nnft_fast.field_accumulator import FieldAccumulator
from nnft_fast.field_ensemble import FieldEnsemble
from nnft_fast.field_run import FieldRun
from nnft_fast.kernels.cpu.config import FASTMATH
from nnft_fast.kernels.cpu import rng
from nnft_fast.threads import thread_limit
from nnft_fast.tuples import TupleLayout

from . import agreement
from . import numpy_fields as npf
from .configs import F1, FIELDS, SAMPLE_SEED, TINY_F1, TINY_F2
from .harness import (
    Method,
    finish,
    fmt_rate,
    parser,
    printed,
    round_robin,
    run_python,
    timed,
    write_json,
)
from .machine import load_average, machine_info, print_machine
from .methods import NnftMethod
from .scaling import SLOPE_TOL, log_slope, verdict

HERE = Path(__file__).resolve().parent
FLOOR_ARRAY = 1 << 16  # doubles per floor call (512 KiB in, 512 KiB out: cache-resident)
FLOOR_TURNS = 6.0  # floor arguments uniform in (-6, 6) turns, the phases' range here
EXACT_TOL = 1e-12
KS_P_MIN = 1e-3
Z_FLAG = 5.0
TARGET_VS_NUMPY = 10.0
TARGET_FLOOR_FRACTION = 0.5
MEMORY_FLAT_TOL = 0.10
SCALING_B = [2**k for k in range(1, 11)]
SCALING_FIT_FROM = 16
CHUNK_BUDGETS = (1 << 18, 1 << 20, 1 << 22)  # NumPy pilot: phase buffers of 2, 8, 32 MiB


def law_of(cfg):
    net = cfg.network()
    return npf.CosNetLaw(
        net.dim, net.width, net.mass, net.cutoff, net.alpha, net.amplitude, net.n_out
    )


def field_run(cfg, seed=SAMPLE_SEED):
    return FieldRun(cfg.network(), cfg.inputs(), seed, observables=cfg.observables, backend="cpu")


# --------------------------------------------------------------------------------------
# Timed workloads
# --------------------------------------------------------------------------------------
class NnftFieldMethod(NnftMethod):
    """``nf.sample(backend="cpu")`` of a field config on ``threads`` Numba threads (None:
    all); the call, ``work`` and ``ensemble`` of ``bench.methods.NnftMethod``."""

    def __init__(self, cfg, threads=None, *, key=None, label=None, keep_ensemble=False):
        suffix = "all threads" if threads is None else f"{threads} thread"
        Method.__init__(self, key or f"nnft_t{threads or 'all'}", label or f"nnft_fast ({suffix})")
        self.cfg, self.threads, self.keep_ensemble = cfg, threads, keep_ensemble
        self.network, self.x = cfg.network(), cfg.inputs()
        self.method, self.observables, self.per_call = "field", cfg.observables, None
        self._parts = []

    def _sample(self, n, seed, first):
        with thread_limit(self.threads):  # what nf.sample(threads=...) does
            return super()._sample(n, seed, first)


class NumpyFieldMethod(Method):
    """bench/numpy_fields.py's ensemble with OpenBLAS on ``blas`` threads (None: default)."""

    kind = "baseline"
    warmup_n = 1

    def __init__(self, cfg, blas=None, chunk=None):
        suffix = "default BLAS threads" if blas is None else f"{blas} BLAS thread"
        super().__init__(f"numpy_t{blas or 'default'}", f"NumPy ({suffix})", blas=blas)
        self.cfg = cfg
        self.runner = npf.NumpyFieldEnsemble(
            law_of(cfg), cfg.inputs(), four_point="four_point" in cfg.observables, chunk=chunk
        )

    def work(self, n, keep):
        self.runner.run(n, keep)
        self.next_network = self.runner.next_network


@njit(fastmath=FASTMATH, error_model="numpy")
def cos_turns(turns, out):
    """out[i] = cos(2 pi turns[i]) by the package's cosine (``rng.cos_turns``, as in
    ``kernels.cpu.field.evaluate_field``)."""
    for i in range(turns.size):
        out[i] = rng.cos_turns(turns[i])


def np_cos_radians(radians, out):
    np.cos(radians, out=out)


class CosFloorMethod(Method):
    """One thread of ``fn(args, out)`` on FLOOR_ARRAY doubles; units = calls, rates =
    cosines/s."""

    unit = "cosines"
    kind = "floor"

    def __init__(self, key, label, fn, args):
        super().__init__(key, label, per_unit=args.size)
        self.fn, self.args, self.out = fn, args, np.empty_like(args)

    def warmup(self):
        self.first_call_s = timed(self.fn, self.args[:16], self.out[:16])[0]

    def work(self, n_calls, keep):
        for _ in range(n_calls):
            self.fn(self.args, self.out)

    def networks_per_s(self, cfg, threads=1):
        """The floor in networks/s: cosines/s (one thread) x threads / (N B)."""
        return self.rate * threads / cfg.cosines_per_network


def floor_methods():
    turns = np.random.default_rng(SAMPLE_SEED).uniform(-FLOOR_TURNS, FLOOR_TURNS, FLOOR_ARRAY)
    return (
        CosFloorMethod("floor_cos_sin_turn", "cos_turns kernel (1 thread)", cos_turns, turns),
        CosFloorMethod("floor_np_cos", "np.cos (1 thread)", np_cos_radians, 2.0 * math.pi * turns),
    )


# --------------------------------------------------------------------------------------
# Checks before timing
# --------------------------------------------------------------------------------------
def baseline_ensemble(cfg, stats):
    """The NumPy block sums as an nnft_fast ``FieldEnsemble`` (the project's estimators
    and jackknife): block sums are linear, so picking the compact entries commutes."""
    net, nb = cfg.network(), cfg.n_points
    layout = MomentLayout(nb, stats.four_point)
    pair_a, pair_b, quad_p1, quad_p2 = layout.kernel_tables()
    parts = [stats.g[:, pair_a, pair_b]]
    if stats.four_point:
        t1, t2 = np.triu_indices(layout.n_pairs)
        parts += [stats.q[:, quad_p1, quad_p2], stats.gg[:, t1, t2]]
    tuples = TupleLayout.build(None, None, nb)
    acc = FieldAccumulator(net.widths, nb, stats.four_point, tuples, stats.n_blocks)
    acc.block_sums = np.concatenate(parts, axis=-1)[:, None, :]
    acc.block_counts = stats.counts.copy()
    return FieldEnsemble(
        net, cfg.inputs(), SAMPLE_SEED, "numpy-field", np.float64, acc, ((0, stats.n_networks),)
    )


def exact_check(cfg, n_fields=8, n_law=64):
    """The NumPy field and statistics of nnft_fast's own parameters, the Newton inverse's
    residual and KS tests of |w| and of the amplitudes against NumPy draws."""
    from scipy import stats as sps

    run = field_run(cfg)
    engine, x = run.engine, cfg.inputs()
    omega, beta, amp = engine.features(0, n_fields)
    phi_nnft = engine.fields(0, n_fields)
    phi_np = npf.fields_from_turns(x, omega, beta, amp)
    field_err = float(np.max(np.abs(phi_np - phi_nnft)))
    stats_nnft = engine.compute(0, n_fields)[0][:, 0, : run.layout.n_stat].sum(axis=0)
    own = npf.FieldStats(cfg.n_points, run.layout.four_point, n_blocks=2)
    own.add(phi_np)
    stats_np = baseline_ensemble(cfg, own).accumulator.block_sums[:, 0].sum(axis=0)
    stats_err = float(np.max(np.abs(stats_np - stats_nnft)) / np.max(np.abs(stats_nnft)))

    law = law_of(cfg)
    u = np.random.default_rng(SAMPLE_SEED).random(4096)
    k = npf.radial_inverse(u * law.total, law.mass)
    residual = law.mass * npf.x_minus_atan(k / law.mass) - u * law.total
    newton = float(np.max(np.abs(residual) / np.maximum(u * law.total, 1e-300)))
    omega, _, amp = engine.features(0, n_law)
    w, _, a = law.draw(np.random.default_rng([SAMPLE_SEED, 123]), n_law)
    ks_radius = sps.ks_2samp(
        2.0 * math.pi * np.linalg.norm(omega, axis=1).ravel(), np.linalg.norm(w, axis=2).ravel()
    ).pvalue
    ks_amp = sps.ks_2samp(amp.ravel(), a.ravel()).pvalue
    return {
        "n_fields": n_fields,
        "max_abs_field_diff": field_err,
        "max_abs_field": float(np.max(np.abs(phi_nnft))),
        "stats_rel_diff": stats_err,
        "newton_max_rel_residual": newton,
        "ks_p_radius": float(ks_radius),
        "ks_p_amplitude": float(ks_amp),
        "n_law_networks": n_law,
        "ok": bool(
            field_err <= EXACT_TOL
            and stats_err <= EXACT_TOL
            and newton <= 1e-14
            and min(ks_radius, ks_amp) >= KS_P_MIN
        ),
    }


def z_scores(a, b, name, va, sa, vb, sb):
    na, nb = a.n_networks, b.n_networks
    big = a if na >= nb else b
    dof = int(np.count_nonzero(big.accumulator.block_counts)) - 1
    z = agreement.z_own(va, sa, vb, sb)
    zpt = agreement.z_pooled(va, sa, na, vb, sb, nb, dof)
    return {
        "n": int(z.size),
        "max_abs_z": float(np.nanmax(np.abs(z))),
        "max_abs_z_pt": float(np.nanmax(np.abs(zpt))),
        "rms_z_pt": float(np.sqrt(np.nanmean(zpt**2))),
        "frac_abs_z_pt_gt_3": float(np.mean(np.abs(zpt) > 3)),
    }


def statistical_check(cfg, n_networks):
    """Two-point (and four-point) estimates of independent NumPy and nnft_fast ensembles of
    ``n_networks`` each (the NumPy one in 4 x 64 chunks or more, filling every block)."""
    nnft = NnftFieldMethod(cfg, keep_ensemble=True)
    nnft.work(n_networks, keep=True)
    chunk = max(1, n_networks // 256)
    runner = npf.NumpyFieldEnsemble(
        law_of(cfg), cfg.inputs(), four_point="four_point" in cfg.observables, chunk=chunk
    )
    runner.run(n_networks)
    a, b = nnft.ensemble, baseline_ensemble(cfg, runner.stats)
    iu = np.triu_indices(cfg.n_points)
    ka, kb = a.two_point(), b.two_point()
    out = {"K": z_scores(a, b, "K", ka.value[iu], ka.error[iu], kb.value[iu], kb.error[iu])}
    if "four_point" in cfg.observables:
        idx = tuple(np.array(MomentLayout(cfg.n_points, True).quads).T)
        ca, cb = a.four_point(neurons="same"), b.four_point(neurons="same")
        out["C_same"] = z_scores(
            a, b, "C_same", ca.value[idx], ca.error[idx], cb.value[idx], cb.error[idx]
        )
    k0 = float(np.mean(np.diag(ka.value)))
    return {"n_networks": n_networks, "G(x, x) mean": k0, "quantities": out}


def print_checks(cfg, exact, stat):
    print(
        f"check (exact, {exact['n_fields']} networks of nnft_fast's parameters): max |phi_numpy"
        f" - phi_nnft| = {exact['max_abs_field_diff']:.1e} (max |phi| "
        f"{exact['max_abs_field']:.2f}; tolerance {EXACT_TOL:g}); statistics relative "
        f"difference {exact['stats_rel_diff']:.1e}; Newton residual "
        f"{exact['newton_max_rel_residual']:.1e}; KS p-values |w| {exact['ks_p_radius']:.3f}, "
        f"amplitudes {exact['ks_p_amplitude']:.3f} ({exact['n_law_networks']} networks) -> "
        + ("ok" if exact["ok"] else "FAILED")
    )
    for name, r in stat["quantities"].items():
        ok = r["max_abs_z_pt"] < Z_FLAG
        print(
            f"check (statistical, {stat['n_networks']:,} networks each): {name} on {r['n']:,} "
            f"entries: max |z| {r['max_abs_z']:.2f}, max |z_pt| {r['max_abs_z_pt']:.2f}, rms "
            f"z_pt {r['rms_z_pt']:.2f}, |z_pt| > 3 on {100 * r['frac_abs_z_pt_gt_3']:.2f}% -> "
            + ("ok" if ok else f"DISAGREE (|z_pt| >= {Z_FLAG:g})")
        )
    return exact["ok"] and all(r["max_abs_z_pt"] < Z_FLAG for r in stat["quantities"].values())


# --------------------------------------------------------------------------------------
# One config
# --------------------------------------------------------------------------------------
def numpy_chunk(cfg, target_s, smoke):
    """The NumPy chunk size (a pilot over CHUNK_BUDGETS, default threads): the fastest."""
    if smoke:
        return npf.default_chunk(cfg.width, cfg.n_points), {}
    tried = {}
    for budget in CHUNK_BUDGETS:
        chunk = npf.default_chunk(cfg.width, cfg.n_points, budget)
        if chunk in tried:
            continue
        m = NumpyFieldMethod(cfg, chunk=chunk)
        m.warmup()
        n = m.calibrate(target_s / 4, chunk, chunk, 10**6)
        tried[chunk] = n / m.pilot(n)
    return max(tried, key=tried.get), tried


def run_config(cfg, target, repeats, n_check, smoke):
    print(f"## {cfg.key}: {cfg.describe()}")
    print(f"cosines per network: N B = {cfg.cosines_per_network:,}")
    t0 = time.perf_counter()
    exact = exact_check(cfg)
    stat = statistical_check(cfg, n_check)
    ok = print_checks(cfg, exact, stat)
    print(f"(checks {time.perf_counter() - t0:.1f} s)")
    chunk, pilot = numpy_chunk(cfg, target, smoke)
    if pilot:
        print(
            "NumPy chunk pilot (networks/s): "
            + ", ".join(f"{c} networks {fmt_rate(r)}" for c, r in pilot.items())
            + f" -> {chunk}"
        )
    methods = [
        NnftFieldMethod(cfg),
        NnftFieldMethod(cfg, threads=1),
        NumpyFieldMethod(cfg, chunk=chunk),
        NumpyFieldMethod(cfg, blas=1, chunk=chunk),
    ]
    floors = floor_methods()
    for m in methods + list(floors):
        m.warmup()
    for m in methods:
        m.calibrate(target, 2, 1, 10**7)
    for f in floors:
        f.calibrate(target / 2, 4, 1, 10**6)
    print("per repeat: " + ", ".join(f"{m.label} {m.n_per_repeat:,}" for m in methods))
    round_robin(methods + list(floors), repeats, f"  {cfg.key}")
    return {
        "cfg": cfg,
        "checks_ok": ok,
        "exact": exact,
        "statistical": stat,
        "pilot": pilot,
        "chunk": chunk,
        "methods": methods,
        "floors": floors,
    }


def ratios(result, threads):
    m = {x.key: x for x in result["methods"]}
    kernel, npcos = result["floors"]
    cfg = result["cfg"]
    floor_all = kernel.networks_per_s(cfg, threads)
    floor_one = kernel.networks_per_s(cfg, 1)
    best = max(("numpy_tdefault", "numpy_t1"), key=lambda k: m[k].rate)
    return {
        "numpy_best": best,
        "numpy_best_networks_per_s": m[best].rate,
        "nnft_vs_numpy": m["nnft_tall"].rate / m[best].rate,
        "nnft_vs_numpy_1_thread": m["nnft_t1"].rate / m["numpy_t1"].rate,
        "floor_networks_per_s": floor_all,
        "floor_networks_per_s_1_thread": floor_one,
        "np_cos_floor_networks_per_s": npcos.networks_per_s(cfg),
        "nnft_floor_fraction": m["nnft_tall"].rate / floor_all,
        "nnft_floor_fraction_1_thread": m["nnft_t1"].rate / floor_one,
        "numpy_np_cos_floor_fraction": m[best].rate / npcos.networks_per_s(cfg),
        "thread_speedup": m["nnft_tall"].rate / m["nnft_t1"].rate,
    }


def print_config(result, threads):
    cfg = result["cfg"]
    r = ratios(result, threads)
    numpy = {m.key: m for m in result["methods"]}
    print(
        f"\n| {cfg.key}: method | networks (all repeats) | networks/s (best) | ns per cosine "
        "per thread | vs NumPy (all threads: the faster NumPy; 1 thread: NumPy on 1) | "
        "fraction of the cos_sin_turn floor |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for m in result["methods"]:
        nthreads = threads if m.key == "nnft_tall" else 1
        if m.kind == "baseline":
            ref, floor, nthreads = m, r["np_cos_floor_networks_per_s"], 1
        else:
            ref = numpy[r["numpy_best"] if m.key == "nnft_tall" else "numpy_t1"]
            floor = r[
                "floor_networks_per_s" if m.key == "nnft_tall" else "floor_networks_per_s_1_thread"
            ]
        ns = 1e9 * nthreads / (m.rate * cfg.cosines_per_network)
        frac = f"{m.rate / floor:.3f}" + (" (of np.cos)" if m.kind == "baseline" else "")
        vs = "-" if m is ref else f"{m.rate / ref.rate:,.2f}x"
        print(
            f"| {m.label} | {sum(m.counts):,} | {fmt_rate(m.rate)} ({fmt_rate(m.best)}) | "
            f"{ns:.2f} | {vs} | {frac} |"
        )
    for f in result["floors"]:
        nets = f.networks_per_s(cfg, threads if f.key == "floor_cos_sin_turn" else 1)
        what = f"x {threads} threads" if f.key == "floor_cos_sin_turn" else "1 thread"
        print(
            f"| floor: {f.label}, {f.rate / 1e6:,.0f} M cos/s ({what}) / N B | - | "
            f"{fmt_rate(nets)} | {1e9 / f.rate:.2f} | - | 1 |"
        )
    v1 = r["nnft_vs_numpy"] >= TARGET_VS_NUMPY
    v2 = r["nnft_floor_fraction"] >= TARGET_FLOOR_FRACTION
    print(
        f"\n{cfg.key} ratios: nnft_fast / NumPy = {r['nnft_vs_numpy']:.2f}x (the faster NumPy"
        f" setting, {numpy[r['numpy_best']].label}; target >= "
        f"{TARGET_VS_NUMPY:g}x: {'met' if v1 else 'NOT MET'}; one thread each "
        f"{r['nnft_vs_numpy_1_thread']:.2f}x); nnft_fast / floor = "
        f"{r['nnft_floor_fraction']:.3f} (target >= {TARGET_FLOOR_FRACTION:g}: "
        f"{'met' if v2 else 'NOT MET'}; one thread {r['nnft_floor_fraction_1_thread']:.3f}); "
        f"threads speed-up {r['thread_speedup']:.2f}x; NumPy at "
        f"{r['numpy_np_cos_floor_fraction']:.2f} of its np.cos floor"
    )
    return r


def config_json(result, threads, memory):
    cfg = result["cfg"]
    return {
        "config": {
            k: getattr(cfg, k)
            for k in (
                "dim",
                "width",
                "n_points",
                "observables",
                "mass",
                "cutoff",
                "alpha",
                "amplitude",
                "box",
            )
        },
        "cosines_per_network": cfg.cosines_per_network,
        "checks": {
            "ok": result["checks_ok"],
            "exact": result["exact"],
            "statistical": result["statistical"],
        },
        "numpy_chunk": result["chunk"],
        "numpy_chunk_pilot": {str(k): v for k, v in result["pilot"].items()},
        "methods": {m.key: m.to_json() for m in result["methods"]},
        "floors": {f.key: {**f.to_json(), "floor_array": FLOOR_ARRAY} for f in result["floors"]},
        "ratios": ratios(result, threads),
        "memory": memory,
    }


# --------------------------------------------------------------------------------------
# Peak memory of n and 4n networks (fresh interpreter each)
# --------------------------------------------------------------------------------------
_MEMORY_CHILD = r"""
import gc, json, sys, time, tracemalloc
import nnft_fast as nf
from bench import configs

def vm_kib(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))

cfg, n = getattr(configs, sys.argv[1]), int(sys.argv[2])
net, x, kw = cfg.network(), cfg.inputs(), dict(observables=cfg.observables, backend="cpu")
nf.sample(net, x, 4, seed=1, **kw)  # compile / cache load, threads
gc.collect()
before = vm_kib("VmRSS")
try:  # Linux >= 4.0: writing 5 resets the peak (VmHWM)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
tracemalloc.start()
t0 = time.perf_counter()
ens = nf.sample(net, x, n, seed=2, **kw)
seconds = time.perf_counter() - t0
traced = tracemalloc.get_traced_memory()[1]
assert ens.n_networks == n
print(json.dumps({"n": n, "rss_before_kib": before, "peak_kib": vm_kib("VmHWM"),
                  "peak_is_run_only": reset, "tracemalloc_peak_bytes": traced,
                  "seconds": seconds}))
"""


def run_memory(name, n):
    rows = [run_python(_MEMORY_CHILD, name, size) for size in (n, 4 * n)]
    ratio = rows[1]["peak_kib"] / rows[0]["peak_kib"]
    return {"points": rows, "peak_ratio_4n_n": ratio, "flat": abs(ratio - 1.0) <= MEMORY_FLAT_TOL}


def print_memory(cfg, mem):
    def mib(kib):
        return f"{kib / 1024:.1f} MiB"

    a, b = mem["points"]
    runs = "; ".join(
        f"{p['n']:,} networks: peak RSS {mib(p['peak_kib'])} "
        f"(+{mib(p['peak_kib'] - p['rss_before_kib'])} over the RSS before), tracemalloc peak "
        f"{p['tracemalloc_peak_bytes'] / 2**20:.2f} MiB, {p['seconds']:.1f} s"
        for p in (a, b)
    )
    print(
        f"{cfg.key} memory (nf.sample in a fresh interpreter each): {runs}; ratio 4n / n = "
        f"{mem['peak_ratio_4n_n']:.3f} -> {'flat' if mem['flat'] else 'NOT FLAT'} "
        f"(tolerance {100 * MEMORY_FLAT_TOL:.0f}%)"
        + ("" if a["peak_is_run_only"] else "; WARNING: peak not reset (clear_refs not writable)")
    )


# --------------------------------------------------------------------------------------
# networks/s against B
# --------------------------------------------------------------------------------------
def run_scaling(base, values, target, repeats, threads):
    points = [NnftFieldMethod(base.resized(b), key=f"B={b}", label=f"B={b}") for b in values]
    kernel = floor_methods()[0]
    for p in points + [kernel]:
        p.warmup()
    for p in points:
        p.calibrate(target, 2, 1, 10**7)
    kernel.calibrate(target / 2, 4, 1, 10**6)
    round_robin(points + [kernel], repeats, "B series")
    rates = [p.rate for p in points]
    fit_values = [b for b in values if b >= SCALING_FIT_FROM] or values
    sel = [r for b, r in zip(values, rates) if b in fit_values]
    # per-network seconds t(B) = c0 + c_cos N B + c_pair B (B + 1) / 2, relative residuals
    n = base.width
    design = np.array([[1.0, n * b, b * (b + 1) / 2] for b in values]) * np.array(rates)[:, None]
    coef = np.linalg.lstsq(design, np.ones(len(values)), rcond=None)[0]
    c_pair = coef[2]
    crossover = 2 * n * coef[1] / c_pair if c_pair > 0 else math.inf
    return {
        "values": values,
        "points": points,
        "rates": rates,
        "fit_values": fit_values,
        "slope": log_slope(fit_values, sel) if len(sel) >= 2 else float("nan"),
        "expected_slope": -1.0,
        "model_s": {"c0": coef[0], "c_cos": coef[1], "c_pair": c_pair},
        "crossover_B": crossover,
        "floor_cos_per_s": kernel.rate,
        "threads": threads,
        "base": base,
    }


def print_scaling(s):
    base, n, threads = s["base"], s["base"].width, s["threads"]
    print(
        f"### networks/s against B ({base.key}'s field, N = {n}, d = {base.dim}, two-point "
        f"only, nnft_fast all threads; load avg {load_average()})\n"
    )
    print(
        "| B | networks/s (median) | best | rate x B / first | ns per cosine per thread | "
        "fraction of the floor | per repeat |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    first = s["rates"][0] * s["values"][0]
    for b, p in zip(s["values"], s["points"]):
        ns = 1e9 * threads / (p.rate * n * b)
        floor = s["floor_cos_per_s"] * threads / (n * b)
        print(
            f"| {b:,} | {fmt_rate(p.rate)} | {fmt_rate(p.best)} | {p.rate * b / first:.2f} | "
            f"{ns:.2f} | {p.rate / floor:.3f} | {p.n_per_repeat:,} |"
        )
    local = [
        log_slope(s["values"][i : i + 2], s["rates"][i : i + 2])
        for i in range(len(s["values"]) - 1)
    ]
    fit = s["fit_values"]
    c = s["model_s"]
    print(
        f"\nlog-log slope of networks/s vs B over B = {fit[0]:,}..{fit[-1]:,}: "
        f"{s['slope']:+.2f}, expected -1 (cost per network c0 + c_cos N B + c_pair B(B+1)/2: "
        f"N B cosines dominate while B << 2 N c_cos / c_pair) -> "
        f"{verdict(s['slope'], s['expected_slope'])}"
    )
    print(
        "local slopes: "
        + ", ".join(
            f"{a:,}->{b:,}: {v:+.2f}" for a, b, v in zip(s["values"], s["values"][1:], local)
        )
    )
    print(
        f"model fit (wall time per network, {threads} threads): c0 = {1e6 * c['c0']:.1f} us, "
        f"c_cos = {1e9 * c['c_cos']:.3f} ns per cosine, c_pair = {1e9 * c['c_pair']:.3f} ns per "
        f"pair product; crossover B = 2 N c_cos / c_pair = {s['crossover_B']:,.0f}; the floor "
        f"is {1e9 / (s['floor_cos_per_s'] * threads):.3f} ns per cosine"
    )
    if min(c.values()) < 0:
        print("(a negative coefficient: the model does not fit these points - noise or load)")
    print()


def scaling_json(s):
    return {
        "base": s["base"].key,
        "values": s["values"],
        "networks_per_s_median": s["rates"],
        "networks_per_s_best": [p.best for p in s["points"]],
        "points": {p.key: p.to_json() for p in s["points"]},
        "fit_values": s["fit_values"],
        "fitted_slope": s["slope"],
        "expected_slope": s["expected_slope"],
        "slope_tolerance": SLOPE_TOL,
        "verdict": verdict(s["slope"], s["expected_slope"]),
        "model_seconds_per_network": s["model_s"],
        "crossover_B": s["crossover_B"],
        "floor_cos_per_s_per_thread": s["floor_cos_per_s"],
    }


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------
def printout_main(ap, argv, stem, run_all):
    """Parse ``argv`` with ``ap`` (which gets --txt), default --txt / --json to
    bench/<stem(args)>.txt / .json (not under --smoke), run ``run_all(args)`` with the
    printout kept and written to --txt; exit status 0 if it returned a true value."""
    ap.add_argument("--txt", metavar="PATH", help="the printout (default bench/<name>.txt)")
    args = ap.parse_args(argv)
    if not args.smoke:
        args.txt = args.txt or str(HERE / f"{stem(args)}.txt")
        args.json = args.json or str(HERE / f"{stem(args)}.json")
    ok = printed(run_all, args, args.txt)
    if args.txt:
        print(f"wrote {args.txt}")
    return 0 if ok else 1


def main(argv=None):
    ap = parser("bench.fields", __doc__, quick="short run (~1.5 min)")
    ap.add_argument("--scaling", action="store_true", help="also networks/s against B")
    ap.add_argument("--scaling-only", action="store_true", help="only networks/s against B")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    # --scaling-only: bench/fields_scaling.txt / .json
    return printout_main(
        ap, argv, lambda a: "fields_scaling" if a.scaling_only else "fields", run_all
    )


def run_all(args):
    target, repeats = (0.02, 2) if args.smoke else (0.5, 3) if args.quick else (2.0, 5)
    started = time.perf_counter()
    info = machine_info()
    threads = info["numba_threads"]
    mode = " (--smoke)" if args.smoke else " (--quick)" if args.quick else ""
    print(f"# nnft_fast cos-net fields: nf.sample vs NumPy vs the cosine floor{mode}\n")
    print_machine(info)
    print(f"timing: ~{target} s per repeat, {repeats} interleaved repeats, medians\n")
    chosen = (
        (("TINY_F1", TINY_F1), ("TINY_F2", TINY_F2))
        if args.smoke
        else (("F1", FIELDS[0]), ("F2", FIELDS[1]))
    )
    n_check = (
        {"F1": 1024, "F2": 8192} if not (args.smoke or args.quick) else {"F1": 512, "F2": 2048}
    )
    n_memory = {"F1": 512, "F2": 2048, "TINY_F1": 64, "TINY_F2": 256}
    results, summary, all_ok = {}, {}, True
    for name, cfg in () if args.scaling_only else chosen:
        r = run_config(cfg, target, repeats, 128 if args.smoke else n_check[name], args.smoke)
        summary[cfg.key] = print_config(r, threads)
        mem = None
        if not args.no_memory:
            mem = run_memory(name, n_memory[name])
            print_memory(cfg, mem)
            all_ok &= mem["flat"]
        all_ok &= r["checks_ok"]
        results[cfg.key] = config_json(r, threads, mem)
        print(
            f"(load average now {load_average()}; {time.perf_counter() - started:.0f} s so far)\n"
        )
    scaling = None
    if args.scaling or args.scaling_only:
        base, values = (TINY_F1, [2, 4, 8]) if args.smoke else (F1, SCALING_B)
        s = run_scaling(
            base, values, 0.02 if args.smoke else 0.3 if args.quick else 1.0, repeats, threads
        )
        print_scaling(s)
        scaling = scaling_json(s)
    if summary:
        print("## summary\n")
        print(
            "| config | nnft_fast networks/s | NumPy (faster setting) networks/s | "
            "nnft_fast / NumPy "
            f"(target >= {TARGET_VS_NUMPY:g}) | floor networks/s | nnft_fast / floor "
            f"(target >= {TARGET_FLOOR_FRACTION:g}) | peak RSS 4n / n |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for key, r in summary.items():
            j = results[key]
            mem = j["memory"]
            print(
                f"| {key} | {fmt_rate(j['methods']['nnft_tall']['median_rate'])} | "
                f"{fmt_rate(r['numpy_best_networks_per_s'])} | "
                f"{r['nnft_vs_numpy']:.2f}x | {fmt_rate(r['floor_networks_per_s'])} | "
                f"{r['nnft_floor_fraction']:.3f} | "
                + ("-" if mem is None else f"{mem['peak_ratio_4n_n']:.3f}")
                + " |"
            )
        print("\nchecks and memory: " + ("all ok" if all_ok else "SOME FAILED - see above"))
    elapsed = finish(started)
    write_json(
        args.json,
        "fields",
        args,
        info,
        elapsed,
        repeats=repeats,
        seconds_per_repeat=target,
        floor_array=FLOOR_ARRAY,
        configs=results,
        scaling=scaling,
        all_checks_ok=bool(all_ok),
    )
    return all_ok


if __name__ == "__main__":
    sys.exit(main())
