"""CUDA kernels without a GPU (docs/architecture.md#cuda-tests): every kernel compiled to PTX
for sm_90, and run under the CUDA simulator against the CPU kernels (same seeds -> same numbers).

Needs the ``cuda`` extra (numba-cuda, cuda-toolkit[nvrtc,nvvm]); CI installs it.
With NNFT_CUDA_REAL_GPU=1 they run on the GPU instead (tests/_cuda_env.py, bench/gpu_check.sh).
"""

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("numba_cuda", reason="the 'cuda' extra is not installed")

from numba import boolean, cuda, float64, int64, uint8, uint64  # noqa: E402

from ._cuda_env import run_target  # noqa: E402

_INDEX = int64[::1]
SIGNATURES = {
    "fill_normal_kernel": (float64[::1], uint64, int64, uint64, float64),
    "fill_uniform_kernel": (float64[::1], uint64, int64, uint64, float64, float64),
    "statistics_kernel": (
        int64,
        int64,
        uint64,
        float64[:, ::1],
        _INDEX,
        float64[::1],
        float64[::1],
        int64,
        int64,
        _INDEX,
        _INDEX,
        _INDEX,
        _INDEX,
        boolean,
        float64[:, :, ::1],
        _INDEX,
        _INDEX,
        float64[:, ::1],
        float64[:, ::1],
        _INDEX,
        float64[::1],
        float64[::1],
    ),
    "add_to_blocks_kernel": (float64[:, :, ::1], int64, float64[:, :, ::1], _INDEX),
    "nonfinite_rows_kernel": (float64[:, :, ::1], uint8[:, ::1]),
    "haar_matrices_kernel": (uint64, int64, uint64, float64[:, :, ::1], float64[:, ::1]),
}


REDUCING = {"statistics_kernel", "haar_matrices_kernel"}  # kernels with block reductions


def test_every_cuda_kernel_compiles_to_ptx_for_sm90(monkeypatch):
    """compile_ptx catches typing errors the simulator does not. Device functions ask
    the driver for the current device's compute capability; without a GPU we answer 9.0."""
    import numba.cuda.dispatcher as dispatcher

    from nnft_fast.kernels.cuda import haar, moments, rng

    monkeypatch.setattr(
        dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=(9, 0))
    )
    kernels = {**rng.KERNELS, **moments.KERNELS, **haar.KERNELS}
    assert set(kernels) == set(SIGNATURES)
    for name, kernel in kernels.items():
        ptx, _ = cuda.compile_ptx(kernel.py_func, SIGNATURES[name], cc=(9, 0))
        assert ".target sm_90" in ptx and ".entry" in ptx, name
        assert "call.uni" not in ptx or name not in rng.KERNELS, (
            f"{name}: the generator's device functions should inline"
        )
        if name in REDUCING:  # block_sum / block_max: warp shuffles, not shared-memory trees
            assert "shfl.sync.down" in ptx, name


def test_simulator_draws_the_cpu_streams():
    """Same (seed, network, stream) -> the same numbers as the CPU kernels, to rounding
    (both evaluate one source; only FMA contraction may differ), over several blocks; and
    the projected forward + statistics kernel gives the CPU's per-network statistics
    (repeated inputs, biases, a layer wider than a block of threads, residual networks)
    on blocks of THREADS threads and of one warp, the same network at every block size;
    block reductions sum in their fixed order at every block size."""
    diffs = run_target("_cuda_sim_target.py")
    limits = {
        "reduce": 0.0,  # block_sum / block_max: their fixed order, bit for bit
        "normal": 1e-14,
        "uniform": 1e-14,  # one source: only FMA contraction differs
        "stats": 1e-10,  # other summation order; a repeated input: rank-deficient S
        "raw": 1e-12,
        "haar": 1e-12,
        "blocks": 0.0,  # the device accumulation adds in the CPU's order
        "extreme": 1e-12,  # inputs 2^+-520: squared norms out of float64's range
        "nonfinite": 0.0,  # per-network finiteness flags
        "dispatch": 1e-12,  # nf.sample / store / resume with backend="cuda" vs "cpu"
        "blocksize": 1e-12,  # one network on blocks of one warp .. THREADS threads
    }
    sizes = sum(name.startswith("reduce sum") for name in diffs)  # block sizes WARP..THREADS
    assert sizes >= 2, sizes
    assert len(diffs) == 2 * sizes + 16 + 11 * 3 + 3 * 3 * sizes + 4 + 1 + 3 + 8
    for name, diff in diffs.items():
        kind = name.split()[-1] if name.endswith(("raw", "blocks")) else name.split()[0]
        assert diff <= limits[kind], (name, diff)


def test_block_threads_fit_the_widest_layer():
    """The engine's threads per network: one warp for networks no wider than a warp,
    then powers of two up to THREADS."""
    from nnft_fast.kernels.cuda.block import THREADS, WARP, block_threads

    assert block_threads((3, 16, 16, 1)) == block_threads((3, 8, 8)) == WARP == 32
    assert block_threads((1, 1)) == block_threads((WARP, 2)) == WARP
    assert block_threads((3, WARP + 1, 6)) == block_threads((3, 2 * WARP)) == 2 * WARP
    assert block_threads((5, 150, 6)) == block_threads((THREADS,)) == THREADS == 128


def test_simulator_comparison_has_power():
    """Negative control: a different network index gives different numbers."""
    from nnft_fast.kernels.cpu import rng

    a, b = np.empty(64), np.empty(64)
    rng.fill_normal(a, np.uint64(7), np.int64(1), np.uint64(9), 1.0)
    rng.fill_normal(b, np.uint64(7), np.int64(2), np.uint64(9), 1.0)
    assert np.max(np.abs(a - b)) > 0.1
