"""Theory: predictions to set beside measured ensembles (DESIGN.md §4).

So far: the infinite-width kernel and mean-NTK recursions (``infinite_width``),
criticality (``criticality``), the 1/n four-point vertex for Gaussian weights
(``vertex``) and the Gaussian integrals behind them (``gaussian_integrals``).
"""
from .criticality import CriticalPoint, find_critical, susceptibilities
from .infinite_width import kernel_recursion, ntk_recursion
from .vertex import same_neuron_connected, vertex_recursion

__all__ = ["CriticalPoint", "find_critical", "kernel_recursion", "ntk_recursion",
           "same_neuron_connected", "susceptibilities", "vertex_recursion"]
