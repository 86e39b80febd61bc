"""Compute backends: "cpu" (Numba @njit kernels) and "cuda" (numba.cuda kernels).

Both draw the same networks (same counter-based streams and canonical QR), so a backend
changes speed, never results beyond rounding. "auto" takes the GPU when Numba sees one
(the ``cuda`` extra installed and a driver present), else the CPU. Importing nnft_fast
never imports numba.cuda; only asking for "cuda" or "auto" does.
"""

import importlib.util

BACKENDS = ("auto", "cpu", "cuda")


class BackendUnavailable(ValueError):
    """backend="cuda" asked for where no CUDA GPU (or no numba-cuda) is available."""


def cuda_available():
    """Whether numba-cuda is installed and sees a GPU (or runs its simulator)."""
    if importlib.util.find_spec("numba_cuda") is None:
        return False
    from numba import cuda

    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install counts as no GPU
        return False


def check_backend(backend):
    """``backend``, one of ``BACKENDS`` (ValueError otherwise)."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def resolve_backend(backend):
    """'auto' | 'cpu' | 'cuda' -> the backend that will run: 'cpu' or 'cuda'."""
    if check_backend(backend) == "cpu":
        return "cpu"
    available = cuda_available()
    if backend == "cuda" and not available:
        if importlib.util.find_spec("numba_cuda") is None:
            raise BackendUnavailable(
                "backend='cuda' needs the 'cuda' extra: pip install "
                "'nnft_fast[cuda]' (numba-cuda, cuda-toolkit)"
            )
        raise BackendUnavailable(
            "backend='cuda': Numba sees no CUDA GPU here (no device or "
            "no driver); use backend='cpu' or 'auto'"
        )
    return "cuda" if available else "cpu"
