"""CUDA NTK kernels without a GPU (docs/architecture.md#cuda-tests): compiled to PTX for sm_90,
and run under the CUDA simulator against the CPU NTK kernels (same seeds -> the same networks).

Needs the ``cuda`` extra (numba-cuda, cuda-toolkit[nvrtc,nvvm]); CI installs it.
With NNFT_CUDA_REAL_GPU=1 they run on the GPU instead (tests/_cuda_env.py, bench/gpu_check.sh).
"""

from types import SimpleNamespace

import pytest

pytest.importorskip("numba_cuda", reason="the 'cuda' extra is not installed")

from numba import boolean, cuda, float64, int64, uint64  # noqa: E402

from ._cuda_env import run_target  # noqa: E402

_INDEX = int64[::1]
_RUN = (
    int64,
    int64,
    uint64,
    float64[:, ::1],
    _INDEX,
    float64[::1],
    float64[::1],
    int64,
    int64,
    float64,
    float64,
)  # method .. lambda_w
SIGNATURES = {
    "ntk_statistics_kernel": _RUN
    + (
        _INDEX,
        _INDEX,
        _INDEX,
        _INDEX,
        boolean,
        float64[:, :, ::1],
        float64[:, :, ::1],
        int64,
        _INDEX,
        _INDEX,
        float64[:, ::1],
        float64[:, ::1],
        _INDEX,
        float64[::1],
        float64[::1],
    ),  # ... work, layout, xi, gamma
    "ntk_kernel": _RUN
    + (float64[:, :, :, :, :, ::1], float64[:, ::1], _INDEX, float64[::1], float64[::1]),
}


def test_every_cuda_ntk_kernel_compiles_to_ptx_for_sm90(monkeypatch):
    """compile_ptx catches typing errors the simulator does not (the device's compute
    capability answered as 9.0, as in test_cuda.py)."""
    import numba.cuda.dispatcher as dispatcher

    from nnft_fast.kernels.cuda import ntk

    monkeypatch.setattr(
        dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=(9, 0))
    )
    assert set(ntk.KERNELS) == set(SIGNATURES)
    for name, kernel in ntk.KERNELS.items():
        ptx, _ = cuda.compile_ptx(kernel.py_func, SIGNATURES[name], cc=(9, 0))
        assert ".target sm_90" in ptx and ".entry" in ptx, name
        assert "shfl.sync.down" in ptx, name  # block sums by warp shuffles


def test_simulator_ntk_matches_the_cpu():
    """Per-network NTKs and [stats | NTK statistics | raw] of the CUDA kernels equal the
    CPU's to rounding for every (method, init) — biases, a repeated input (rank-deficient
    S), B > n, layers wider than a block, narrow networks, residual networks (xi, gamma; a
    gamma-only one), on blocks of THREADS threads and of one warp — and the comparison has
    power: another network index or another lambda_w (and, for a
    residual network, the same weights without the residual connections) gives clearly
    different NTKs."""
    diffs = run_target("_cuda_sim_ntk.py")
    assert len(diffs) == 9 * 6 + 4 * 7  # plain cases, residual cases (one more control)
    for name, diff in diffs.items():
        if name.startswith("control"):
            assert diff > 0.05, (name, diff)
        else:  # other summation order over neurons; rank-deficient QRs
            assert diff <= 1e-10, (name, diff)
