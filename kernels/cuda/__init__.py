"""numba.cuda twins of the CPU kernels (same random streams, same argument lists).

Needs the ``cuda`` extra (numba-cuda, cuda-toolkit[nvrtc,nvvm]); nothing in
``nnft_fast`` imports this package unless a CUDA kernel is asked for. Without a GPU the
kernels still compile to PTX (``numba.cuda.compile_ptx``) and run under the CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``, set before Numba is imported).
"""
