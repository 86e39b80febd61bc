"""Run under NUMBA_ENABLE_CUDASIM=1 by test_cuda_deformation.py: the CUDA kernels of
deformed cos-net fields on the simulator against the CPU kernels. Prints JSON {case:
difference}: the free statistics relative to their largest entry, the interactions s
entry by entry, the deformed accumulators' block sums relative to their largest entry and
their shifts absolute, nf.sample's first-order and reweighted estimates relative to their
largest entry; "control ..." cases compare with other networks and must differ. The
refusals of user functions on backend="cuda" are asserted here (the simulator is the
only CUDA backend a test without a GPU has)."""

import json
import sys

# As in _cuda_sim_field.py: a short GIL switch interval speeds up the simulator's
# syncthreads ~10x.
sys.setswitchinterval(1e-4)

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

import nnft_fast as nf  # noqa: E402
from nnft_fast.field_run import FieldRun  # noqa: E402
from nnft_fast.gpu_field_engine import FieldCudaEngine  # noqa: E402
from _cuda_sim_target import lock_shared_arrays  # noqa: E402

FIRST, COUNT, SEED = 5, 3, 11
N = 10  # > THREADS = 8 on the simulator: threads stride over features and nodes
COUPLING = 0.7  # large enough that the weights differ between networks
QUADS = [[0, 1, 2, 2]]


def points(dim, nb):
    return np.random.default_rng(dim * 10 + nb).uniform(-1.0, 1.0, size=(nb, dim))


# (name, CosNet, B, deformation): Q = 9 and 12 nodes (> THREADS: threads stride over them)
CASES = (
    ("d1 phi4", nf.CosNet(1, N, mass=0.7, cutoff=3.0, n_out=2), 3, nf.Phi4(COUPLING, (-1, 1), 9)),
    (
        "d2 local phi4 constant",
        nf.CosNet(2, N, mass=1.0, cutoff=2.0, alpha=0.5, amplitude="constant"),
        3,
        nf.LocalInteraction(COUPLING, "phi4", [(-1.0, 0.5), (-0.5, 1.0)], nodes=(4, 3)),
    ),
)


def rel_largest(got, ref):
    """max |got - ref| / max |ref|."""
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


def compare(name, net, nb, deformation):
    """Per-network statistics and interactions of the engines, then the deformed
    accumulators fed by each."""
    run = FieldRun(
        net, points(net.dim, nb), SEED, quadruples=QUADS, deformation=deformation, backend="cpu"
    )
    ref, _, _ = run._cpu_engine.compute(FIRST, COUNT)
    got, _, ntk = FieldCudaEngine(run.kernel_args).compute(FIRST, COUNT)
    assert ntk is None and isinstance(got, np.ndarray) and got.shape == ref.shape
    out = {
        f"{name} stats": rel_largest(got[..., :-1], ref[..., :-1]),
        f"{name} s": float(np.max(np.abs(got[..., -1] / ref[..., -1] - 1.0))),
    }
    accumulators = []
    for stats in (got, ref):
        acc = run.new_accumulator()
        acc.add(stats, FIRST)
        accumulators.append(acc)
    gpu, cpu = accumulators
    assert np.array_equal(gpu.block_counts, cpu.block_counts)
    out[f"{name} blocks"] = rel_largest(gpu.block_sums, cpu.block_sums)
    out[f"{name} shifts"] = float(np.max(np.abs(gpu.block_shift - cpu.block_shift)))
    other = run._cpu_engine.compute(FIRST + COUNT, COUNT)[0]
    out[f"control {name}"] = float(np.max(np.abs(got[..., -1] / other[..., -1] - 1.0)))
    return out


def dispatch():
    """nf.sample(backend="cuda") end to end against backend="cpu" (batches of 3): the
    deformed estimates of the first case."""
    _, net, nb, deformation = CASES[0]
    x = points(net.dim, nb)
    kw = dict(quadruples=QUADS, deformation=deformation, batch_size=3)
    ens = {b: nf.sample(net, x, 7, SEED, backend=b, **kw) for b in ("cuda", "cpu")}
    assert ens["cuda"].backend == "cuda" and ens["cpu"].backend == "cpu"
    out = {}
    for label in ("first_order", "reweighted"):
        gpu, cpu = getattr(ens["cuda"], label), getattr(ens["cpu"], label)
        for what in ("two_point", "connected_four_point"):
            a, b = getattr(gpu, what)(), getattr(cpu, what)()
            out[f"dispatch {label} {what} estimates"] = max(
                rel_largest(a.value, b.value), rel_largest(a.error, b.error)
            )
    ess = ens["cuda"].reweighted.effective_sample_size()
    out["dispatch effective sample size estimates"] = abs(
        ess / ens["cpu"].reweighted.effective_sample_size() - 1.0
    )
    return out


@njit
def _half_square(phi):
    return 0.5 * phi * phi


@njit
def _action(omega, beta, amp):
    return float(np.sum(amp * amp))


def refusals():
    """User potentials and parameter actions: ValueError naming them on backend="cuda",
    the CPU on backend="auto"."""
    net, x, box = CASES[0][1], points(1, 3), (-1.0, 1.0)
    cases = (
        (nf.LocalInteraction(COUPLING, _half_square, box, nodes=8), "user potential"),
        (nf.ParameterInteraction(COUPLING, _action), "parameter action"),
    )
    for deformation, words in cases:
        try:
            nf.sample(net, x, 4, SEED, deformation=deformation, backend="cuda")
        except ValueError as exc:
            assert words in str(exc) and "backend='cpu'" in str(exc), str(exc)
        else:
            raise AssertionError(f"backend='cuda' ran a deformation with a {words}")
        # (a FieldRun, not nf.sample: running would compile the user function's kernels)
        assert FieldRun(net, x, SEED, deformation=deformation, backend="auto").backend == "cpu"


def main():
    lock_shared_arrays()
    out = {}
    for case in CASES:
        out.update(compare(*case))
    out.update(dispatch())
    refusals()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
