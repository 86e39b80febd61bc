"""Theory: predictions to set beside measured ensembles (DESIGN.md §4).

So far: the infinite-width kernel and mean-NTK recursions (``infinite_width``),
criticality (``criticality``) and the
Gaussian integrals behind them (``gaussian_integrals``).
"""
from .criticality import CriticalPoint, find_critical, susceptibilities
from .infinite_width import kernel_recursion, ntk_recursion

__all__ = ["CriticalPoint", "find_critical", "kernel_recursion", "ntk_recursion",
           "susceptibilities"]
