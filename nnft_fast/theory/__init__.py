"""Theory: predictions to set beside measured ensembles (DESIGN.md §4).

So far: the infinite-width kernel and mean-NTK recursions (``infinite_width``) and the
Gaussian integrals behind them (``gaussian_integrals``).
"""
from .infinite_width import kernel_recursion, ntk_recursion

__all__ = ["kernel_recursion", "ntk_recursion"]
