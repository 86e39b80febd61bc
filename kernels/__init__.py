"""Numba kernels of nnft_fast (shipped as ``nnft_fast.kernels``).

``cpu/`` holds @njit kernels; a ``cuda/`` twin with the same argument lists follows.
Only Numba code lives here; validation and public API are in ``nnft_fast``.
"""
