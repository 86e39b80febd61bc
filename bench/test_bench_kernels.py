"""pytest-benchmark suite for R1 (DESIGN.md §6). Not part of the normal test suite
(``testpaths`` is tests/); run with

    python -m pytest bench/ --benchmark-only

Every kernel is compiled (or loaded from the Numba disk cache) by a warm-up call outside
the timed region; first-call and cold-compile times are measured separately by
``test_first_call_*``, which time a fresh interpreter and put the per-kernel figures in
``benchmark.extra_info``. On a shared machine compare only figures from one session
(e.g. ``--benchmark-compare`` against a saved run on the same machine).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

import nnft_fast as nf  # noqa: E402
from nnft_fast.accumulators import MomentLayout  # noqa: E402
from nnft_fast.kernels.cpu import moments as cpu_moments  # noqa: E402
from nnft_fast.kernels.cpu.rng import fill_normal  # noqa: E402
from nnft_fast.sampling import _kernel_args  # noqa: E402

from bench import probes  # noqa: E402
from bench.compare import (R1_B, R1_WIDTHS, projected_normals_per_network,  # noqa: E402
                           r1_inputs, r1_network)

REPO = Path(__file__).resolve().parents[1]
SEED = 11


@pytest.fixture(scope="module")
def x():
    return r1_inputs()


def _per_network(benchmark, n_networks):
    """Record networks/s from the median round time."""
    benchmark.extra_info["networks_per_round"] = n_networks
    benchmark.extra_info["networks_per_s_median"] = n_networks / benchmark.stats.stats.median


@pytest.mark.parametrize("init,method,n_networks,rounds", [
    ("gaussian", "projected", 256, 8),
    ("orthogonal", "projected", 128, 8),
    ("gaussian", "dense", 4, 3),
])
def test_r1_sample(benchmark, x, init, method, n_networks, rounds):
    """nf.sample on R1, two- and four-point observables, all Numba threads."""
    net = r1_network(init)
    nf.sample(net, x, 2, seed=SEED + 1, method=method)              # compile / cache load
    benchmark.group = "R1 nf.sample"
    benchmark.pedantic(nf.sample, args=(net, x, n_networks),
                       kwargs={"seed": SEED, "method": method},
                       rounds=rounds, iterations=1, warmup_rounds=1)
    _per_network(benchmark, n_networks)


def test_r1_sample_two_point_only(benchmark, x):
    net = r1_network("gaussian")
    nf.sample(net, x, 2, seed=SEED + 1, observables=("two_point",))
    benchmark.group = "R1 nf.sample"
    n = 256
    benchmark.pedantic(nf.sample, args=(net, x, n),
                       kwargs={"seed": SEED, "method": "projected",
                               "observables": ("two_point",)},
                       rounds=8, iterations=1, warmup_rounds=1)
    _per_network(benchmark, n)


@pytest.mark.parametrize("four_point", [False, True], ids=["two_point", "two_and_four_point"])
def test_r1_moments_only(benchmark, x, four_point):
    """The per-layer statistics kernel alone, on precomputed R1 preactivations."""
    net = r1_network("gaussian")
    (xt, widths, cw, cb, init_code, act), offsets = _kernel_args(net, x)
    pre = np.empty((32, offsets[-1]))
    cpu_moments.batch_preactivations(cpu_moments.METHOD_PROJECTED, np.int64(0), 32,
                                     np.uint64(SEED), xt, widths, cw, cb, init_code, act,
                                     offsets, pre)
    tables = MomentLayout(R1_B, True).kernel_tables()
    n_stat = MomentLayout(R1_B, four_point).n_stat
    n = 1024
    sink = np.empty(n)

    def run():
        probes.moments_only(n, pre, widths, R1_B, offsets, *tables, four_point, n_stat, sink)

    run()
    benchmark.group = "R1 pieces"
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    _per_network(benchmark, n)


def test_r1_rng_only_projected(benchmark):
    """Only the random normals of the projected path (16k per network), all threads."""
    counts = np.array([n_out * min(n_in, R1_B) for n_in, n_out
                       in zip(R1_WIDTHS[:-1], R1_WIDTHS[1:])], np.int64)
    n = 512
    sink = np.empty(n)

    def run():
        probes.rng_only(np.int64(0), n, np.uint64(SEED), counts, sink)

    run()
    benchmark.group = "R1 pieces"
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    _per_network(benchmark, n)
    benchmark.extra_info["normals_per_network"] = projected_normals_per_network(
        R1_WIDTHS, R1_B, 0.0)


@pytest.mark.parametrize("log2_size", [12, 16, 20])
def test_fill_normal(benchmark, log2_size):
    """kernels.cpu.rng.fill_normal on 2^k doubles, one thread (serial kernel).

    Every call draws a new stream (network index counter): refilling the same numbers
    lets the branch predictor learn libm's paths and flatters small arrays by ~1.7x.
    """
    buf = np.empty(1 << log2_size)
    counter = iter(range(10 ** 9))

    def run():
        fill_normal(buf, np.uint64(SEED), np.int64(next(counter)), np.uint64(0), 1.0)

    run()
    benchmark.group = "RNG and Haar"
    benchmark.pedantic(run, rounds=20, iterations=max(1, 2 ** (16 - log2_size)),
                       warmup_rounds=2)
    benchmark.extra_info["normals_per_s_median"] = buf.size / benchmark.stats.stats.median
    benchmark.extra_info["ns_per_normal_median"] = 1e9 * benchmark.stats.stats.median / buf.size


def test_haar_orthogonal_512(benchmark):
    """nf.haar_orthogonal(512, 512, 1): one Haar matrix (Householder QR + sign fix)."""
    nf.haar_orthogonal(512, 512, 1, seed=SEED + 1)                 # compile (not cached)
    benchmark.group = "RNG and Haar"
    benchmark.pedantic(nf.haar_orthogonal, args=(512, 512, 1), kwargs={"seed": SEED},
                       rounds=5, iterations=1, warmup_rounds=1)


_FIRST_CALL = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import nnft_fast as nf
from bench.compare import r1_inputs, r1_network
out = {"import_s": time.perf_counter() - t0}
x = r1_inputs()
for key, init, method in (("projected_gaussian", "gaussian", "projected"),
                          ("projected_orthogonal", "orthogonal", "projected"),
                          ("dense_gaussian", "gaussian", "dense")):
    net = r1_network(init)
    for call in ("first", "second"):
        t = time.perf_counter()
        nf.sample(net, x, 2, method=method)
        out[f"{key}_{call}_call_s"] = time.perf_counter() - t
for call in ("first", "second"):
    t = time.perf_counter()
    nf.haar_orthogonal(512, 512, 1)
    out[f"haar_orthogonal_{call}_call_s"] = time.perf_counter() - t
print(json.dumps(out))
"""


def _fresh_interpreter(cache_dir=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    res = subprocess.run([sys.executable, "-c", _FIRST_CALL], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_first_call_cold_cache(benchmark, tmp_path):
    """Fresh interpreter, empty Numba cache: import + first call of every R1 path (the
    compile time a new user sees). The timed value is the whole subprocess."""
    info = {}

    def run():
        info.update(_fresh_interpreter(tmp_path / "numba_cache"))

    benchmark.group = "first call (fresh interpreter)"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(info)


def test_first_call_warm_cache(benchmark, tmp_path):
    """Fresh interpreter, Numba cache already filled (second start-up)."""
    cache = tmp_path / "numba_cache"
    _fresh_interpreter(cache)                                        # fill the cache
    info = {}

    def run():
        info.update(_fresh_interpreter(cache))

    benchmark.group = "first call (fresh interpreter)"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(info)
