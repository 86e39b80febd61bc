"""Kernels specialised to user-supplied functions: activations, and the potentials and
parameter actions of field deformations.

The cached kernels call the built-in switch ``activations.activate(code, x)``. For a user
activation ``fn(x)`` the same Python functions are re-jitted with ``activate`` bound to
``lambda code, x: fn(x)`` in their globals (every function on the call path from the
batch drivers down), so there is one source for built-in and user activations. These
specialisations compile once per activation and process (no disk cache).
"""

import functools
import types

from numba import njit

from . import deformation, field, forward, moments

# Call path from the batch drivers to ``activate``, callees first.
_CALL_PATH = (
    (forward, "apply_activation"),
    (forward, "activate_layer"),
    (moments, "forward_one"),
    (moments, "batch_statistics"),
    (moments, "batch_preactivations"),
)


def _rejit(dispatcher, namespace):
    py = dispatcher.py_func
    clone = types.FunctionType(py.__code__, namespace, py.__name__, py.__defaults__, py.__closure__)
    options = {k: v for k, v in dispatcher.targetoptions.items() if k not in ("cache", "nopython")}
    return njit(**options)(clone)


@functools.cache
def kernels_for(fn):
    """(batch_statistics, batch_preactivations) calling the @njit scalar ``fn``."""

    @njit(inline="always")
    def activate(code, x):
        return fn(x)

    namespaces = {forward: dict(vars(forward)), moments: dict(vars(moments))}
    for ns in namespaces.values():
        ns["activate"] = activate
    for module, name in _CALL_PATH:
        compiled = _rejit(getattr(module, name), namespaces[module])
        for ns in namespaces.values():
            ns[name] = compiled
    ns = namespaces[moments]
    return ns["batch_statistics"], ns["batch_preactivations"]


# Call path from the field batch driver to the deformation's user functions, callees first.
_DEFORMATION_PATH = (
    (deformation, "node_integral"),
    (deformation, "interaction"),
    (field, "batch_field_statistics"),
)


@functools.cache
def deformation_kernels_for(potential=None, action=None):
    """``field.batch_field_statistics`` calling the @njit scalar ``potential(phi)`` as the
    local potential and the @njit ``action(omega, beta, amp)`` as the parameter action
    (None: the built-in ones)."""
    namespaces = {deformation: dict(vars(deformation)), field: dict(vars(field))}
    if potential is not None:

        @njit(inline="always")
        def local_potential(code, phi):
            return potential(phi)

        namespaces[deformation]["local_potential"] = local_potential
    if action is not None:

        @njit(inline="always")
        def parameter_action(code, omega, beta, amp):
            return action(omega, beta, amp)

        namespaces[deformation]["parameter_action"] = parameter_action
    for module, name in _DEFORMATION_PATH:
        compiled = _rejit(getattr(module, name), namespaces[module])
        for ns in namespaces.values():
            ns[name] = compiled
    return namespaces[field]["batch_field_statistics"]
