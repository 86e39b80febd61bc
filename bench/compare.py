"""Side-by-side speed comparison on reference config R1 (docs/performance.md#r1).

    python -m bench.compare            # full, ~3 min
    python -m bench.compare --quick    # ~40 s, fewer/shorter repeats
    python -m bench.compare --json results.json

R1: n_0 = 64, eight layers of width 512, B = 4 inputs (fixed by a seed), ReLU, C_W = 2,
C_b = 0. Measured in one process, interleaved round-robin (repeat r of every method,
then repeat r+1, ...) so that machine noise hits all methods alike; every figure is a
median over repeats and every comparison a ratio between figures of this one run.

Methods: NumPy dense baseline (gaussian, orthogonal; bench/baselines.py, best of the
BLAS-thread/chunk settings tried in a pilot), nnft_fast dense gaussian, projected
gaussian, projected orthogonal, projected gaussian two-point only, and the random-number
floor = (normals/s of fill_normal on a 2^16 array, one thread) x (numba threads) /
(normals per network on the projected path). Before the speed table, the statistics
gathered in the timed runs are cross-checked (K and connected four-point z-scores, NumPy
vs nnft_fast).
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numba
import numpy as np

import nnft_fast as nf
from nnft_fast.accumulators import MomentLayout
from nnft_fast.kernels.cpu import codes
from nnft_fast.kernels.cpu import moments as cpu_moments
from nnft_fast.kernels.cpu.rng import fill_normal
from nnft_fast.run import EnsembleRun

from . import probes
from .baselines import blas_thread_count, blas_threads, haar_weights, run_dense_baseline

# --------------------------------------------------------------------------------------
# R1
# --------------------------------------------------------------------------------------
R1_WIDTHS = (64,) + (512,) * 8
R1_B = 4
R1_CW = 2.0
R1_CB = 0.0
R1_ACTIVATION = "relu"
X_SEED = 20240601
SAMPLE_SEED = 7
# The floor is taken on a cache-resident array (2^16 doubles = 512 KiB: call overhead is
# negligible); a 2^21-double (16 MiB) array is reported beside it for reference.
FLOOR_ARRAY = 1 << 16
FLOOR_ARRAY_BIG = 1 << 21
Z_LIMIT = 4.5

TARGETS = {
    "projected_vs_numpy": 200.0,      # R1 projected >= 200x NumPy dense, both inits
    "floor_over_two_point": 2.0,      # projected two-point-only within 2x of the RNG floor
    "dense_vs_numpy": 1.5,            # R1 dense >= 1.5x NumPy dense
    "four_point_overhead": 1.5,       # time(2+4) / time(2) <= 1.5
}


def r1_network(init):
    return nf.Network(R1_WIDTHS, R1_ACTIVATION, init, cw=R1_CW, cb=R1_CB)


def r1_inputs():
    return np.random.default_rng(X_SEED).standard_normal((R1_B, R1_WIDTHS[0]))


def projected_normals_per_network(widths, n_inputs, cb):
    """sum_l n_l * min(n_{l-1}, B) (+ n_l per layer for biases when cb > 0)."""
    total = 0
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        total += n_out * min(n_in, n_inputs) + (n_out if cb > 0 else 0)
    return total


def dense_normals_per_network(widths, cb):
    return sum(n_out * n_in + (n_out if cb > 0 else 0)
               for n_in, n_out in zip(widths[:-1], widths[1:]))


# --------------------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------------------
def machine_info():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "load_average_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "nnft_fast": nf.__version__,
        "numba_threads": numba.get_num_threads(),
        "numba_max_threads": numba.config.NUMBA_NUM_THREADS,
        "numpy_blas_threads_default": blas_thread_count(),
    }


# --------------------------------------------------------------------------------------
# Timed methods
# --------------------------------------------------------------------------------------
def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class Method:
    """A timed workload: ``_timed(n, keep)`` does n units (networks) and returns the
    seconds; with keep=True the networks count for the agreement check. ``repeat``
    records one timed repeat of ``n_per_repeat`` units (set by ``calibrate``)."""

    unit = "networks"

    def __init__(self, key, label):
        self.key = key
        self.label = label
        self.n_per_repeat = None
        self.times = []
        self.counts = []
        self.first_call_s = None

    def warmup(self):
        """Compile / first call, outside every timed region."""

    def pilot(self, n):
        return self._timed(n, keep=False)

    def repeat(self):
        dt = self._timed(self.n_per_repeat, keep=True)
        self.times.append(dt)
        self.counts.append(self.n_per_repeat)
        return dt

    def _timed(self, n, keep):
        raise NotImplementedError

    def top_up(self, n_min):
        """Untimed extra networks so the agreement check has at least n_min of them."""
        missing = n_min - getattr(self, "next_network", n_min)
        if missing > 0:
            self._timed(missing, keep=True)
        return max(missing, 0)

    @property
    def rates(self):
        return [c / t for c, t in zip(self.counts, self.times)]

    @property
    def rate(self):
        """Median units per second over the repeats."""
        return statistics.median(self.rates)

    @property
    def best(self):
        return max(self.rates)

    def calibrate(self, target_s, n_start, n_min, n_max):
        """Grow n geometrically until a pilot takes >= target/4, then size the repeats."""
        n = n_start
        while True:
            dt = self.pilot(n)
            if dt >= 0.25 * target_s or n >= n_max:
                break
            n = min(n_max, max(n + 1, int(n * min(8.0, 0.3 * target_s / max(dt, 1e-4)))))
        self.n_per_repeat = int(min(n_max, max(n_min, math.ceil(n * target_s / dt))))
        return self.n_per_repeat


class NnftMethod(Method):
    """nf.sample on R1; ``blas=1`` runs it with every loaded OpenBLAS on one thread
    (a diagnostic: the dense kernel calls BLAS from inside its parallel loop)."""

    def __init__(self, key, label, init, method, observables, x, blas=None):
        super().__init__(key, label)
        self.network = r1_network(init)
        self.method = method
        self.observables = observables
        self.x = x
        self.blas = blas
        self.ensemble = None
        self.next_network = 0

    def _sample(self, n, seed, first):
        with blas_threads(self.blas):
            t0 = time.perf_counter()
            ens = nf.sample(self.network, self.x, n, seed=seed, method=self.method,
                            observables=self.observables, first_network=first,
                            backend="cpu")
            return time.perf_counter() - t0, ens

    def warmup(self):
        self.first_call_s, _ = self._sample(2, SAMPLE_SEED + 1, 0)

    def _timed(self, n, keep):
        if not keep:
            return self._sample(n, SAMPLE_SEED + 1, 0)[0]
        dt, ens = self._sample(n, SAMPLE_SEED, self.next_network)
        self.next_network += n
        self.ensemble = ens if self.ensemble is None else self.ensemble.merge(ens)
        return dt


class NumpyMethod(Method):
    """NumPy dense baseline; the BLAS-thread count and chunk are chosen in ``choose``."""

    def __init__(self, key, label, init, x):
        super().__init__(key, label)
        self.init = init
        self.x = x
        self.stats = None
        self.next_network = 0
        self.config = (1, 1)                  # (OpenBLAS threads or None = default, chunk)
        self.config_rates = {}
        self.qr_pilot_s = {}

    def _run(self, n, seed, stats, first):
        blas, chunk = self.config
        with blas_threads(blas):
            t0 = time.perf_counter()
            stats = run_dense_baseline(R1_WIDTHS, self.x, n, seed, init=self.init, cw=R1_CW,
                                       cb=R1_CB, chunk=chunk, stats=stats, first=first)
            return time.perf_counter() - t0, stats

    def warmup(self):
        t0 = time.perf_counter()
        self._run(1, [SAMPLE_SEED, 10 ** 6], None, 0)
        self.first_call_s = time.perf_counter() - t0

    def choose(self, n, chunk):
        """Pick the fastest (OpenBLAS threads, chunk) so the baseline is the best NumPy
        setting tried: default threads vs one thread first (gaussian: on n whole networks;
        orthogonal: on one 512 x 512 Haar draw, since a whole network on a bad setting can
        take > 10 s), then chunk 1 (n networks) vs ``chunk`` (chunk networks)."""
        if self.init == "gaussian":
            for config in ((None, 1), (1, 1)):
                self.config = config
                dt, _ = self._run(n, [SAMPLE_SEED, 10 ** 6 + 1], None, 0)
                self.config_rates[config] = n / dt
            blas = max(self.config_rates, key=self.config_rates.get)[0]
        else:
            rng = np.random.default_rng(0)
            width = R1_WIDTHS[-1]
            for b in (None, 1):
                with blas_threads(b):
                    best = min(_time(lambda: haar_weights(rng, 1, width, width, R1_CW))
                               for _ in range(3))
                self.qr_pilot_s[b] = best
            blas = min(self.qr_pilot_s, key=self.qr_pilot_s.get)
            self.config = (blas, 1)
            dt, _ = self._run(n, [SAMPLE_SEED, 10 ** 6 + 1], None, 0)
            self.config_rates[self.config] = n / dt
        self.config = (blas, chunk)
        dt, _ = self._run(chunk, [SAMPLE_SEED, 10 ** 6 + 1], None, 0)
        self.config_rates[self.config] = chunk / dt
        self.config = max(self.config_rates, key=self.config_rates.get)
        return self.config

    def pilot_summary(self):
        parts = []
        for b, t in self.qr_pilot_s.items():
            parts.append(f"one {R1_WIDTHS[-1]}x{R1_WIDTHS[-1]} Haar draw, "
                         f"{'default' if b is None else b} BLAS thr: {t * 1e3:.0f} ms")
        for (b, c), r in self.config_rates.items():
            parts.append(f"{'default' if b is None else b} BLAS thr/chunk {c}: {fmt_rate(r)}/s")
        return ", ".join(parts)

    def _timed(self, n, keep):
        if keep:
            seed = [SAMPLE_SEED, self.next_network]
            dt, self.stats = self._run(n, seed, self.stats, self.next_network)
            self.next_network += n
        else:
            dt, _ = self._run(n, [SAMPLE_SEED, 10 ** 6 + 2], None, 0)
        return dt

    def describe_config(self):
        blas, chunk = self.config
        blas = "default" if blas is None else blas
        return f"BLAS threads {blas}, chunk {chunk}"


class FloorMethod(Method):
    """fill_normal on a large array, one thread; units = normals."""

    unit = "normals"

    def __init__(self, key, label, size):
        super().__init__(key, label)
        self.buf = np.empty(size)
        self.calls = 0          # every call a new stream: never refill the same numbers

    def warmup(self):
        t0 = time.perf_counter()
        fill_normal(self.buf[:16], np.uint64(1), np.int64(0), np.uint64(0), 1.0)
        self.first_call_s = time.perf_counter() - t0

    def _timed(self, n_calls, keep):
        first = self.calls
        self.calls += n_calls
        t0 = time.perf_counter()
        for c in range(first, first + n_calls):
            fill_normal(self.buf, np.uint64(SAMPLE_SEED), np.int64(c), np.uint64(0), 1.0)
        return time.perf_counter() - t0

    @property
    def rates(self):
        """Normals per second (one thread) of each repeat."""
        return [c * self.buf.size / t for c, t in zip(self.counts, self.times)]


class ProbeMethod(Method):
    """A probe kernel from bench/probes.py, run on n networks (parallel over networks)."""

    def __init__(self, key, label, fn):
        super().__init__(key, label)
        self.fn = fn

    def warmup(self):
        t0 = time.perf_counter()
        self.fn(2)
        self.first_call_s = time.perf_counter() - t0

    def _timed(self, n, keep):
        t0 = time.perf_counter()
        self.fn(n)
        return time.perf_counter() - t0


# --------------------------------------------------------------------------------------
# Agreement
# --------------------------------------------------------------------------------------
def unique_indices(nb):
    pairs = [(a, b) for a in range(nb) for b in range(a, nb)]
    k_idx = tuple(np.array(v) for v in zip(*pairs))
    quad_d = [p + q for i, p in enumerate(pairs) for q in pairs[i:]]
    d_idx = tuple(np.array(v) for v in zip(*quad_d))
    quad_s = [(a, b, c, d) for a in range(nb) for b in range(a, nb)
              for c in range(b, nb) for d in range(c, nb)]
    s_idx = tuple(np.array(v) for v in zip(*quad_s))
    return k_idx, d_idx, s_idx


def _nnft_estimates(ens, layer, four):
    out = {"K": ens.two_point(layer)}
    if four:
        out["C_distinct"] = ens.four_point(layer, neurons="distinct")
        out["C_same"] = ens.four_point(layer, neurons="same")
    return {k: (v.value, v.error) for k, v in out.items()}


def _estimates_of(method, layer, four):
    if isinstance(method, NumpyMethod):
        return method.stats.estimates(layer)
    return _nnft_estimates(method.ensemble, layer, four)


def _n_blocks(method):
    counts = (method.stats.counts if isinstance(method, NumpyMethod)
              else method.ensemble.accumulator.block_counts)
    return int(np.count_nonzero(counts))


def agreement(a, b, four, rel_floor=1e-9):
    """z-scores of a - b for K (and the four-point functions) on every layer.

    Two versions, both with a tiny floor rel_floor * |value| added to the error (K at
    layer 1 is deterministic per network for orthogonal weights with n_1 >= n_0; without
    the floor rounding would be divided by rounding):
      z     = (a - b) / sqrt(err_a^2 + err_b^2), each side's own jackknife error;
      z_p   = the same with the error of the larger ensemble (N_big) standing in for both:
              err_small^2 := err_big^2 N_big / N_small. Under the null hypothesis (same
              law, same estimator) this is the right variance, and unlike the small
              ensemble's own jackknife it is not correlated with the small ensemble's
              estimate: with a few dozen networks a connected four-point function is
              essentially a sample covariance, whose jackknife error shrinks exactly when
              the estimate fluctuates low, which makes z heavy-tailed.
    z_p is then mapped through Student's t with (non-empty blocks of the larger
    ensemble - 1) degrees of freedom to the normal quantile of the same two-sided p-value;
    that z_pt is what the verdict uses.
    """
    from scipy import stats as sps

    nb = R1_B
    k_idx, d_idx, s_idx = unique_indices(nb)
    fields = [("K", k_idx)] + ([("C_distinct", d_idx), ("C_same", s_idx)] if four else [])
    n_a, n_b = a.next_network, b.next_network
    big_is_a = n_a >= n_b
    dof = _n_blocks(a if big_is_a else b) - 1
    scale_small = max(n_a, n_b) / min(n_a, n_b)
    est_a = [_estimates_of(a, layer, four) for layer in range(1, len(R1_WIDTHS))]
    est_b = [_estimates_of(b, layer, four) for layer in range(1, len(R1_WIDTHS))]
    out = {}
    for name, idx in fields:
        per_layer, all_z, all_zp = [], [], []
        for ea_l, eb_l in zip(est_a, est_b):
            va, ea = (t[idx] for t in ea_l[name])
            vb, eb = (t[idx] for t in eb_l[name])
            floor2 = (rel_floor * np.maximum(np.abs(va), np.abs(vb))) ** 2 + 1e-300
            z = (va - vb) / np.sqrt(ea ** 2 + eb ** 2 + floor2)
            e_big = ea if big_is_a else eb
            zp = (va - vb) / np.sqrt(e_big ** 2 * (1.0 + scale_small) + floor2)
            zpt = np.sign(zp) * sps.norm.isf(np.clip(sps.t.sf(np.abs(zp), dof), 1e-300, 0.5))
            per_layer.append(float(np.max(np.abs(zpt))))
            all_z.append(z)
            all_zp.append(zpt)
        z, zp = np.concatenate(all_z), np.concatenate(all_zp)
        out[name] = {"n": int(z.size), "max_abs_z": float(np.max(np.abs(z))),
                     "max_abs_z_pt": float(np.max(np.abs(zp))),
                     "rms_z_pt": float(np.sqrt(np.mean(zp ** 2))),
                     "n_abs_z_pt_gt_3": int(np.sum(np.abs(zp) > 3)),
                     "max_abs_z_pt_per_layer": per_layer}
    return out


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------
def fmt_rate(r):
    if r >= 100:
        return f"{r:,.0f}"
    if r >= 10:
        return f"{r:.1f}"
    return f"{r:.2f}"


def round_robin(methods, repeats, label):
    for rep in range(repeats):
        t0 = time.perf_counter()
        for m in methods:
            m.repeat()
        print(f"  {label} round {rep + 1}/{repeats}: {time.perf_counter() - t0:.1f} s",
              flush=True)


def build_probes(x):
    """Probe methods for the time breakdown of the projected (and dense) path."""
    net_g = r1_network("gaussian")
    net_o = r1_network("orthogonal")
    args_g = EnsembleRun(net_g, x, SAMPLE_SEED, backend="cpu").kernel_args
    xt, widths, cw, cb, init_g, act = args_g.network_args
    offsets = args_g.offsets
    init_o = EnsembleRun(net_o, x, SAMPLE_SEED, backend="cpu").kernel_args.init_code
    proj_normals = np.array([n_out * min(n_in, R1_B) for n_in, n_out
                             in zip(R1_WIDTHS[:-1], R1_WIDTHS[1:])], np.int64)
    dense_normals = np.array([n_out * n_in for n_in, n_out
                              in zip(R1_WIDTHS[:-1], R1_WIDTHS[1:])], np.int64)
    seed = np.uint64(SAMPLE_SEED + 2)
    sinks = {}

    def sink(n):
        if sinks.get("n", 0) < n:
            sinks["n"], sinks["a"] = n, np.empty(n)
        return sinks["a"][:n]

    def rng(counts):
        return lambda n: probes.rng_only(np.int64(0), n, seed, counts, sink(n))

    def fwd(method_code, init_code):
        """Forward pass only (probes.forward_only: the package's forward_one, reused buffers)."""
        return lambda n: probes.forward_only(method_code, n, seed, xt, widths, cw, cb, init_code,
                                             act, offsets, sink(n))

    def one_thread(fn):
        def run(n):
            with nf.thread_limit(1):
                fn(n)
        return run

    def blas1(fn):
        def run(n):
            with blas_threads(1):
                fn(n)
        return run

    pre = np.empty((32, offsets[-1]))
    cpu_moments.batch_preactivations(codes.METHOD_PROJECTED, np.int64(0), 32, seed, xt,
                                     widths, cw, cb, init_g, act, offsets, pre)
    tables = MomentLayout(R1_B, True).kernel_tables()

    def mom(four):
        n_stat = MomentLayout(R1_B, four).n_stat
        return lambda n: probes.moments_only(n, pre, widths, R1_B, offsets, *tables, four,
                                             n_stat, sink(n))

    P, D = codes.METHOD_PROJECTED, codes.METHOD_DENSE
    return [
        ProbeMethod("rng_projected", "RNG only, projected normals (16k/network)",
                    rng(proj_normals)),
        ProbeMethod("rng_projected_1thread", "RNG only, projected normals, 1 thread",
                    one_thread(rng(proj_normals))),
        ProbeMethod("forward_projected_gaussian", "forward only, projected gaussian "
                    "(forward_one)", fwd(P, init_g)),
        ProbeMethod("forward_projected_orthogonal", "forward only, projected orthogonal "
                    "(forward_one)", fwd(P, init_o)),
        ProbeMethod("moments_two_point", "moments only, two-point", mom(False)),
        ProbeMethod("moments_four_point", "moments only, two+four-point", mom(True)),
        ProbeMethod("rng_dense", "RNG only, dense normals (1.9M/network)", rng(dense_normals)),
        ProbeMethod("forward_dense_gaussian", "forward only, dense gaussian "
                    "(forward_one)", fwd(D, init_g)),
        ProbeMethod("forward_dense_gaussian_blas1", "forward only, dense gaussian, "
                    "OpenBLAS at 1 thread", blas1(fwd(D, init_g))),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short run (~40 s)")
    ap.add_argument("--json", metavar="PATH", help="write all results as JSON")
    ap.add_argument("--no-profile", action="store_true", help="skip the time breakdown")
    args = ap.parse_args(argv)

    repeats = 3 if args.quick else 5
    target = 0.5 if args.quick else 2.5          # seconds per timed repeat
    probe_repeats, probe_target = (2, 0.2) if args.quick else (3, 1.0)
    t_start = time.perf_counter()

    info = machine_info()
    threads = info["numba_threads"]
    x = r1_inputs()
    n_proj = projected_normals_per_network(R1_WIDTHS, R1_B, R1_CB)
    n_dense = dense_normals_per_network(R1_WIDTHS, R1_CB)
    print(f"# nnft_fast benchmark, R1{' (--quick)' if args.quick else ''}")
    print()
    print(f"machine: {info['cpu_model']}; {info['cpu_count']} cores "
          f"({info['cpus_usable']} usable); load avg {info['load_average_at_start'][0]:.2f}")
    print(f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
          f"nnft_fast {info['nnft_fast']}; numba threads {threads}; NumPy BLAS threads "
          f"(default) {info['numpy_blas_threads_default']}")
    print(f"R1: widths {R1_WIDTHS[0]} -> {len(R1_WIDTHS) - 1} x {R1_WIDTHS[1]}, B={R1_B}, "
          f"{R1_ACTIVATION}, C_W={R1_CW}, C_b={R1_CB}; X ~ N(0,1) seed {X_SEED}")
    print(f"normals per network: projected {n_proj:,}, dense {n_dense:,}")
    print()

    np_g = NumpyMethod("numpy_dense_gaussian", "NumPy dense gaussian", "gaussian", x)
    np_o = NumpyMethod("numpy_dense_orthogonal", "NumPy dense orthogonal", "orthogonal", x)
    nf_dense = NnftMethod("nnft_dense_gaussian", "nnft_fast dense gaussian", "gaussian",
                          "dense", ("two_point", "four_point"), x)
    nf_pg = NnftMethod("nnft_projected_gaussian", "nnft_fast projected gaussian", "gaussian",
                       "projected", ("two_point", "four_point"), x)
    nf_po = NnftMethod("nnft_projected_orthogonal", "nnft_fast projected orthogonal",
                       "orthogonal", "projected", ("two_point", "four_point"), x)
    nf_p2 = NnftMethod("nnft_projected_gaussian_two_point",
                       "nnft_fast projected gaussian, two-point only", "gaussian",
                       "projected", ("two_point",), x)
    floor = FloorMethod("rng_floor", "RNG floor (fill_normal x threads / normals per net)",
                        FLOOR_ARRAY)
    floor_big = FloorMethod("rng_floor_big_array", "RNG floor, fill_normal on a 2^21 array",
                            FLOOR_ARRAY_BIG)
    nf_dense1 = NnftMethod("nnft_dense_gaussian_blas1",
                           "nnft_fast dense gaussian, OpenBLAS at 1 thread (diagnostic)",
                           "gaussian", "dense", ("two_point", "four_point"), x, blas=1)
    nf_dense_o = NnftMethod("nnft_dense_orthogonal", "nnft_fast dense orthogonal (2+4-point)",
                            "orthogonal", "dense", ("two_point", "four_point"), x)
    methods = [np_g, np_o, nf_dense, nf_dense1, nf_dense_o, nf_pg, nf_po, nf_p2, floor,
               floor_big]

    print("## warm-up (compile / first call, not timed)")
    for m in methods:
        m.warmup()
        print(f"  {m.label}: first call {m.first_call_s:.2f} s")
    try:
        info["numba_threading_layer"] = numba.threading_layer()
    except ValueError:
        info["numba_threading_layer"] = None
    print(f"  (numba threading layer: {info['numba_threading_layer']})")
    pilot = {"gaussian": (8, 8), "orthogonal": (2, 4) if args.quick else (4, 8)}
    for m in (np_g, np_o):
        m.choose(*pilot[m.init])
        print(f"  {m.label} pilot: {m.pilot_summary()} -> using {m.describe_config()}")
    print()
    print(f"## calibration (each timed repeat ~{target} s; {repeats} interleaved repeats)")
    sizes = {np_g: (8, 2, 10 ** 4), np_o: (2, 2, 10 ** 4), nf_dense: (4, 2, 10 ** 4),
             nf_dense1: (4, 2, 10 ** 4), nf_dense_o: (2, 2, 10 ** 4),
             nf_pg: (256, 2, 10 ** 7), nf_po: (128, 2, 10 ** 7), nf_p2: (256, 2, 10 ** 7),
             floor: (16, 1, 10 ** 6), floor_big: (1, 1, 10 ** 5)}
    for m in methods:
        n_start, n_min, n_max = sizes[m]
        n = m.calibrate(target, n_start, n_min, n_max)
        unit = "calls" if isinstance(m, FloorMethod) else "networks"
        print(f"  {m.label}: {n} {unit} per repeat")
    print()
    print("## timing")
    round_robin(methods, repeats, "main")

    floor_rate = floor.rate * threads / n_proj        # networks / s
    floor_best = floor.best * threads / n_proj

    profile = None
    if not args.no_profile:
        print()
        print("## time breakdown probes (interleaved, same process)")
        pr = build_probes(x)
        for m in pr:
            m.warmup()
            m.calibrate(probe_target, 64, 2, 10 ** 7)
            print(f"  {m.label}: first call {m.first_call_s:.2f} s, {m.n_per_repeat} "
                  f"networks per repeat")
        round_robin(pr, probe_repeats, "probes")
        profile = pr

    # ------------------------------------------------------------------ agreement
    print()
    print("## statistical agreement, NumPy vs nnft_fast (networks from the timed runs; "
          "unique tensor entries, all 8 layers)")
    checks = [
        ("NumPy dense gaussian vs nnft_fast dense gaussian", np_g, nf_dense, True),
        ("NumPy dense gaussian vs nnft_fast projected gaussian", np_g, nf_pg, True),
        ("NumPy dense gaussian vs nnft_fast projected two-point only", np_g, nf_p2, False),
        ("NumPy dense orthogonal vs nnft_fast projected orthogonal", np_o, nf_po, True),
        ("nnft_fast dense gaussian vs nnft_fast projected gaussian", nf_dense, nf_pg, True),
    ]
    n_min = 16 if args.quick else 64
    for m in (np_g, np_o, nf_dense):
        extra = m.top_up(n_min)
        if extra:
            print(f"  (untimed top-up: {extra} more networks of {m.label} for the check)")
    agree = {}
    all_ok = True
    print()
    print("| comparison | N_a | N_b | observable | values | max abs z (own errors) | "
          "max abs z_pt (pooled, t) | rms z_pt | abs z_pt > 3 | verdict |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for label, a, b, four in checks:
        res = agreement(a, b, four)
        agree[label] = {"n_a": a.next_network, "n_b": b.next_network, **res}
        for name, r in res.items():
            ok = r["max_abs_z_pt"] < Z_LIMIT
            all_ok &= ok
            print(f"| {label} | {a.next_network:,} | {b.next_network:,} | {name} | {r['n']} | "
                  f"{r['max_abs_z']:.2f} | {r['max_abs_z_pt']:.2f} | {r['rms_z_pt']:.2f} | "
                  f"{r['n_abs_z_pt_gt_3']} | {'ok' if ok else 'CHECK'} |")
    print()
    print(f"(z_pt: the larger ensemble's jackknife error stands in for both sides, see "
          f"bench.compare.agreement; values are strongly correlated across entries and "
          f"layers, so rms is not chi-square distributed; verdict: max |z_pt| < {Z_LIMIT})")
    print("agreement: " + ("all consistent" if all_ok
                           else "SOME COMPARISONS FAIL - speed figures below are suspect"))

    # ------------------------------------------------------------------ speed table
    base = np_g.rate
    rows = [
        (np_g, np_g.rate, np_g.best, f"NumPy dense gaussian ({np_g.describe_config()})"),
        (np_o, np_o.rate, np_o.best, f"NumPy dense orthogonal ({np_o.describe_config()})"),
        (nf_dense, nf_dense.rate, nf_dense.best, nf_dense.label + " (2+4-point)"),
        (nf_dense1, nf_dense1.rate, nf_dense1.best, nf_dense1.label),
        (nf_dense_o, nf_dense_o.rate, nf_dense_o.best, nf_dense_o.label),
        (nf_pg, nf_pg.rate, nf_pg.best, nf_pg.label + " (2+4-point)"),
        (nf_po, nf_po.rate, nf_po.best, nf_po.label + " (2+4-point)"),
        (nf_p2, nf_p2.rate, nf_p2.best, nf_p2.label),
        (floor, floor_rate, floor_best,
         f"RNG floor: fill_normal ({FLOOR_ARRAY:,} array) {floor.rate / 1e6:.1f} M "
         f"normals/s/thread x {threads} threads / {n_proj:,} normals"),
        (floor_big, floor_big.rate * threads / n_proj, floor_big.best * threads / n_proj,
         f"(reference: same with a {FLOOR_ARRAY_BIG:,} array, {floor_big.rate / 1e6:.1f} M "
         f"normals/s/thread)"),
    ]
    print()
    print(f"## speed, R1 (networks/s: median of {repeats} interleaved repeats; best in "
          f"parentheses; ratios from medians)")
    print()
    print("| method | networks/s | ratio vs NumPy dense gaussian |")
    print("|---|---:|---:|")
    for _, r, b, label in rows:
        print(f"| {label} | {fmt_rate(r)} ({fmt_rate(b)}) | {r / base:,.2f}x |")

    t_proj_g = nf_pg.rate / np_g.rate
    t_proj_o = nf_po.rate / np_o.rate
    t_proj_o_vs_g = nf_po.rate / np_g.rate
    floor_over = floor_rate / nf_p2.rate
    dense_ratio = nf_dense.rate / np_g.rate
    four_overhead = nf_p2.rate / nf_pg.rate
    targets = [
        ("R1 projected gaussian vs NumPy dense gaussian",
         f">= {TARGETS['projected_vs_numpy']:.0f}x",
         f"{t_proj_g:,.1f}x", t_proj_g >= TARGETS["projected_vs_numpy"]),
        ("R1 projected orthogonal vs NumPy dense orthogonal",
         f">= {TARGETS['projected_vs_numpy']:.0f}x", f"{t_proj_o:,.1f}x",
         t_proj_o >= TARGETS["projected_vs_numpy"]),
        ("  (projected orthogonal vs NumPy dense *gaussian*, stricter reading)",
         f">= {TARGETS['projected_vs_numpy']:.0f}x", f"{t_proj_o_vs_g:,.1f}x",
         t_proj_o_vs_g >= TARGETS["projected_vs_numpy"]),
        ("projected two-point only vs RNG floor (floor / achieved)",
         f"<= {TARGETS['floor_over_two_point']:.1f}", f"{floor_over:.2f}",
         floor_over <= TARGETS["floor_over_two_point"]),
        ("R1 dense gaussian vs NumPy dense gaussian", f">= {TARGETS['dense_vs_numpy']:.1f}x",
         f"{dense_ratio:.2f}x", dense_ratio >= TARGETS["dense_vs_numpy"]),
        ("four-point overhead, projected gaussian: time(2+4) / time(2)",
         f"<= {TARGETS['four_point_overhead']:.2f}", f"{four_overhead:.2f}",
         four_overhead <= TARGETS["four_point_overhead"]),
    ]
    print()
    print("## targets")
    print()
    print("| target | required | measured | met |")
    print("|---|---:|---:|---|")
    for name, req, got, ok in targets:
        print(f"| {name} | {req} | {got} | {'yes' if ok else 'NO'} |")

    prof_json = None
    if profile is not None:
        full24 = 1.0 / nf_pg.rate
        print()
        print("## where the time goes (per network, median; % of the full projected "
              "gaussian 2+4-point sample time in this run)")
        print()
        print("| piece | us/network | % of projected 2+4 |")
        print("|---|---:|---:|")
        prof_json = {}
        entries = [(m.label, 1.0 / m.rate, m.key) for m in profile]
        entries += [("full nf.sample, projected gaussian, two-point", 1.0 / nf_p2.rate,
                     "sample_two_point"),
                    ("full nf.sample, projected gaussian, 2+4-point", full24, "sample_four_point"),
                    ("full nf.sample, projected orthogonal, 2+4-point", 1.0 / nf_po.rate,
                     "sample_orthogonal"),
                    ("full nf.sample, dense gaussian, 2+4-point", 1.0 / nf_dense.rate,
                     "sample_dense")]
        for label, t, key in entries:
            prof_json[key] = t
            print(f"| {label} | {t * 1e6:,.1f} | {100 * t / full24:,.0f}% |")
        by = {m.key: 1.0 / m.rate for m in profile}
        fwd_g = by["forward_projected_gaussian"]
        print()
        print(f"projected gaussian, per network: RNG {by['rng_projected'] * 1e6:.1f} us + "
              f"rest of the forward pass {(fwd_g - by['rng_projected']) * 1e6:.1f} us (QR of S, "
              f"small matmul, activation, allocation) + two-point moments "
              f"{by['moments_two_point'] * 1e6:.1f} us + four-point extra "
              f"{(by['moments_four_point'] - by['moments_two_point']) * 1e6:.1f} us = "
              f"{(fwd_g + by['moments_four_point']) * 1e6:.1f} us; full sample "
              f"{full24 * 1e6:.1f} us")
        print(f"RNG parallel efficiency: 1 thread {by['rng_projected_1thread'] * 1e6:.1f} us vs "
              f"{threads} threads {by['rng_projected'] * 1e6:.1f} us per network -> speed-up "
              f"{by['rng_projected_1thread'] / by['rng_projected']:.2f} of an ideal {threads} "
              f"(the floor assumes the ideal); 1-thread projected RNG runs at "
              f"{n_proj / by['rng_projected_1thread'] / 1e6:.1f} M normals/s vs "
              f"{floor.rate / 1e6:.1f} M/s for fill_normal on a {FLOOR_ARRAY:,} array "
              f"(one call per layer of {n_proj // (len(R1_WIDTHS) - 1):,} normals)")
        print(f"projected two-point only: {1e6 / nf_p2.rate:.1f} us/network = "
              f"{(1.0 / nf_p2.rate) / by['rng_projected']:.2f}x the measured parallel "
              f"RNG-only time and {floor_over:.2f}x the floor ({1e6 / floor_rate:.1f} us)")
        print(f"dense gaussian, per network: RNG {by['rng_dense'] * 1e3:.2f} ms; forward "
              f"{by['forward_dense_gaussian'] * 1e3:.2f} ms (OpenBLAS at 1 thread: "
              f"{by['forward_dense_gaussian_blas1'] * 1e3:.2f} ms); full sample "
              f"{1e3 / nf_dense.rate:.2f} ms (OpenBLAS at 1 thread: {1e3 / nf_dense1.rate:.2f}"
              f" ms); NumPy dense baseline {1e3 / np_g.rate:.2f} ms")

    elapsed = time.perf_counter() - t_start
    print()
    print(f"total wall time {elapsed:.0f} s; load avg at end "
          f"{os.getloadavg()[0]:.2f}")

    if args.json:
        result = {
            "machine": info,
            "config": {"widths": list(R1_WIDTHS), "B": R1_B, "cw": R1_CW, "cb": R1_CB,
                       "activation": R1_ACTIVATION, "x_seed": X_SEED,
                       "sample_seed": SAMPLE_SEED, "quick": args.quick,
                       "repeats": repeats, "seconds_per_repeat": target,
                       "normals_per_network_projected": n_proj,
                       "normals_per_network_dense": n_dense},
            "methods": {m.key: {"label": m.label, "unit": m.unit,
                                "n_per_repeat": m.n_per_repeat, "times_s": m.times,
                                "rates": m.rates, "median_rate": m.rate, "best_rate": m.best,
                                "first_call_s": m.first_call_s} for m in methods},
            "numpy_configs": {m.key: {"chosen": m.describe_config(),
                                      "pilot_rates": {f"blas={b},chunk={c}": r for (b, c), r
                                                      in m.config_rates.items()}}
                              for m in (np_g, np_o)},
            "rng_floor_networks_per_s": floor_rate,
            "ratios_vs_numpy_dense_gaussian": {m.key: r / base for m, r, _, _ in rows},
            "targets": [{"target": n, "required": q, "measured": g, "met": bool(o)}
                        for n, q, g, o in targets],
            "agreement": agree,
            "agreement_ok": bool(all_ok),
            "profile_seconds_per_network": prof_json,
            "wall_time_s": elapsed,
        }
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
