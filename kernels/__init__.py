"""Numba kernels of nnft_fast (shipped as ``nnft_fast.kernels``).

``cpu/`` holds @njit kernels; ``cuda/`` their numba.cuda twins (so far the random
numbers and the projected Gaussian forward with its statistics).
Only Numba code lives here; validation and public API are in ``nnft_fast``.
"""
