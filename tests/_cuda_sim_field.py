"""Run under NUMBA_ENABLE_CUDASIM=1 by test_cuda_field.py: the CUDA cos-net field kernels
on the simulator against the CPU kernels. Prints JSON {case: difference}: parameters
relative entry by entry, fields, statistics and raw outputs relative to the largest
reference entry, device block sums absolute; "control ..." cases compare with another
network and must differ."""

import json
import sys

# The simulator runs a block's threads as Python threads, polled by the main thread; a
# short GIL switch interval makes each syncthreads ~10x faster than the default 5 ms.
sys.setswitchinterval(1e-4)

import numpy as np  # noqa: E402

import nnft_fast as nf  # noqa: E402
from nnft_fast.field_run import FieldRun  # noqa: E402
from nnft_fast.gpu_field_engine import FieldCudaEngine  # noqa: E402
from nnft_fast.kernels.cpu import codes  # noqa: E402
from nnft_fast.kernels.cpu.moments import add_to_blocks  # noqa: E402
from _cuda_sim_target import lock_shared_arrays  # noqa: E402

FIRST, COUNT, SEED = 5, 2, 11
N = 12  # > THREADS = 8 on the simulator: threads stride over features
QUADS = [[0, 1, 2, 3], [0, 0, 1, 2], [3, 3, 3, 3]]
SEXTS = [[0, 1, 2, 3, 0, 1], [0, 0, 1, 1, 2, 2]]


def points(dim, nb):
    return np.random.default_rng(dim * 100 + nb).uniform(-1.5, 1.5, size=(nb, dim))


# (name, CosNet, B, observables, quadruples, sextuples)
CASES = (
    ("d1 a0", nf.CosNet(1, N, mass=0.7, cutoff=6.0, n_out=2), 5, None, QUADS, SEXTS),
    (
        "d1 a0.5 table constant",
        nf.CosNet(1, N, mass=0.7, cutoff=6.0, alpha=0.5, amplitude="constant", n_out=2),
        4,
        None,
        QUADS,
        SEXTS,
    ),
    (
        "d2 a0 constant",
        nf.CosNet(2, N, mass=1.0, cutoff=4.0, amplitude="constant", n_out=2),
        5,
        None,
        QUADS,
        None,
    ),
    ("d2 a0.5", nf.CosNet(2, N, mass=1.0, cutoff=4.0, alpha=0.5, n_out=2), 4, None, None, SEXTS),
    ("d3 a0", nf.CosNet(3, N, mass=0.5, cutoff=5.0, n_out=2), 5, None, QUADS, SEXTS),
    (
        "d3 a-1 uniform constant",
        nf.CosNet(3, N, mass=0.5, cutoff=5.0, alpha=-1.0, amplitude="constant", n_out=2),
        4,
        None,
        QUADS,
        SEXTS,
    ),
    (
        "d4 a0.5 table",
        nf.CosNet(4, N, mass=1.0, cutoff=3.0, alpha=0.5, n_out=2),
        4,
        None,
        QUADS,
        SEXTS,
    ),
    (
        "d4 a-1 uniform one output",
        nf.CosNet(4, 9, mass=1.0, cutoff=3.0, alpha=-1.0),
        3,
        None,
        [[0, 1, 2, 2]],
        None,
    ),
    ("d4 a0 table", nf.CosNet(4, N, mass=1.0, cutoff=3.0, n_out=2), 3, None, None, None),
    (
        "gaussian momenta",
        nf.CosNet.gaussian_kernel(2, N, length=0.8, variance=1.3, amplitude="constant", n_out=3),
        4,
        None,
        QUADS,
        SEXTS,
    ),
    (  # B > FULL_FOUR_POINT_MAX_POINTS and > THREADS: two-point statistics and tuples
        "d1 B=40 two-point",
        nf.CosNet(1, 5, mass=0.7, cutoff=6.0, alpha=0.5, n_out=2),
        40,
        ("two_point",),
        [[0, 17, 33, 39]],
        [[1, 2, 3, 38, 38, 39]],
    ),
)
EXPECTED_CODES = {
    codes.RADIAL_TABLE,
    codes.RADIAL_UNIFORM,
    codes.RADIAL_D1_ALPHA0,
    codes.RADIAL_D2,
    codes.RADIAL_D3_ALPHA0,
    codes.RADIAL_GAUSSIAN,
}


def relative(got, ref):
    """Entry by entry |got - ref| / |ref| (all entries nonzero)."""
    return float(np.max(np.abs(got - ref) / np.abs(ref)))


def rel_largest(got, ref):
    """max |got - ref| / max |ref|."""
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


def compare(name, net, nb, observables, quadruples, sextuples):
    run = FieldRun(
        net,
        points(net.dim, nb),
        SEED,
        observables=observables,
        save={1: net.n_out},
        quadruples=quadruples,
        sextuples=sextuples,
        backend="cpu",
    )
    cpu = run._cpu_engine
    gpu = FieldCudaEngine(run.kernel_args)
    out = {}
    for label, got, ref in zip(
        ("omega", "beta", "amp"), gpu.features(FIRST, COUNT), cpu.features(FIRST, COUNT)
    ):
        out[f"{name} {label}"] = relative(got, ref)
    out[f"{name} field"] = rel_largest(gpu.fields(FIRST, COUNT), cpu.fields(FIRST, COUNT))
    ref, ref_raw, _ = cpu.compute(FIRST, COUNT)
    stats, raw, ntk = gpu.compute(FIRST, COUNT)
    assert ntk is None and stats.shape == ref.shape and raw.shape == ref_raw.shape
    got = stats.copy_to_host()
    n_moment = run.layout.n_stat
    out[f"{name} stats"] = rel_largest(got[..., :n_moment], ref[..., :n_moment])
    if run.tuples.n_stat:
        out[f"{name} tuples"] = rel_largest(got[..., n_moment:], ref[..., n_moment:])
    out[f"{name} raw"] = rel_largest(raw, ref_raw)
    # the accumulators add the device statistics on the device, in the CPU's order
    sums, counts = np.full((4,) + ref.shape[1:], 0.5), np.arange(4)
    want_sums, want_counts = sums.copy(), counts.copy()
    stats.add_to_blocks(np.int64(FIRST), sums, counts)
    add_to_blocks(got, np.int64(FIRST), want_sums, want_counts)
    out[f"{name} blocks"] = float(
        np.max(np.abs(sums - want_sums)) + np.max(np.abs(counts - want_counts))
    )
    # power: the next networks differ
    other = cpu.compute(FIRST + 1, COUNT)[0]
    out[f"control {name}"] = rel_largest(got[..., :n_moment], other[..., :n_moment])
    return out


def dispatch():
    """nf.sample(backend="cuda") end to end against backend="cpu" (batches of 2)."""
    net = nf.CosNet(2, N, mass=1.0, cutoff=4.0, alpha=0.5, amplitude="constant", n_out=2)
    x = points(2, 4)
    kw = dict(quadruples=QUADS, sextuples=SEXTS, batch_size=2)
    ens = {b: nf.sample(net, x, 5, SEED, backend=b, **kw) for b in ("cuda", "cpu")}
    assert ens["cuda"].backend == "cuda" and ens["cpu"].backend == "cpu"
    gpu, cpu = ens["cuda"].accumulator, ens["cpu"].accumulator
    assert np.array_equal(gpu.block_counts, cpu.block_counts)
    return {"dispatch sums": rel_largest(gpu.block_sums, cpu.block_sums)}


def large_b():
    """B = 1024 points (no limit on B but device memory): the two-point statistics,
    a quadruple and the raw field of one network."""
    net = nf.CosNet(1, 3, mass=0.7, cutoff=6.0, alpha=0.5)
    run = FieldRun(
        net,
        np.linspace(-3.0, 3.0, 1024)[:, None],
        SEED,
        observables=("two_point",),
        save={1: 1},
        quadruples=[[0, 500, 1000, 1023]],
        backend="cpu",
    )
    ref, ref_raw, _ = run._cpu_engine.compute(FIRST, 1)
    stats, raw, _ = FieldCudaEngine(run.kernel_args).compute(FIRST, 1)
    return {
        "B=1024 stats": rel_largest(stats.copy_to_host(), ref),
        "B=1024 raw": rel_largest(raw, ref_raw),
    }


def main():
    seen = {net.radial.code for _, net, *_ in CASES}
    assert seen == EXPECTED_CODES, seen
    lock_shared_arrays()
    out = {}
    for case in CASES:
        out.update(compare(*case))
    out.update(large_b())
    out.update(dispatch())
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
