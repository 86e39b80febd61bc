"""CUDA cos-net field kernels without a GPU (docs/architecture.md#cuda-tests): compiled to
PTX for sm_90, and run under the CUDA simulator against the CPU field kernels (same seeds
-> the same parameters, fields and statistics).

Needs the ``cuda`` extra (numba-cuda, cuda-toolkit[nvrtc,nvvm]); CI installs it.
With NNFT_CUDA_REAL_GPU=1 they run on the GPU instead (tests/_cuda_env.py, bench/gpu_check.sh).
"""

from types import SimpleNamespace

import pytest

pytest.importorskip("numba_cuda", reason="the 'cuda' extra is not installed")

from numba import boolean, cuda, float64, int64, uint64  # noqa: E402

from ._cuda_env import run_target  # noqa: E402

_INDEX = int64[::1]
_RADIAL = (int64, float64[::1], float64[:, ::1], float64[:, ::1], int64)  # code .. amp_code
_WORK = (float64[:, ::1], _INDEX)  # work, layout
SIGNATURES = {
    "field_statistics_kernel": (int64, uint64, float64[:, ::1], int64, int64)
    + _RADIAL
    + (_INDEX,) * 4
    + (boolean,)
    + (_INDEX,) * 4
    + (float64[:, :, ::1], int64, float64[:, ::1])
    + (boolean, float64[:, ::1], float64[::1], int64)  # deformed, nodes, weights, potential
    + _WORK,
    "fields_kernel": (int64, uint64, float64[:, ::1], int64)
    + _RADIAL
    + (float64[:, :, ::1],)
    + _WORK,
    "features_kernel": (int64, uint64)
    + _RADIAL
    + (float64[:, :, ::1], float64[:, ::1], float64[:, :, ::1])
    + _WORK,
}
# Largest differences from the CPU: the parameters come from one source (FMA contraction
# and the Newton's last step may differ), the sums over features and outputs run in
# another order.
LIMITS = {
    "omega": 1e-13,
    "beta": 1e-13,
    "amp": 1e-13,
    "field": 1e-13,
    "stats": 1e-13,
    "tuples": 1e-13,
    "raw": 1e-13,
    "blocks": 0.0,  # the device accumulation adds in the CPU's order
    "sums": 1e-12,  # nf.sample(backend="cuda") vs backend="cpu"
}


def test_every_cuda_field_kernel_compiles_to_ptx_for_sm90(monkeypatch):
    """compile_ptx catches typing errors the simulator does not (the device's compute
    capability answered as 9.0, as in test_cuda.py)."""
    import numba.cuda.dispatcher as dispatcher

    from nnft_fast.kernels.cuda import field

    monkeypatch.setattr(
        dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=(9, 0))
    )
    assert set(field.KERNELS) == set(SIGNATURES)
    for name, kernel in field.KERNELS.items():
        ptx, _ = cuda.compile_ptx(kernel.py_func, SIGNATURES[name], cc=(9, 0))
        assert ".target sm_90" in ptx and ".entry" in ptx, name


def test_simulator_fields_match_the_cpu():
    """Every radial code (closed forms, uniform, the table Newton, Gaussian momenta) in
    d = 1..4 with alpha in {-1, 0, 0.5}, both amplitude laws, n_out = 1..3, quadruples and
    sextuples, B = 3..40 and 1024: the CUDA parameters, fields, [G | Q | GG | tuple]
    statistics and raw outputs equal the CPU's to rounding, the device block sums the
    CPU's exactly, nf.sample(backend="cuda") backend="cpu"; and the comparison has power
    (the next networks differ)."""
    diffs = run_target("_cuda_sim_field.py")
    n_cases, n_tuple_cases = 11, 10
    assert len(diffs) == 8 * n_cases + n_tuple_cases + 2 + 1, sorted(diffs)
    for name, diff in diffs.items():
        if name.startswith("control"):
            assert diff > 0.05, (name, diff)
        else:
            assert diff <= LIMITS[name.split()[-1]], (name, diff)
