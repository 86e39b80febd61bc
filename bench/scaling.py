"""Scaling of ``nf.sample`` (CPU backend) around reference config R1 (docs/performance.md#r1).

    python -m bench.scaling                    # full, ~5 min
    python -m bench.scaling --quick            # ~1 min
    python -m bench.scaling --json out.json --png out.png   # default PNG bench/scaling.png
    python -m bench.scaling --smoke            # tiny sweeps around bench.configs.TINY, no PNG

R1: n_0 = 64, eight layers of width 512, B = 4, ReLU, C_W = 2, C_b = 0, two- and
four-point statistics, projected Gaussian weights unless a sweep says otherwise. Each
sweep changes one thing and checks the law docs/performance.md#rules asks for:

    ensemble size N        networks/s flat            slope  0
    depth L                networks/s ∝ 1/L           slope -1
    width n, projected     networks/s ∝ 1/n (large n) slope -1
    width n, dense         networks/s ∝ 1/n²          slope -2
    inputs B               no single law (RNG ∝ B, QR ∝ B², four-point ∝ B⁴): reported
    many points B (--points, two-point only)                slope -2 (large B)
        cos-net field F1 (d = 3, N = 1000), B = 2 ... 1024
        R1 MLP (64 -> 8 x 512, projected Gaussian), B = 2 ... 1024
    peak memory vs N       flat (streaming accumulators)  slope 0

Many points: a network costs c0 + c1 B + c2 B(B+1)/2 (per-network overhead; random numbers
and, for the field, its N B cosines; the O(B^2) part: the projected sampler's QR of the
n x B activations and F R, and the B(B+1)/2 pair products of the two-point accumulation on
every layer), so networks/s falls as B^-2 once B >> 2 c1 / c2; the slope is fitted over
B >= 256 and the model's least-squares fit (relative residuals) is printed with that
crossover. Only the two-point function is measured there: the four-point statistics grow
as B^4 (B = 1024: ~1.4e11 pair products per layer, which nf.sample's memory guard refuses);
the four-point cost at small B is the ``inputs`` sweep. The table gives each point's batch
(networks per batch, the Numba threads it keeps busy: chunks of 16 networks) and the
accumulator's size.

Floor: every point is also given as a fraction of the random-number floor of this
machine, measured once at the start (``bench.methods.FloorMethod``: ``fill_normal`` on one
thread; for the field, ``bench.fields``' cosine floor): the generator's rate x the Numba
threads over what one network of the point draws (MLPs: its normals, projected or dense;
the field: its N B cosines).

Timing: every point is warmed up (compiled / loaded from the Numba cache) outside the
timed region, sized to ~1 s per repeat (``--quick``: 0.3 s), and the points of one sweep
are repeated interleaved round-robin (bench.harness, bench.methods.NnftMethod);
figures are medians. The slope is a least-squares fit of log(networks/s) against
log(x) over the points where the law is expected to hold. Memory: one fresh
subprocess per N runs ``nf.sample`` after an import + warm-up call and reports its
peak RSS (``resource.getrusage``) and the tracemalloc peak (NumPy allocations only;
Numba's kernel scratch is not traced). The machine is shared: the load average is
printed beside every sweep.
"""

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from nnft_fast.accumulators import DEFAULT_BLOCKS
from nnft_fast.jobs import make_run
from nnft_fast.kernels.cpu.moments import chunk_count
from nnft_fast.memory import available_memory, format_bytes, moment_statistics_size

from .configs import F1, R1, SAMPLE_SEED, TINY, TINY_F1
from .harness import REPO, finish, fmt_rate, parser, round_robin, run_python, write_json
from .machine import machine_info, print_machine
from .methods import FloorMethod, NnftMethod

DEFAULT_PNG = Path(__file__).resolve().parent / "scaling.png"
SLOPE_TOL = 0.15  # |fitted - expected| within this: consistent with the law
MEMORY_FLAT_TOL = 0.10  # peak RSS may grow by at most 10% over the whole N range
POINTS_B = [2**k for k in range(1, 11)]  # the many-points sweeps: B = 2 ... 1024
POINTS_B_QUICK_MLP = [2**k for k in range(1, 9)]  # --quick: the MLP to B = 256 (~0.5 s a network)
POINTS_B_SMOKE = [2, 4, 8, 16]
POINTS_FIT_FROM = 256  # fit the B^-2 law over B >= 256


def point(cfg, key, method="projected", per_call=None):
    """``nf.sample(..., backend="cpu")`` on ``cfg`` (two- and four-point); with
    ``per_call`` (the N sweep) every timed unit is one call of exactly that many networks,
    so the rate includes the per-call overhead an ensemble of that size pays."""
    return NnftMethod(
        cfg, "gaussian", method, key=key, label=key, per_call=per_call, keep_ensemble=False
    )


def points_point(cfg, key):
    """A many-points point: ``nf.sample`` of an MLP config (projected Gaussian) or a field
    config (bench.fields' method), two-point only."""
    if hasattr(cfg, "dim"):
        from .fields import NnftFieldMethod  # bench.fields imports this module

        return NnftFieldMethod(cfg, key=key, label=key)
    return NnftMethod(
        cfg,
        "gaussian",
        "projected",
        observables=("two_point",),
        key=key,
        label=key,
        keep_ensemble=False,
    )


def batch_details(p):
    """Networks per batch of ``p``'s repeats (nf.sample's default batch size), the Numba
    threads that batch keeps busy (one chunk of <= 16 networks per thread) and the
    accumulator's size (64 blocks x L x statistics, float64)."""
    run = make_run(
        p.network, p.x, SAMPLE_SEED, method=p.method, observables=p.observables, backend="cpu"
    )
    batch = run.default_batch_size(p.n_per_repeat)
    n_stat = moment_statistics_size(p.x.shape[0], "four_point" in p.observables)
    layers = getattr(p.network, "n_layers", 1)
    return {
        "networks_per_batch": batch,
        "threads_busy": min(chunk_count(batch), numba.get_num_threads()),
        "accumulator_bytes": 8.0 * DEFAULT_BLOCKS * layers * n_stat,
    }


def size(p, target_s, n_start=16, warm_pilot=False):
    """Calibrate to ~target_s per repeat (calls of N, or networks per call), then check
    the size once more: a pilot slowed by a load spike sizes repeats far too short.
    ``warm_pilot``: a warm-up (2 networks, kernels already compiled) that took >= target_s
    is the pilot: repeats of 2 networks (the many-points sweeps' large B, seconds a
    network)."""
    n_max = 10**7 if p.per_call is None else 10**4
    if warm_pilot and p.first_call_s >= target_s:
        p.n_per_repeat = p.warmup_n
        return p.n_per_repeat
    n = (
        p.calibrate(target_s, n_start, 2, n_max)
        if p.per_call is None
        else p.calibrate(target_s, 1, 1, n_max)
    )
    if (p.per_call is not None and n == 1) or (p.per_call is None and n == 2 and n_start == 2):
        return n  # one call (two networks) already takes >= target_s
    dt = p.pilot(n)
    if dt < 0.5 * target_s:
        p.n_per_repeat = min(n_max, math.ceil(n * target_s / dt))
    return p.n_per_repeat


@dataclass
class Sweep:
    """One parameter varied around R1: points (x values), how to build a point, the law."""

    key: str
    title: str
    symbol: str
    values: list
    make: object  # value -> a timed point (``point``)
    expected: float = None  # log-log slope of networks/s; None: no single law
    fit_from: float = None  # fit over values >= fit_from (default: all)
    norm_power: float = None  # normalised = rate * x^norm_power / same at first point
    n_start: int = 16  # calibration's first pilot (networks)
    model: bool = False  # fit t(x) = c0 + c1 x + c2 x(x+1)/2 per network (many points)
    points: list = field(default_factory=list)
    details: list = field(default_factory=list)  # per point (many points: batch_details)
    floor_rates: list = field(default_factory=list)  # per point: its floor, networks/s

    def fit_values(self):
        lo = self.values[0] if self.fit_from is None else self.fit_from
        return [v for v in self.values if v >= lo]

    def slope(self):
        sel = [(v, p.rate) for v, p in zip(self.values, self.points) if v in self.fit_values()]
        return log_slope(*zip(*sel)) if len(sel) >= 2 else float("nan")

    def normalised(self):
        power = -self.expected if self.norm_power is None else self.norm_power
        scaled = [p.rate * v**power for v, p in zip(self.values, self.points)]
        return [s / scaled[0] for s in scaled]


def log_slope(xs, ys):
    """Least-squares slope of log(y) against log(x)."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def build_sweeps(base, quick, smoke=False):
    """The sweeps of issue 8 part 3 around ``base`` (fewer values with --quick/--smoke)."""
    if smoke:
        values = dict(
            ensemble=[100, 300],
            depth=[2, 4],
            width_projected=[8, 16],
            width_dense=[8, 16],
            inputs=[2, 4],
        )
    else:
        values = dict(
            ensemble=[1000, 3000, 10000] + ([] if quick else [30000, 100000]),
            depth=[2, 4, 8, 16, 32],
            width_projected=[64, 128, 256, 512, 1024, 2048],
            width_dense=[64, 128, 256, 512],
            inputs=[1, 2, 4, 8],
        )
    n0, n, L = base.widths[0], base.widths[1], base.n_layers
    return [
        Sweep(
            "ensemble",
            f"ensemble size N ({base.key}, projected Gaussian; one nf.sample call of N)",
            "N",
            values["ensemble"],
            lambda v: point(base, f"N={v}", per_call=v),
            expected=0.0,
        ),
        Sweep(
            "depth",
            f"depth L ({n0} -> L x {n}, projected Gaussian)",
            "L",
            values["depth"],
            lambda v: point(base.resized(depth=v), f"L={v}"),
            expected=-1.0,
        ),
        Sweep(
            "width_projected",
            f"width n ({n0} -> {L} x n, projected Gaussian)",
            "n",
            values["width_projected"],
            lambda v: point(base.resized(width=v), f"n={v}"),
            expected=-1.0,
            fit_from=None if smoke else 512,
        ),
        Sweep(
            "width_dense",
            f"width n ({n0} -> {L} x n, dense Gaussian)",
            "n",
            values["width_dense"],
            lambda v: point(base.resized(width=v), f"n={v}", "dense"),
            expected=-2.0,
            fit_from=None if smoke else 128,
        ),
        Sweep(
            "inputs",
            f"inputs B ({base.key}, projected Gaussian)",
            "B",
            values["inputs"],
            lambda v: point(base.resized(n_inputs=v), f"B={v}"),
            expected=None,
            norm_power=1.0,
        ),
    ] + points_sweeps(quick, smoke)


def points_sweeps(quick, smoke=False):
    """Many points (issue 19.4): networks/s against B = 2 ... 1024, two-point only, for
    F1's cos-net field and for R1 (``--smoke``: TINY_F1 and TINY, B <= 16)."""
    field_cfg, mlp = (TINY_F1, TINY) if smoke else (F1, R1)
    field_b = POINTS_B_SMOKE if smoke else POINTS_B
    mlp_b = POINTS_B_SMOKE if smoke else POINTS_B_QUICK_MLP if quick else POINTS_B
    fit_from = None if smoke else POINTS_FIT_FROM
    w = mlp.widths
    common = dict(expected=-2.0, fit_from=fit_from, n_start=2, model=True)
    return [
        Sweep(
            "points_field",
            f"many points B ({field_cfg.key} cos-net field, d = {field_cfg.dim}, "
            f"N = {field_cfg.width}; two-point)",
            "B",
            field_b,
            lambda v: points_point(field_cfg.resized(v), f"B={v}"),
            **common,
        ),
        Sweep(
            "points_mlp",
            f"many points B ({mlp.key}, {w[0]} -> {mlp.n_layers} x {w[1]}, projected; two-point)",
            "B",
            mlp_b,
            lambda v: points_point(mlp.resized(n_inputs=v), f"B={v}"),
            **common,
        ),
    ]


# --------------------------------------------------------------------------------------
# Running and reporting the timing sweeps
# --------------------------------------------------------------------------------------
def measure_floors(target_s, repeats):
    """The generator's rates on one thread: {"normals": FloorMethod, "cosines": the
    fields' cosine floor}, each sized to ~target_s per repeat, repeats interleaved."""
    from .fields import floor_methods  # bench.fields imports this module

    floors = {"normals": FloorMethod("rng_floor", "fill_normal (1 thread)")}
    floors["cosines"] = floor_methods()[0]
    for f in floors.values():
        f.warmup()
        f.calibrate(target_s, 4, 1, 10**6)
    round_robin(list(floors.values()), repeats, "floors")
    return floors


def point_floor(p, floors, threads):
    """Networks/s of point ``p`` at the floor: a field's N B cosines, an MLP's normals by
    its algorithm, at the one-thread rates x ``threads``."""
    if p.method == "field":
        return floors["cosines"].networks_per_s(p.cfg, threads)
    return floors["normals"].networks_per_s(p.cfg, threads, algorithm=p.method)


def run_sweep(sweep, target_s, repeats, floors):
    """Warm up, calibrate and time every point of ``sweep`` (interleaved repeats)."""
    sweep.points = [sweep.make(v) for v in sweep.values]
    for i, p in enumerate(sweep.points):
        p.warmup()
        size(p, target_s, sweep.n_start, warm_pilot=sweep.model and i > 0)
    sweep.details = [batch_details(p) for p in sweep.points] if sweep.model else []
    round_robin(sweep.points, repeats, sweep.key)
    threads = numba.get_num_threads()
    sweep.floor_rates = [point_floor(p, floors, threads) for p in sweep.points]


def cost_model(sweep):
    """Least-squares fit of seconds per network t(x) = c0 + c1 x + c2 x(x+1)/2 (relative
    residuals, as bench.fields' B series) and the crossover x* = 2 c1 / c2 beyond which the
    quadratic term dominates (networks/s -> slope -2)."""
    xs = np.array(sweep.values, float)
    rates = np.array([p.rate for p in sweep.points])
    design = np.stack([np.ones_like(xs), xs, xs * (xs + 1) / 2], axis=1) * rates[:, None]
    c0, c1, c2 = np.linalg.lstsq(design, np.ones(len(xs)), rcond=None)[0]
    return {
        "c0_s": float(c0),
        "c1_s": float(c1),
        "c2_s": float(c2),
        "crossover": float(2 * c1 / c2) if c1 > 0 and c2 > 0 else float("nan"),
    }


def verdict(slope, expected):
    if expected is None:
        return "no single law expected (reported only)"
    ok = abs(slope - expected) <= SLOPE_TOL
    relation = "<=" if ok else ">"
    return f"{'consistent' if ok else 'DEVIATES'} (|fit - expected| {relation} {SLOPE_TOL})"


def norm_label(sweep):
    power = -sweep.expected if sweep.norm_power is None else sweep.norm_power
    if power == 0:
        return "rate / first"
    factor = sweep.symbol if power == 1 else f"{sweep.symbol}^{power:g}"
    return f"rate x {factor} / first"


def print_sweep(sweep, load_avg):
    print(f"### {sweep.title}   (load avg {load_avg:.2f})")
    print()
    extra = " networks per batch | threads busy | accumulator |" if sweep.details else ""
    print(
        f"| {sweep.symbol} | networks/s (median) | best | fraction of floor | "
        f"{norm_label(sweep)} | per repeat | first call s |{extra}"
    )
    print("|---:|---:|---:|---:|---:|---|---:|" + "---:|" * (3 if sweep.details else 0))
    details = sweep.details or [None] * len(sweep.values)
    rows = zip(sweep.values, sweep.points, sweep.normalised(), details, sweep.floor_rates)
    for v, p, nrm, d, floor in rows:
        per = (
            f"{p.n_per_repeat} x {p.per_call:,} nets" if p.per_call else f"{p.n_per_repeat:,} nets"
        )
        more = (
            f" {d['networks_per_batch']:,} | {d['threads_busy']} | "
            f"{format_bytes(d['accumulator_bytes'])} |"
            if d
            else ""
        )
        print(
            f"| {v:,} | {fmt_rate(p.rate)} | {fmt_rate(p.best)} | {p.rate / floor:.3f} | "
            f"{nrm:.2f} | {per} | {p.first_call_s:.2f} |{more}"
        )
    fit = sweep.fit_values()
    local = [
        log_slope(sweep.values[i : i + 2], [q.rate for q in sweep.points[i : i + 2]])
        for i in range(len(sweep.values) - 1)
    ]
    expected = "none" if sweep.expected is None else f"{sweep.expected:g}"
    print()
    print(
        f"log-log slope of networks/s vs {sweep.symbol} over {sweep.symbol} = {fit[0]:,}.."
        f"{fit[-1]:,}: {sweep.slope():+.2f}, expected {expected} -> "
        f"{verdict(sweep.slope(), sweep.expected)}"
    )
    print(
        "local slopes: "
        + ", ".join(
            f"{a:,}->{b:,}: {s:+.2f}" for a, b, s in zip(sweep.values, sweep.values[1:], local)
        )
    )
    if sweep.model:
        c = cost_model(sweep)
        print(
            f"cost model per network t(B) = c0 + c1 B + c2 B(B+1)/2 (wall clock, "
            f"{numba.get_num_threads()} threads): c0 = {1e6 * c['c0_s']:.1f} us, "
            f"c1 = {1e9 * c['c1_s']:.1f} ns, c2 = {1e9 * c['c2_s']:.2f} ns; the B^2 part "
            f"dominates for B >> 2 c1 / c2 = {c['crossover']:,.0f}"
        )
        if min(c["c0_s"], c["c1_s"], c["c2_s"]) < 0:
            print("(a negative coefficient: the model does not fit these points - noise or load)")
        big = sweep.values[-1]
        four = 8.0 * DEFAULT_BLOCKS * getattr(sweep.points[-1].network, "n_layers", 1)
        four *= moment_statistics_size(big, True)
        fits = "within" if four <= available_memory() else "beyond: nf.sample refuses it;"
        print(
            f"two-point only at every B: with the four-point statistics B = {big:,} would "
            f"need accumulators of {format_bytes(four)} ({fits} the "
            f"{format_bytes(available_memory())} available)"
        )
    print()


def sweep_json(sweep, load_avg):
    return {
        "title": sweep.title,
        "symbol": sweep.symbol,
        "expected_slope": sweep.expected,
        "fit_values": sweep.fit_values(),
        "fitted_slope": sweep.slope(),
        "verdict": verdict(sweep.slope(), sweep.expected),
        "load_average": load_avg,
        "cost_model": cost_model(sweep) if sweep.model else None,
        "points": [
            {
                "x": v,
                "networks_per_s_median": p.rate,
                "networks_per_s_best": p.best,
                "floor_networks_per_s": floor,
                "floor_fraction": p.rate / floor,
                "rates": p.rates,
                "times_s": p.times,
                "n_per_repeat": p.n_per_repeat,
                "networks_per_call": p.per_call,
                "first_call_s": p.first_call_s,
                "normalised": nrm,
                "observables": list(getattr(p, "observables", ("two_point", "four_point"))),
                **(d or {}),
            }
            for v, p, nrm, d, floor in zip(
                sweep.values,
                sweep.points,
                sweep.normalised(),
                sweep.details or [None] * len(sweep.values),
                sweep.floor_rates,
            )
        ],
    }


# --------------------------------------------------------------------------------------
# Peak memory against N (fresh subprocess per N)
# --------------------------------------------------------------------------------------
_MEMORY_CHILD = r"""
import gc, json, re, resource, sys, time, tracemalloc
import nnft_fast as nf
from bench.configs import R1


def status_kib(key):
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\s+(\d+)", f.read()).group(1))


def reset_peak():
    # Linux >= 4.0: writing 5 resets VmHWM (and with it ru_maxrss's own-mm part)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


n = int(sys.argv[1])
net, x = R1.network("gaussian"), R1.inputs()
kw = dict(method="projected", observables=("two_point", "four_point"), backend="cpu")
nf.sample(net, x, 64, seed=1, **kw)                  # warm-up: compile / cache load, threads
gc.collect()
maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rss_before = status_kib("VmRSS")
reset = reset_peak()
tracemalloc.start()
t0 = time.perf_counter()
ens = nf.sample(net, x, n, seed=2, **kw)
dt = time.perf_counter() - t0
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
assert ens.n_networks == n
print(json.dumps({"n": n, "rss_before_kib": rss_before,
                  "peak_kib": status_kib("VmHWM") if reset else maxrss_before,
                  "peak_is_run_only": reset, "maxrss_before_kib": maxrss_before,
                  "maxrss_after_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "tracemalloc_peak_bytes": traced, "seconds": dt}))
"""


def memory_point(n):
    """Peak RSS (KiB) of a fresh interpreter while it runs nf.sample(R1, n) after an import
    and a warm-up call.

    ru_maxrss alone cannot show it: the import and first call (LLVM, cache loading) peak
    higher than the sampling, and a child started from this (large) process inherits the
    parent's high-water mark at exec. So the child resets its own peak (/proc/self/clear_refs)
    after warm-up and reads VmHWM; the ru_maxrss figures are kept in the JSON.
    """
    return run_python(_MEMORY_CHILD, n)


def run_memory(sizes):
    rows = [memory_point(n) for n in sizes]
    peaks = [r["peak_kib"] for r in rows]
    growth = peaks[-1] / peaks[0] - 1.0
    return {
        "points": rows,
        "fitted_slope_peak_rss": log_slope(sizes, peaks),
        "peak_growth": growth,
        "flat": abs(growth) <= MEMORY_FLAT_TOL,
    }


def print_memory(mem, load_avg):
    print(
        f"### peak memory vs ensemble size N (R1 projected Gaussian, fresh subprocess per N; "
        f"load avg {load_avg:.2f})"
    )
    print()
    print(
        "| N | RSS before MiB | peak RSS during run MiB | increase MiB | "
        "tracemalloc peak MiB | peak / first | run s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    first = mem["points"][0]["peak_kib"]
    for r in mem["points"]:
        print(
            f"| {r['n']:,} | {r['rss_before_kib'] / 1024:.1f} | {r['peak_kib'] / 1024:.1f} | "
            f"{(r['peak_kib'] - r['rss_before_kib']) / 1024:.1f} | "
            f"{r['tracemalloc_peak_bytes'] / 2**20:.2f} | {r['peak_kib'] / first:.3f} | "
            f"{r['seconds']:.2f} |"
        )
    print()
    print(
        f"log-log slope of peak RSS vs N: {mem['fitted_slope_peak_rss']:+.3f}, expected 0; "
        f"growth over the range {100 * mem['peak_growth']:+.1f}% -> "
        f"{'flat' if mem['flat'] else 'NOT FLAT'} (tolerance {100 * MEMORY_FLAT_TOL:.0f}%)"
    )
    if not all(r["peak_is_run_only"] for r in mem["points"]):
        print(
            "WARNING: /proc/self/clear_refs not writable: peaks are whole-process ru_maxrss "
            "(import and warm-up included)"
        )
    print(
        "(the increase over the RSS before the run is mostly the batch buffers: a batch "
        "holds at most 8 MiB of per-network statistics, so it stops growing once N exceeds "
        "one batch)"
    )
    print()


# --------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------
def _law_line(ax, xs, fit_xs, fit_ys, power, label):
    """Dashed ideal law y = c x^power, c fitted to (fit_xs, fit_ys) in log space."""
    log_c = np.mean(np.log(fit_ys) - power * np.log(fit_xs))
    ends = np.array([min(xs), max(xs)], float)
    ax.plot(ends, np.exp(log_c) * ends**power, "k--", lw=1, label=label)


def _log_axes(ax, xs, ys):
    """Log-log axes ticked at the sweep values, at least a factor 4 tall (a flat law
    should look flat, not like noise blown up)."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    lo, hi = min(ys), max(ys)
    mid = math.sqrt(lo * hi)
    span = max(hi / lo, 4.0) ** 0.5 * 1.15
    ax.set_ylim(min(lo / 1.15, mid / span), max(hi * 1.15, mid * span))


def _plot_sweep(ax, sweep):
    xs = sweep.values
    ys = [p.rate for p in sweep.points]
    ax.plot(xs, ys, "o-", label=f"measured (fit slope {sweep.slope():+.2f})")
    if sweep.expected is not None:
        fit = [(v, y) for v, y in zip(xs, ys) if v in sweep.fit_values()]
        law = f"ideal slope {sweep.expected:g}"
        if sweep.fit_from is not None:
            law += f" (fit {sweep.symbol} >= {sweep.fit_from:g})"
        _law_line(ax, xs, *zip(*fit), sweep.expected, law)
    else:
        _law_line(ax, xs, xs[:1], ys[:1], -1.0, "slope -1 (random numbers only)")
    _log_axes(ax, xs, ys)
    ax.set_xlabel(sweep.symbol)
    ax.set_ylabel("networks / s")
    ax.set_title(sweep.title, fontsize=8)
    ax.legend(fontsize=7)


def _plot_memory(ax, mem):
    xs = [r["n"] for r in mem["points"]]
    ys = [r["peak_kib"] / 1024 for r in mem["points"]]
    ax.plot(xs, ys, "o-", label=f"peak RSS (fit slope {mem['fitted_slope_peak_rss']:+.3f})")
    _law_line(ax, xs, xs, ys, 0.0, "ideal: flat")
    _log_axes(ax, xs, ys)
    ax.set_xlabel("N")
    ax.set_ylabel("peak RSS (MiB)")
    ax.set_title("peak memory vs ensemble size (fresh process per N)", fontsize=8)
    ax.legend(fontsize=7)


def plot(sweeps, mem, path, caption):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(sweeps) + (mem is not None)
    cols = 3
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.6 * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax, sweep in zip(flat, sweeps):
        _plot_sweep(ax, sweep)
    if mem is not None:
        _plot_memory(flat[len(sweeps)], mem)
    for ax in flat[panels:]:
        ax.axis("off")
    fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------
def main(argv=None):
    ap = parser("bench.scaling", __doc__, quick="short run (~0.3 s per repeat)")
    ap.add_argument(
        "--png",
        metavar="PATH",
        default=None,
        help=f"plot file (default {DEFAULT_PNG.relative_to(REPO)}; with --smoke none unless given)",
    )
    ap.add_argument("--no-png", action="store_true", help="skip the plot")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory sweep")
    ap.add_argument(
        "--sweeps",
        metavar="KEYS",
        help="comma-separated subset of ensemble,depth,width_projected,width_dense,inputs,"
        "points_field,points_mlp",
    )
    ap.add_argument(
        "--points",
        action="store_true",
        help="only the many-points sweeps (points_field, points_mlp), no memory sweep",
    )
    args = ap.parse_args(argv)
    base = TINY if args.smoke else R1
    repeats, target = (2, 0.02) if args.smoke else (3, 0.3) if args.quick else (5, 1.0)
    mem_sizes = (
        [64, 256]
        if args.smoke
        else [1000, 10000, 30000]
        if args.quick
        else [1000, 3000, 10000, 30000, 100000]
    )
    png = args.png or (None if args.smoke else str(DEFAULT_PNG))
    started = time.perf_counter()
    info = machine_info()
    print(
        f"# nnft_fast scaling around {base.key}{' (--quick)' if args.quick else ''}"
        f"{' (--smoke)' if args.smoke else ''}\n"
    )
    print_machine(info)
    print(f"{base.describe()}; two- and four-point (the many-points sweeps: two-point); cpu")
    print(f"timing: ~{target} s per repeat, {repeats} interleaved repeats per sweep, medians\n")

    sweeps = build_sweeps(base, args.quick, args.smoke)
    if args.points:
        args.sweeps = args.sweeps or "points_field,points_mlp"
        args.no_memory = True
    if args.sweeps:
        keep = set(args.sweeps.split(","))
        unknown = keep - {s.key for s in sweeps}
        if unknown:
            ap.error(f"unknown sweep(s): {', '.join(sorted(unknown))}")
        sweeps = [s for s in sweeps if s.key in keep]
    floors = measure_floors(target / 2, repeats)
    print(
        f"floors (one thread): {floors['normals'].rate / 1e6:.0f} M normals/s, "
        f"{floors['cosines'].rate / 1e6:.0f} M cosines/s; x {numba.get_num_threads()} threads\n"
    )
    loads = {}
    for sweep in sweeps:
        run_sweep(sweep, target, repeats, floors)
        loads[sweep.key] = os.getloadavg()[0]
        print()
        print_sweep(sweep, loads[sweep.key])
    mem = None
    if not args.no_memory:
        mem = run_memory(mem_sizes)
        loads["memory"] = os.getloadavg()[0]
        print_memory(mem, loads["memory"])

    load_end = os.getloadavg()
    elapsed = finish(started)
    print(
        "summary: "
        + "; ".join(
            f"{s.key} slope {s.slope():+.2f}"
            + ("" if s.expected is None else f" (exp. {s.expected:g})")
            for s in sweeps
        )
        + ("" if mem is None else f"; peak RSS slope {mem['fitted_slope_peak_rss']:+.3f} (exp. 0)")
    )
    if png and not args.no_png:
        caption = (
            f"nnft_fast scaling around {base.key} (CPU, {info['numba_threads']} threads, "
            f"{'quick' if args.quick else 'full'} run; load avg "
            f"{info['load_average_at_start'][0]:.1f} -> {load_end[0]:.1f})"
        )
        plot(sweeps, mem, png, caption)
        print(f"wrote {png}")
    write_json(
        args.json,
        "scaling",
        args,
        info,
        elapsed,
        repeats=repeats,
        seconds_per_repeat=target,
        observables=["two_point", "four_point"],  # the points_* sweeps: per point
        floors_per_thread={
            "normals_per_s": floors["normals"].rate,
            "cosines_per_s": floors["cosines"].rate,
        },
        sweeps={s.key: sweep_json(s, loads[s.key]) for s in sweeps},
        memory=mem,
        load_average_at_end=list(load_end),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
