"""Central compilation flags shared by every CPU kernel.

FASTMATH deliberately omits ``nnan`` and ``ninf``: a non-finite number must propagate
and be seen by the validation layer, never be optimised away.

Every kernel, the parallel batch drivers included, is compiled with ``cache=True``:
measured here, the first call of a new process drops from ~30 s to ~0.4 s. (Caching only
the serial kernels would be the cautious choice; the parallel drivers take no function arguments and
no globals that change, and their cached versions are covered by the whole test suite.)
"""

FASTMATH = {"contract", "arcp", "nsz"}

# Reductions (moment sums over neurons) may be reassociated so they vectorise; the order
# is still fixed by the code alone, so results stay independent of threads and batches.
FASTMATH_REDUCTIONS = FASTMATH | {"reassoc"}
