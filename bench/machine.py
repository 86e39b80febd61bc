"""The machine a benchmark ran on, and NumPy's OpenBLAS thread count.

``machine_info()`` is the one machine block every script prints (``print_machine``) and
writes into its JSON: CPU model, cores (all and usable), Numba threads and threading
layer, NumPy's OpenBLAS threads, the load average at the start, the versions and the
date. On a shared machine quote it with every figure: only ratios measured in one run
mean anything.
"""

import ctypes
import datetime
import importlib.metadata
import os
import platform

import numba
import numpy as np

import nnft_fast as nf


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def installed_version(package):
    """The installed version of ``package`` (None if not installed); imports nothing."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(optional=()):
    """The machine block; ``optional``: more packages whose versions to record (those
    installed), e.g. the baselines' ("jax", "torch")."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
    info = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "load_average_at_start": list(os.getloadavg()),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "nnft_fast": nf.__version__,
        "numba_threads": numba.get_num_threads(),
        "numba_max_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": threading_layer(),
        "numpy_blas_threads_default": blas_thread_count(),
    }
    for package in optional:
        version = installed_version(package)
        if version is not None:
            info[package.replace("-", "_")] = version
    return info


def threading_layer():
    """Numba's threading layer (None until a parallel kernel has run: call it again after
    the warm-up)."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def load_average():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def print_machine(info):
    """Two lines: the machine and load, the software."""
    extra = [
        f"{k} {info[k]}" for k in ("jax", "torch", "neural_tangents", "torch_threads") if k in info
    ]
    print(
        f"machine: {info['cpu_model']}; {info['cpu_count']} cores ({info['cpus_usable']} "
        f"usable); load average {' '.join(f'{v:.2f}' for v in info['load_average_at_start'])}"
        f"; {info['date']}"
    )
    print(
        f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']} "
        f"({info['numba_threads']} threads), nnft_fast {info['nnft_fast']}"
        + "".join(f", {e}" for e in extra)
        + f"; NumPy BLAS threads {info['numpy_blas_threads_default']}"
    )


# --------------------------------------------------------------------------------------
# NumPy's OpenBLAS threads
# --------------------------------------------------------------------------------------
def _openblas_controls():
    """(get, set) ctypes functions of every OpenBLAS loaded in this process."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted(
                {
                    line.split()[-1]
                    for line in f
                    if "openblas" in line.lower() and line.split()[-1].startswith("/")
                }
            )
    except OSError:
        return []
    controls = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    controls.append((get, put))
                    break
            else:
                continue
            break
    return controls


class blas_threads:
    """Context manager: every loaded OpenBLAS on ``n`` threads (None: unchanged), restored
    after."""

    def __init__(self, n):
        self.n = n
        self._saved = []

    def __enter__(self):
        if self.n is not None:
            controls = _openblas_controls()
            self._saved = [(get(), put) for get, put in controls]
            for _, put in controls:
                put(int(self.n))
        return self

    def __exit__(self, *exc):
        for previous, put in self._saved:
            put(int(previous))
        return False


def blas_thread_count():
    """Current OpenBLAS thread count of NumPy (None if not controllable)."""
    controls = _openblas_controls()
    return int(controls[0][0]()) if controls else None
