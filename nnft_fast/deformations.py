"""Deformations of the parameter density of cos-net fields (docs/fields.md#deformations).

The deformed ensemble is P_lambda(theta) ~ P_0(theta) exp(-S_int[theta]) with

    S_int = coupling * s,    s = int_box V(phi_theta(x)) d^d x + A(theta),

the local part by a Gauss-Legendre tensor rule on the box (``nnft_fast.quadrature``) and
A an action of one network's parameters. The networks are drawn from P_0 (the free
ensemble) and carry their s; the deformed correlators follow by reweighting with
exp(-coupling s) and, to first order in the coupling, from the covariance with s
(``FieldEnsemble.reweighted``, ``FieldEnsemble.first_order``).

- ``Phi4(coupling, box, nodes=None)``: V = phi^4 / 4!, the lambda phi^4 theory;
- ``LocalInteraction(coupling, potential, box, nodes=None)``: any V, an @njit scalar
  function of phi;
- ``ParameterInteraction(coupling, action)``: A(omega, beta, amp), an @njit function of
  one network's parameters (omega = w / 2 pi (d, N), beta = b / 2 pi (N,), amp (n_out, N))
  -- it breaks the independence of the features.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np

from nnft_fast.kernels.cpu.codes import (
    PARAMETER_ACTION_NONE,
    PARAMETER_ACTION_USER,
    POTENTIAL_NONE,
    POTENTIAL_PHI4,
    POTENTIAL_USER,
)

from .quadrature import QuadratureRule, check_box

DEFAULT_TOLERANCE = 1e-10  # quadrature error of s, relative (nnft_fast.quadrature)


def _coupling(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"coupling must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"coupling must be finite, got {value}")
    return value


def _njit_function(name, fn):
    if not callable(fn) or not hasattr(fn, "py_func"):
        raise TypeError(f"{name} must be a numba @njit function, got {fn!r}")
    return fn


@dataclass(frozen=True, eq=False)
class LocalInteraction:
    """S_int = coupling * int_box V(phi(x)) d^d x for an @njit scalar ``potential`` V
    (``Phi4`` for V = phi^4 / 4!); box: one (lo, hi) pair for every dimension or one per
    dimension; nodes: Gauss-Legendre nodes per dimension (default: chosen from the
    cut-off and the box so the quadrature error is below 1e-10 relative)."""

    coupling: float
    potential: object
    box: object
    nodes: object = None

    def __post_init__(self):
        object.__setattr__(self, "coupling", _coupling(self.coupling))
        if self.potential != "phi4":
            _njit_function("potential", self.potential)

    @property
    def potential_code(self):
        return POTENTIAL_PHI4 if self.potential == "phi4" else POTENTIAL_USER

    parameter_code = PARAMETER_ACTION_NONE
    action = None

    def rule(self, net):
        """The quadrature rule on the box for ``net`` (a CosNet)."""
        check_box(self.box, net.dim)
        return QuadratureRule.for_field(net, self.box, self.nodes, DEFAULT_TOLERANCE)

    @property
    def storable(self):
        """Whether the run can be described in a store (built-in potentials only)."""
        return self.potential == "phi4"

    def config(self, net, rule=None):
        """The stored description, with the box and nodes of ``rule`` (default
        ``self.rule(net)``)."""
        rule = self.rule(net) if rule is None else rule
        return {
            "kind": "phi4",
            "coupling": self.coupling,
            "box": np.asarray(rule.box).tolist(),
            "nodes": [int(n) for n in rule.nodes],
        }


def Phi4(coupling, box, nodes=None):  # noqa: N802 (a constructor, named like one)
    """lambda phi^4 / 4!: S_int = (coupling / 4!) int_box phi^4 d^d x (a LocalInteraction)."""
    return LocalInteraction(coupling, "phi4", box, nodes)


@dataclass(frozen=True, eq=False)
class ParameterInteraction:
    """S_int = coupling * A(omega, beta, amp) for an @njit ``action`` of one network's
    parameters (module docstring)."""

    coupling: float
    action: object

    def __post_init__(self):
        object.__setattr__(self, "coupling", _coupling(self.coupling))
        _njit_function("action", self.action)

    potential = None
    potential_code = POTENTIAL_NONE
    parameter_code = PARAMETER_ACTION_USER
    storable = False

    def rule(self, net):
        return None


def deformation_from_config(config):
    """The deformation of a stored description (``LocalInteraction.config``)."""
    if config["kind"] != "phi4":
        raise ValueError(f"unknown deformation kind {config['kind']!r}")
    return Phi4(config["coupling"], config["box"], config["nodes"])


DEFORMATIONS = (LocalInteraction, ParameterInteraction)

__all__ = [
    "DEFORMATIONS",
    "LocalInteraction",
    "ParameterInteraction",
    "Phi4",
    "deformation_from_config",
]
