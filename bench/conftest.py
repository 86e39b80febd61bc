"""Fixtures of the pytest-benchmark suite (bench/test_bench_kernels.py).

``backend``: parametrises a case over "cpu" and "cuda" (as pydata/sparse's
benchmarks/conftest.py does for its backends); the cuda case is skipped, with the reason,
where numba-cuda is missing, no GPU is visible, or only the CUDA simulator runs (its
timings would mean nothing). ``r1``, ``r1_inputs``, ``r1_probes``: the reference config
of bench.configs, its inputs and the probe kernels bound to it. ``record``: puts a
case's size and its per-second rate into ``benchmark.extra_info``.

``python -m pytest bench/ --benchmark-disable`` runs every case once, untimed (a wiring
check); the rates are then left out.
"""

import importlib.util

import pytest
from numba import config as numba_config

import nnft_fast as nf
from bench.configs import R1
from bench.probes import Probes

SEED = 11


def cuda_skip_reason():
    """Why the cuda cases cannot run here (None if they can)."""
    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda not installed (pip install -e '.[cuda]')"
    if numba_config.ENABLE_CUDASIM:
        return "CUDA simulator (NUMBA_ENABLE_CUDASIM=1): its timings would mean nothing"
    if not nf.cuda_available():
        return "no CUDA GPU visible to Numba"
    return None


_CUDA_SKIP = cuda_skip_reason()
BACKENDS = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(_CUDA_SKIP is not None, reason=f"backend cuda: {_CUDA_SKIP}"),
    ),
]


@pytest.fixture(params=BACKENDS, ids=lambda backend: f"backend={backend}")
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def seed():
    return SEED


@pytest.fixture(scope="session")
def r1():
    return R1


@pytest.fixture(scope="session")
def r1_inputs():
    return R1.inputs()


@pytest.fixture(scope="session")
def r1_probes(r1_inputs):
    return Probes(R1, r1_inputs, SEED)


@pytest.fixture
def record(benchmark):
    """record(n, unit="networks"): extra_info[unit + "_per_round"] = n and, when timed,
    extra_info[unit + "_per_s_median"] from the median round."""

    def record(n, unit="networks"):
        benchmark.extra_info[f"{unit}_per_round"] = n
        if benchmark.stats is not None:  # None under --benchmark-disable
            benchmark.extra_info[f"{unit}_per_s_median"] = n / benchmark.stats.stats.median

    return record
