"""Deformations of the parameter density of cos-net fields and MLPs
(docs/fields.md#deformations).

The deformed ensemble is P_lambda(theta) ~ P_0(theta) exp(-S_int[theta]) with

    S_int = coupling * s,    s = sum_i int_box V(phi_i(x)) d^d x + A(theta),

phi_i the outputs (of a cos-net, or the last layer z^(L)_i of an MLP, whose input space
holds the box), the local part by a Gauss-Legendre tensor rule on the box
(``nnft_fast.quadrature``) and A an action of one network's parameters. The networks are
drawn from P_0 (the free ensemble) and carry their s; the deformed correlators follow by
reweighting with exp(-coupling s) and, to first order in the coupling, from the
covariance with s (``Ensemble.reweighted``, ``Ensemble.first_order``).

- ``Phi4(coupling, box, nodes=None)``: V = phi^4 / 4!, the lambda phi^4 theory;
- ``LocalInteraction(coupling, potential, box, nodes=None)``: any V, an @njit scalar
  function of phi;
- ``ParameterInteraction(coupling, action)``: an @njit function of one network's
  parameters -- it breaks the independence of the features or neurons. For a cos-net
  A(omega, beta, amp) (omega = w / 2 pi (d, N), beta = b / 2 pi (N,), amp (n_out, N));
  for an MLP A = sum_l action(l, W^(l), b^(l)) over its layers l = 1..L (explicit
  weights: method "dense").

Quadrature nodes: a cos-net field is band-limited, so the nodes follow from its cut-off
with a rigorous error bound (``QuadratureRule.for_field``); an MLP output is not, so its
rule is empirical (``QuadratureRule.for_samples`` on the outputs of PROBE_NETWORKS dense
networks of seed PROBE_SEED: the error of n nodes estimated against 2n).
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np
from numba import njit

from nnft_fast.kernels.cpu.codes import (
    PARAMETER_ACTION_NONE,
    PARAMETER_ACTION_USER,
    POTENTIAL_NONE,
    POTENTIAL_PHI4,
    POTENTIAL_USER,
)

from .cosnet import CosNet
from .network import Network
from .quadrature import QuadratureRule, check_box

DEFAULT_TOLERANCE = 1e-10  # quadrature error of s, relative (nnft_fast.quadrature)
PROBE_NETWORKS = 8  # MLPs: networks whose outputs estimate the quadrature error
PROBE_SEED = 0
DEFORMATION_NOT_STORABLE = (
    "a deformation with a user potential or parameter action cannot be stored or sharded "
    "(the file, or a worker, rebuilds the run from its description); use nf.Phi4 or run "
    "in memory"
)


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

    def rule(self, net, probe=None):
        """The quadrature rule on the box for ``net``: for a CosNet the band-limited rule
        with its rigorous bound; for an MLP the empirical rule on ``probe(points)``, the
        outputs (M, n_L, Q) of M fixed networks at the points (module docstring)."""
        if isinstance(net, CosNet):
            check_box(self.box, net.dim)
            return QuadratureRule.for_field(net, self.box, self.nodes, DEFAULT_TOLERANCE)
        check_box(self.box, net.input_dim)
        return QuadratureRule.for_samples(
            self.box,
            lambda points: self.potential_sum(probe(points)),
            nodes=self.nodes,
            tol=DEFAULT_TOLERANCE,
            dim=net.input_dim,
        )

    def potential_sum(self, outputs):
        """sum_i V(phi_i) of outputs (..., n_out, Q): (..., Q)."""
        phi = np.asarray(outputs, np.float64)
        if self.potential == "phi4":
            return (phi**4).sum(axis=-2) / 24.0
        flat = phi.reshape(-1)
        values = np.empty_like(flat)
        _apply_potential(self.potential, flat, values)
        return values.reshape(phi.shape).sum(axis=-2)

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

    def rule(self, net, probe=None):
        """None: a parameter action needs no quadrature."""
        return None


@njit
def _apply_potential(potential, phi, out):
    for k in range(phi.size):
        out[k] = potential(phi[k])


def check_deformation(net, deformation, probe=None):
    """(deformation, its quadrature rule or None) validated for ``net`` (a CosNet or an
    MLP; ``probe`` as in ``LocalInteraction.rule``), or (None, None)."""
    if deformation is None:
        return None, None
    if not isinstance(deformation, DEFORMATIONS):
        raise TypeError(
            "deformation must be nf.Phi4, nf.LocalInteraction or nf.ParameterInteraction, "
            f"got {type(deformation).__name__}"
        )
    if not isinstance(net, (CosNet, Network)):
        raise TypeError(f"deformations act on nf.CosNet or nf.Network, got {type(net).__name__}")
    return deformation, deformation.rule(net, probe)  # the rule validates the box


def deformation_from_config(config):
    """The deformation of a stored description (``LocalInteraction.config``)."""
    if config["kind"] != "phi4":
        raise ValueError(f"unknown deformation kind {config['kind']!r}")
    return Phi4(config["coupling"], config["box"], config["nodes"])


DEFORMATIONS = (LocalInteraction, ParameterInteraction)

__all__ = [
    "DEFORMATIONS",
    "DEFORMATION_NOT_STORABLE",
    "PROBE_NETWORKS",
    "PROBE_SEED",
    "check_deformation",
    "LocalInteraction",
    "ParameterInteraction",
    "Phi4",
    "deformation_from_config",
]
