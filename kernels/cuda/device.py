"""Device twins of CPU scalar functions: the CPU function's own Python source compiled
with ``cuda.jit(device=True)``, its globals rebound to the twins (and to any
target-specific overrides), so one definition serves both backends."""

import types

from numba import cuda


def device_twins(module, names, overrides=None):
    """{name: device function} for ``module``'s @njit scalar functions ``names`` (callees
    first); ``overrides``: globals replaced for the device build."""
    namespace = dict(vars(module))
    namespace.update(overrides or {})
    compiled = {}
    for name in names:
        py = getattr(module, name).py_func
        clone = types.FunctionType(
            py.__code__, namespace, py.__name__, py.__defaults__, py.__closure__
        )
        compiled[name] = namespace[name] = cuda.jit(device=True)(clone)
    return compiled
