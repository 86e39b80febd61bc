"""Kernels specialised to user-supplied functions: activations, and the potentials and
parameter actions of deformations.

The cached kernels call built-in switches (``activations.activate(code, x)``,
``deformation.local_potential(code, phi)``, ...). For a user function the same Python
functions are re-jitted with the switch bound to the user's function in their globals
(every function on the call path from the batch drivers down), so there is one source
for built-in and user functions. These specialisations compile once per set of functions
and process (no disk cache).
"""

import functools
import types

from numba import njit

from . import deformation, field, forward, moments

# Call paths from the batch drivers to the switches, callees first.
_ACTIVATION_PATH = (
    (forward, "apply_activation"),
    (forward, "activate_layer"),
    (moments, "forward_one"),
)
_NETWORK_DEFORMATION_PATH = (
    (deformation, "node_integral"),
    (deformation, "network_parameter_action"),
    (deformation, "network_interaction"),
)
_NETWORK_DRIVERS = ((moments, "batch_statistics"), (moments, "batch_preactivations"))
_FIELD_PATH = (
    (deformation, "node_integral"),
    (deformation, "interaction"),
    (field, "batch_field_statistics"),
)


def _rejit(dispatcher, namespace):
    py = dispatcher.py_func
    clone = types.FunctionType(py.__code__, namespace, py.__name__, py.__defaults__, py.__closure__)
    options = {k: v for k, v in dispatcher.targetoptions.items() if k not in ("cache", "nopython")}
    return njit(**options)(clone)


def _specialised(path, replacements):
    """Namespaces of the modules on ``path`` with ``replacements`` bound in all of them and
    every function of ``path`` re-jitted there, callees first."""
    namespaces = {module: dict(vars(module)) for module, _ in path}
    for ns in namespaces.values():
        ns.update(replacements)
    for module, name in path:
        compiled = _rejit(getattr(module, name), namespaces[module])
        for ns in namespaces.values():
            ns[name] = compiled
    return namespaces


def _user_switches(activation=None, potential=None, cosnet_action=None, layer_action=None):
    """The switch replacements calling the user's @njit functions (None: built in)."""
    out = {}
    if activation is not None:

        @njit(inline="always")
        def activate(code, x):
            return activation(x)

        out["activate"] = activate
    if potential is not None:

        @njit(inline="always")
        def local_potential(code, phi):
            return potential(phi)

        out["local_potential"] = local_potential
    if cosnet_action is not None:

        @njit(inline="always")
        def parameter_action(code, omega, beta, amp):
            return cosnet_action(omega, beta, amp)

        out["parameter_action"] = parameter_action
    if layer_action is not None:

        @njit(inline="always")
        def user_layer_action(code, layer, w, b):
            return layer_action(layer, w, b)

        out["layer_action"] = user_layer_action
    return out


@functools.cache
def kernels_for(activation=None, potential=None, action=None):
    """(batch_statistics, batch_preactivations) of MLPs calling the @njit scalar
    ``activation(x)``, the local potential ``potential(phi)`` and the layer action
    ``action(layer, w, b)`` of a deformation (None: the built-in ones)."""
    path = (_ACTIVATION_PATH if activation is not None else ()) + (
        _NETWORK_DEFORMATION_PATH if potential is not None or action is not None else ()
    )
    namespaces = _specialised(
        path + _NETWORK_DRIVERS, _user_switches(activation, potential, layer_action=action)
    )
    ns = namespaces[moments]
    return ns["batch_statistics"], ns["batch_preactivations"]


@functools.cache
def deformation_kernels_for(potential=None, action=None):
    """``field.batch_field_statistics`` calling the @njit scalar ``potential(phi)`` as the
    local potential and the @njit ``action(omega, beta, amp)`` as the parameter action
    (None: the built-in ones)."""
    namespaces = _specialised(
        _FIELD_PATH, _user_switches(potential=potential, cosnet_action=action)
    )
    return namespaces[field]["batch_field_statistics"]
