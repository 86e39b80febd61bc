"""CUDA kernels of deformed cos-net fields without a GPU (docs/fields.md#deformations):
run under the CUDA simulator against the CPU kernels (the same networks, statistics,
interactions s, deformed block sums and estimates), and the refusal of user functions.
The deformed kernel is ``field_statistics_kernel``, whose PTX test_cuda_field.py compiles.

Needs the ``cuda`` extra (numba-cuda, cuda-toolkit[nvrtc,nvvm]); CI installs it.
With NNFT_CUDA_REAL_GPU=1 they run on the GPU instead (tests/_cuda_env.py, bench/gpu_check.sh).
"""

import numpy as np
import pytest

pytest.importorskip("numba_cuda", reason="the 'cuda' extra is not installed")

from numba import njit  # noqa: E402

import nnft_fast as nf  # noqa: E402
from nnft_fast.field_run import FieldRun  # noqa: E402

from ._cuda_env import run_target  # noqa: E402

# Largest differences from the CPU: the statistics as in test_cuda_field.py; s is a sum
# of nonnegative terms in another order; the weights exp(-coupling s) carry s's rounding.
LIMITS = {"stats": 1e-13, "s": 1e-13, "blocks": 1e-12, "shifts": 1e-13, "estimates": 1e-12}


@njit
def _quartic(phi):
    return phi**4


@njit
def _action(omega, beta, amp):
    return 0.0


def test_user_functions_are_refused_by_the_cuda_engine():
    """The engine, built from a run's kernel arguments alone, refuses what its kernels
    cannot evaluate (nf.sample's refusal is checked on the simulator)."""
    from nnft_fast.gpu_field_engine import FieldCudaEngine, cuda_limitation

    net, x = nf.CosNet(1, 4, mass=1.0, cutoff=2.0), np.array([[0.0], [0.5]])
    box = (-1.0, 1.0)
    cases = (
        (nf.LocalInteraction(1.0, _quartic, box, nodes=4), "user potential"),
        (nf.ParameterInteraction(1.0, _action), "parameter action"),
    )
    for deformation, words in cases:
        args = FieldRun(net, x, 0, deformation=deformation, backend="cpu").kernel_args
        assert words in cuda_limitation(args)
        with pytest.raises(ValueError, match=words):
            FieldCudaEngine(args)
    for deformation in (None, nf.Phi4(1.0, box, nodes=4)):
        run = FieldRun(net, x, 0, deformation=deformation, backend="cpu")
        assert cuda_limitation(run.kernel_args) is None


def test_simulator_deformed_fields_match_the_cpu():
    """d = 1 (Phi4) and d = 2 (LocalInteraction "phi4", a box unlike in each dimension),
    N and Q above the simulator's 8 threads: the free statistics, every network's s, the
    deformed block sums and shifts, and nf.sample's first-order and reweighted estimates
    of backend="cuda" equal backend="cpu"'s to rounding; the comparison has power (other
    networks differ); user potentials and parameter actions are refused on "cuda" and run
    on the CPU for "auto"."""
    diffs = run_target("_cuda_sim_deformation.py")
    assert len(diffs) == 2 * 5 + 5, sorted(diffs)
    for name, diff in diffs.items():
        if name.startswith("control"):
            assert diff > 0.05, (name, diff)
        else:
            assert diff <= LIMITS[name.split()[-1]], (name, diff)
