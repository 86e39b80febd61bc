"""Regression fixture: R1 (docs/performance.md#r1: n_0 = 64, eight layers of width 512, B = 4,
ReLU at criticality) and a small NTK run give, for fixed seeds, exactly the block sums
recorded in tests/data/r1_regression.npz: first before the issue-14 restructuring, again
when the generator's products became explicit FMAs (issue 19: normals moved by at most
one ulp, the old block sums agreed to 2e-12 relative). On a machine with another CPU
(other vector instructions, so other rounding) they must agree to 1e-12 relative; on the
recording CPU, bit for bit."""

import os

import llvmlite.binding as llvm
import numpy as np
import pytest

import nnft_fast as nf

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "r1_regression.npz")
R1_WIDTHS = (64,) + (512,) * 8
X = np.random.default_rng(2026).standard_normal((4, 64))
N = 96
CASES = {
    "r1_gaussian_projected": dict(init="gaussian", method="projected"),
    "r1_orthogonal_projected": dict(init="orthogonal", method="projected"),
    "r1_gaussian_float32": dict(init="gaussian", method="projected", dtype=np.float32),
    "small_dense_uniform": dict(init="uniform", method="dense", widths=(64, 48, 48)),
    "small_ntk_gaussian": dict(
        init="gaussian",
        method="auto",
        widths=(64, 32, 32),
        observables=("two_point", "four_point", "ntk"),
    ),
}


def run_case(name):
    """(moment accumulator, NTK accumulator or None) of one fixture case."""
    spec = dict(CASES[name])
    net = nf.Network(spec.pop("widths", R1_WIDTHS), "relu", spec.pop("init"), cw=2.0)
    ens = nf.sample(net, X, N, seed=17, first_network=1000, backend="cpu", batch_size=40, **spec)
    return ens.accumulator, ens.ntk_accumulator


def _host_cpu():
    return llvm.get_host_cpu_name() + " " + llvm.get_host_cpu_features().flatten()


@pytest.mark.parametrize("name", sorted(CASES))
def test_block_sums_match_the_recorded_ones(name):
    recorded = np.load(FIXTURE)
    acc, ntk = run_case(name)
    pairs = [(acc.block_sums, recorded[f"{name}/block_sums"])]
    if ntk is not None:
        pairs.append((ntk.block_sums, recorded[f"{name}/ntk_block_sums"]))
    np.testing.assert_array_equal(acc.block_counts, recorded[f"{name}/block_counts"])
    same_cpu = str(recorded["host_cpu"]) == _host_cpu()
    for now, then in pairs:
        if same_cpu:
            np.testing.assert_array_equal(now, then)
        else:
            np.testing.assert_allclose(now, then, rtol=1e-12, atol=0)


def record_fixture(path=FIXTURE):
    """Record the fixture again on this CPU: only after a deliberate change of the numbers
    (``python -m tests.test_regression_r1``; say why in the commit)."""
    arrays = {"host_cpu": np.array(_host_cpu())}
    for name in sorted(CASES):
        acc, ntk = run_case(name)
        arrays[f"{name}/block_sums"] = acc.block_sums
        arrays[f"{name}/block_counts"] = acc.block_counts
        if ntk is not None:
            arrays[f"{name}/ntk_block_sums"] = ntk.block_sums
    np.savez_compressed(path, **arrays)


if __name__ == "__main__":
    record_fixture()
