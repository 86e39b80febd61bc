"""pytest-benchmark suite for R1 (docs/performance.md#r1). Not part of the normal test suite
(``testpaths`` is tests/); run with

    python -m pytest bench/ --benchmark-only
    python -m pytest bench/ --benchmark-disable -q     # every case once, untimed

Groups: "R1 nf.sample" (whole path, per ``backend``: cpu, and cuda where a GPU is
visible; bench/conftest.py), "R1 pieces" (forward only, moments only, accumulate, RNG
only), "RNG and Haar" (fill_normal, batch_haar_matrices / nf.haar_orthogonal), "cos-net
fields" (one batch of bench.configs F1 and F2). Every
kernel is compiled (or loaded from the Numba disk cache) by a warm-up call outside the
timed region; first-call and cold-compile times are measured separately by
``test_first_call_*[sample|kernels]``, which time a fresh interpreter and put the
per-kernel figures in ``benchmark.extra_info``. On a shared machine compare only figures
from one session (e.g. ``--benchmark-compare`` against a saved run on the same machine).
"""

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

import nnft_fast as nf  # noqa: E402
from nnft_fast.accumulators import MomentAccumulator, MomentLayout  # noqa: E402
from nnft_fast.field_run import FieldRun  # noqa: E402
from nnft_fast.kernels.cpu import moments as cpu_moments  # noqa: E402
from nnft_fast.kernels.cpu.haar import batch_haar_matrices  # noqa: E402
from nnft_fast.kernels.cpu.rng import fill_normal  # noqa: E402
from nnft_fast.run import STATS_BYTES_PER_BATCH  # noqa: E402

from bench.configs import F1, F2  # noqa: E402
from bench.harness import run_python  # noqa: E402


@pytest.mark.parametrize(
    "init,method,n_networks,rounds",
    [
        ("gaussian", "projected", 256, 8),
        ("orthogonal", "projected", 128, 8),
        ("gaussian", "dense", 4, 3),
    ],
)
def test_r1_sample(
    benchmark, record, backend, r1, r1_inputs, seed, init, method, n_networks, rounds
):
    """nf.sample on R1, two- and four-point observables (all Numba threads on the CPU)."""
    net = r1.network(init)
    kw = {"method": method, "backend": backend}
    nf.sample(net, r1_inputs, 2, seed=seed + 1, **kw)  # compile / cache load
    benchmark.group = "R1 nf.sample"
    benchmark.pedantic(
        nf.sample,
        args=(net, r1_inputs, n_networks),
        kwargs={"seed": seed, **kw},
        rounds=rounds,
        iterations=1,
        warmup_rounds=1,
    )
    record(n_networks)


def test_r1_sample_two_point_only(benchmark, record, backend, r1, r1_inputs, seed):
    net = r1.network("gaussian")
    kw = {"method": "projected", "observables": ("two_point",), "backend": backend}
    nf.sample(net, r1_inputs, 2, seed=seed + 1, **kw)
    benchmark.group = "R1 nf.sample"
    n = 256
    benchmark.pedantic(
        nf.sample,
        args=(net, r1_inputs, n),
        kwargs={"seed": seed, **kw},
        rounds=8,
        iterations=1,
        warmup_rounds=1,
    )
    record(n)


@pytest.mark.parametrize("four_point", [False, True], ids=["two_point", "two_and_four_point"])
def test_r1_moments_only(benchmark, record, r1_probes, four_point):
    """The per-layer statistics kernel alone, on precomputed R1 preactivations."""
    n = 1024
    run = r1_probes.moments(four_point)
    run(n)
    benchmark.group = "R1 pieces"
    benchmark.pedantic(run, args=(n,), rounds=10, iterations=1, warmup_rounds=1)
    record(n)


@pytest.mark.parametrize(
    "init,method,n_networks",
    [
        ("gaussian", "projected", 512),
        ("orthogonal", "projected", 256),
        ("gaussian", "dense", 4),
    ],
)
def test_r1_forward_only(benchmark, record, r1_probes, init, method, n_networks):
    """The forward pass alone (``probes.forward_only``: the package's ``forward_one`` with
    buffers reused per chunk, as in ``batch_statistics``), no statistics, all threads."""
    run = r1_probes.forward(method, init)
    run(n_networks)  # compile (not cached)
    benchmark.group = "R1 pieces"
    benchmark.pedantic(
        run,
        args=(n_networks,),
        rounds=8 if method == "projected" else 3,
        iterations=1,
        warmup_rounds=1,
    )
    record(n_networks)


@pytest.mark.parametrize("entry", ["add_to_blocks", "MomentAccumulator.add"])
def test_r1_accumulate(benchmark, record, r1, seed, entry):
    """Adding one default-size batch of per-network statistics (what ``nf.sample`` hands
    the accumulator per batch, see EnsembleRun.default_batch_size) to the 64 block sums:
    the serial ``kernels.cpu.moments.add_to_blocks`` kernel, and the accumulator method
    around it."""
    n_stat = MomentLayout(r1.n_inputs, True).n_stat
    batch = STATS_BYTES_PER_BATCH // (r1.n_layers * n_stat * 8)
    stats = np.random.default_rng(seed).standard_normal((batch, r1.n_layers, n_stat))
    acc = MomentAccumulator(r1.widths, r1.n_inputs, True)
    firsts = iter(range(0, 10**15, stats.shape[0]))

    if entry == "add_to_blocks":

        def run():
            cpu_moments.add_to_blocks(
                stats, np.int64(next(firsts)), acc.block_sums, acc.block_counts
            )
    else:

        def run():
            acc.add(stats, next(firsts))

    run()
    benchmark.group = "R1 pieces"
    benchmark.pedantic(run, rounds=20, iterations=1, warmup_rounds=2)
    record(stats.shape[0])
    benchmark.extra_info["bytes_per_round"] = stats.nbytes


def test_r1_rng_only_projected(benchmark, record, r1, r1_probes):
    """Only the random normals of the projected path (16k per network), all threads."""
    n = 512
    run = r1_probes.rng("projected")
    run(n)
    benchmark.group = "R1 pieces"
    benchmark.pedantic(run, args=(n,), rounds=10, iterations=1, warmup_rounds=1)
    record(n)
    benchmark.extra_info["normals_per_network"] = r1.normals_per_network("projected")


@pytest.mark.parametrize("log2_size", [12, 16, 20])
def test_fill_normal(benchmark, record, seed, log2_size):
    """kernels.cpu.rng.fill_normal on 2^k doubles, one thread (serial kernel).

    Every call draws a new stream (network index counter): refilling the same numbers
    lets the branch predictor learn libm's paths and flatters small arrays by ~1.7x.
    """
    buf = np.empty(1 << log2_size)
    counter = iter(range(10**9))

    def run():
        fill_normal(buf, np.uint64(seed), np.int64(next(counter)), np.uint64(0), 1.0)

    run()
    benchmark.group = "RNG and Haar"
    benchmark.pedantic(run, rounds=20, iterations=max(1, 2 ** (16 - log2_size)), warmup_rounds=2)
    record(buf.size, "normals")
    if benchmark.stats is not None:
        benchmark.extra_info["ns_per_normal_median"] = 1e9 * benchmark.stats.stats.median / buf.size


def test_haar_orthogonal_512(benchmark, seed):
    """nf.haar_orthogonal(512, 512, 1): one Haar matrix (Householder QR + sign fix)."""
    nf.haar_orthogonal(512, 512, 1, seed=seed + 1)  # compile (not cached)
    benchmark.group = "RNG and Haar"
    benchmark.pedantic(
        nf.haar_orthogonal,
        args=(512, 512, 1),
        kwargs={"seed": seed},
        rounds=5,
        iterations=1,
        warmup_rounds=1,
    )


@pytest.mark.parametrize(
    "n_rows,n_cols,count,rounds",
    [
        (512, 4, 1024, 10),
        (512, 512, 2, 5),
    ],
    ids=["frames_512x4", "matrices_512x512"],
)
def test_batch_haar_matrices(benchmark, record, seed, n_rows, n_cols, count, rounds):
    """kernels.cpu.haar.batch_haar_matrices, parallel over matrices: 512 x 4 Haar frames
    (a projected R1 layer's Q factor, B = 4) and 512 x 512 Haar matrices (dense
    orthogonal). Every round draws new matrices (network index counter)."""
    out = np.empty((count, n_rows, n_cols))
    firsts = iter(range(0, 10**15, count))

    def run():
        batch_haar_matrices(np.uint64(seed), np.int64(next(firsts)), np.uint64(0), out)

    run()
    benchmark.group = "RNG and Haar"
    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)
    record(count, "matrices")


@pytest.mark.parametrize("cfg", [F1, F2], ids=lambda cfg: cfg.key)
def test_field_batch(benchmark, record, seed, cfg):
    """One default-size batch of a cos-net field config (``FieldCpuEngine.compute``, i.e.
    kernels.cpu.field.batch_field_statistics: draw, field, statistics), all threads; new
    networks every round."""
    run = FieldRun(cfg.network(), cfg.inputs(), seed, observables=cfg.observables, backend="cpu")
    n = run.default_batch_size(10**6)
    firsts = iter(range(0, 10**15, n))
    run.engine.compute(0, 2)  # compile / cache load
    benchmark.group = "cos-net fields"
    benchmark.pedantic(
        lambda: run.engine.compute(next(firsts), n), rounds=5, iterations=1, warmup_rounds=1
    )
    record(n)
    benchmark.extra_info["cosines_per_network"] = cfg.cosines_per_network


_FIRST_CALL_SAMPLE = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import nnft_fast as nf
from bench.configs import R1
out = {"import_s": time.perf_counter() - t0}
x = R1.inputs()
for key, init, method in (("projected_gaussian", "gaussian", "projected"),
                          ("projected_orthogonal", "orthogonal", "projected"),
                          ("dense_gaussian", "gaussian", "dense")):
    net = R1.network(init)
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

# Kernels one by one, leaves first: each figure is the extra compile / cache load of that
# kernel given the ones above it (fill_normal is inside Haar, Haar inside the forward).
# probes.forward_only is a bench kernel and never cached (parallel, docs/architecture.md#numba).
_FIRST_CALL_KERNELS = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
from nnft_fast.accumulators import MomentAccumulator, MomentLayout
from nnft_fast.kernels.cpu import codes, moments
from nnft_fast.kernels.cpu.haar import batch_haar_matrices
from nnft_fast.kernels.cpu.rng import fill_normal
from bench import probes
from bench.configs import R1
out = {"import_s": time.perf_counter() - t0}


def twice(key, fn):
    for call in ("first", "second"):
        t = time.perf_counter()
        fn()
        out[f"{key}_{call}_call_s"] = time.perf_counter() - t


seed, zero = np.uint64(1), np.int64(0)
buf = np.empty(1 << 16)
twice("rng_fill_normal", lambda: fill_normal(buf, seed, zero, np.uint64(0), 1.0))
frames, mats = np.empty((64, 512, 4)), np.empty((1, 512, 512))
twice("haar_frames_512x4", lambda: batch_haar_matrices(seed, zero, np.uint64(0), frames))
twice("haar_matrix_512x512", lambda: batch_haar_matrices(seed, zero, np.uint64(0), mats))
args = probes.kernel_args(R1, "gaussian", R1.inputs(), 1)
net_args, offsets = args.network_args, args.offsets
pre = np.empty((4, offsets[-1]))
for key, code in (("projected", codes.METHOD_PROJECTED), ("dense", codes.METHOD_DENSE)):
    twice(f"forward_batch_preactivations_{key}", lambda: moments.batch_preactivations(
        code, zero, 4, seed, *net_args, offsets, pre, args.xi, args.gamma))
sink = np.empty(4)
twice("forward_only_probe", lambda: probes.forward_only(
    codes.METHOD_PROJECTED, 4, seed, *net_args, offsets, sink, args.xi, args.gamma))
acc = MomentAccumulator(R1.widths, R1.n_inputs, True)
stats = np.zeros((16, R1.n_layers, MomentLayout(R1.n_inputs, True).n_stat))
twice("accumulate_add_to_blocks", lambda: acc.add(stats, 0))
print(json.dumps(out))
"""

_FIRST_CALL = {"sample": _FIRST_CALL_SAMPLE, "kernels": _FIRST_CALL_KERNELS}


def _fresh_interpreter(group, cache_dir):
    return run_python(_FIRST_CALL[group], env={"NUMBA_CACHE_DIR": str(cache_dir)})


@pytest.mark.parametrize("group", list(_FIRST_CALL))
def test_first_call_cold_cache(benchmark, tmp_path, group):
    """Fresh interpreter, empty Numba cache: import + first call (the compile time a new
    user sees) of every R1 nf.sample path ("sample") or of the kernels one by one
    ("kernels": RNG, Haar, forward, accumulate). The timed value is the whole subprocess."""
    info = {}

    def run():
        info.update(_fresh_interpreter(group, tmp_path / "numba_cache"))

    benchmark.group = "first call (fresh interpreter)"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(info)


@pytest.mark.parametrize("group", list(_FIRST_CALL))
def test_first_call_warm_cache(benchmark, tmp_path, group):
    """Fresh interpreter, Numba cache already filled (second start-up)."""
    cache = tmp_path / "numba_cache"
    _fresh_interpreter(group, cache)  # fill the cache
    info = {}

    def run():
        info.update(_fresh_interpreter(group, cache))

    benchmark.group = "first call (fresh interpreter)"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(info)
