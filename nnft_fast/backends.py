"""Compute backends: "cpu" (Numba @njit kernels) and "cuda" (numba.cuda kernels).

Both draw the same networks (same counter-based streams and canonical QR), so a backend
changes speed, never results beyond rounding. "auto" takes the GPU when Numba sees one
(the ``cuda`` extra installed and a driver present), else the CPU. Importing nnft_fast
never imports numba.cuda; only asking for "cuda" or "auto" does.

What "auto" chose, and why, is logged at INFO on the ``nnft_fast.backends`` logger
(``log_choice``: no GPU, or the GPU kernels not covering the job).
"""

import importlib.util
import logging

BACKENDS = ("auto", "cpu", "cuda")

log = logging.getLogger(__name__)


class BackendUnavailable(ValueError):
    """backend="cuda" asked for where no CUDA GPU (or no numba-cuda) is available."""


def cuda_available():
    """Whether numba-cuda is installed and sees a GPU (or runs its simulator)."""
    return _cuda_status()[0]


def _cuda_status():
    """(whether a CUDA GPU can run, why: the words of the log line)."""
    if importlib.util.find_spec("numba_cuda") is None:
        return False, "numba-cuda is not installed (the 'cuda' extra)"
    from numba import cuda

    try:
        if cuda.is_available():
            return True, "Numba sees a CUDA GPU"
    except Exception as exc:  # a broken driver install counts as no GPU
        return False, f"the CUDA driver failed ({type(exc).__name__}: {exc})"
    return False, "Numba sees no CUDA GPU (no device or no driver)"


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


def log_choice(requested, chosen, limitation=None, what="run"):
    """Log (INFO) the backend "auto" chose for a ``what`` and why: the GPU, no GPU (and
    why not), or ``limitation``, the reason the GPU kernels do not cover the job.
    Explicit "cpu" and "cuda" are what was asked for: logged at DEBUG."""
    if requested != "auto":
        log.debug("%s on backend %r (as requested)", what, chosen)
    elif chosen == "cuda":
        log.info("backend 'auto' chose 'cuda' for this %s: a CUDA GPU is available", what)
    elif limitation is not None:
        log.info(
            "backend 'auto' chose 'cpu' for this %s: the GPU kernels do not cover it (%s)",
            what,
            limitation,
        )
    else:
        available, why = _cuda_status()
        log.info(
            "backend 'auto' chose 'cpu' for this %s: %s", what, "no CUDA GPU" if available else why
        )
