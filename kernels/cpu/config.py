"""Central compilation flags shared by every CPU kernel.

FASTMATH deliberately omits ``nnan`` and ``ninf``: a non-finite number must propagate
and be seen by the validation layer, never be optimised away.
"""
FASTMATH = {"contract", "arcp", "nsz"}
