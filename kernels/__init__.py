"""Numba kernels of nnft_fast (shipped as ``nnft_fast.kernels``).

``cpu/`` holds @njit kernels; ``cuda/`` their numba.cuda twins (so far the random
numbers), with the same argument lists.
Only Numba code lives here; validation and public API are in ``nnft_fast``.
"""
