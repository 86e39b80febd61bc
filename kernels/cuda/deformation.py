"""Deformations of cos-net fields on the GPU: the twin of the local part of
``kernels/cpu/deformation.py``, one thread block per network.

The interaction of one network, s = S_int / coupling, is

    s = sum_q W_q sum_i V(phi_i(y_q)),

(y_q, W_q) the deformation's Gauss-Legendre tensor rule on the box and phi_i the
network's outputs on its nodes (``kernels/cuda/field.py`` evaluates them with the same
device function as on the points). V is a built-in potential chosen by its code
(``local_potential``: the CPU's own source compiled for the device, ``device_twins``,
so V = phi^4 / 4! has one definition for both backends). User potentials and parameter
actions are Python @njit functions and stay on the CPU (there are no built-in parameter
actions; ``nnft_fast.gpu_field_engine.cuda_limitation`` refuses them).

Threads stride over the nodes, each summing its nodes in order (the outputs inner), and
``block.block_sum`` adds the threads' partial sums; the CPU sums q, i serially. For
phi^4 every term W_q V is >= 0 (Gauss-Legendre weights are positive), so the two orders
agree to rounding relative to s.
"""

from numba import cuda

from ..cpu import deformation as cpu_deformation
from .block import THREADS, block_sum
from .device import device_twins

local_potential = device_twins(cpu_deformation, ("local_potential",))["local_potential"]


@cuda.jit(device=True)
def local_interaction(pot_code, weights, phit_nodes, n_out, shared):
    """s = sum_q weights[q] sum_k V(phit_nodes[q n_out + k]) of potential ``pot_code``
    (module docstring), returned to every thread. shared: (THREADS,) float64."""
    acc = 0.0
    q = cuda.threadIdx.x
    while q < weights.size:
        for c in range(n_out):
            acc += weights[q] * local_potential(pot_code, phit_nodes[q * n_out + c])
        q += THREADS
    return block_sum(acc, shared)
