"""lambda phi^4 at first order for cos-net fields and MLP outputs
(docs/exact-results.md#phi4-first-order).

The interacting ensemble deforms the parameter density of a cos-net (``nnft_fast.CosNet``),

    P_lambda(theta) ~ P_0(theta) exp(-S_int[phi_theta]),   S_int = (lambda / 4!) int_V phi^4 d^d y,

over a box V, so that to first order every expectation moves by

    d<O>/d lambda |_0 = -Cov_0(O, S_int / lambda)
                      = -(1/24) int_V (E[O phi_y^4] - E[O] E[phi_y^4]) dy.

With the cumulants kappa2 = G (``cosnet_propagator``), kappa4 = G4c and kappa6 = G6c of the
free cos-net at width N (odd cumulants vanish), the six-point moment is the sum over the 31
set partitions of {a, b, y, y, y, y} into blocks of even size:

    E[phi_a phi_b phi_y^4] = kappa6(abyyyy) + kappa2(ab) kappa4(yyyy) + 4 G_ay kappa4(byyy)
                             + 4 G_by kappa4(ayyy) + 6 G(0) kappa4(abyy)
                             + 3 G_ab G(0)^2 + 12 G(0) G_ay G_by,

and E[phi_y^4] = kappa4(yyyy) + 3 G(0)^2, so the G_ab E[phi_y^4] terms cancel and

    dG_ab / d lambda = -(1/24) int_V [kappa6(abyyyy) + 4 G_ay kappa4(byyy) + 4 G_by kappa4(ayyy)
                                      + 6 G(0) kappa4(abyy)] dy
                       - (1/2) G(0) int_V G_ay G_yb dy.

At infinite width (kappa4 ~ 1/N, kappa6 ~ 1/N^2) only the last term, the tadpole, is left;
at width N the exact result is tadpole + c1 / N + c2 / N^2 (G does not depend on N, N kappa4
and N^2 kappa6 do not either). The connected four-point function at leading order is the
tree-level vertex dG4c / d lambda = -int_V prod_k G(x_k - y) dy.

**Quadrature.** The y-integrals are sums over the tensor Gauss-Legendre rule
``QuadratureRule.for_field(net, box, nodes)`` (``nnft_fast.quadrature``). Every integrand
is a finite combination of G, H, H3 (``cosnet_h``, ``cosnet_h3``) at arguments affine in y,
each a positive mixture of cos(w . r) of total mass G(0), H(0), H3(0); the y-frequencies
are at most 2 Lambda in the tadpole and the first-order two-point function (the phase
average pairs all but two of the features) and 4 Lambda in the tree-level vertex. So the
error of each function is at most V M eps, M the integrand's total mass and eps =
``gl_error_bound(box, nodes, 2 Lambda or 4 Lambda)`` relative to the volume; Gaussian
momenta add 2 n tail M V for n y-dependent factors beyond the effective band limit
(``quadrature.field_bandlimit``). ``return_bound=True`` returns it with the value.

**MLP outputs.** ``phi4_tadpole`` and ``phi4_tree_level`` also take an ``nf.Network``, the
deformation S_int = (lambda / 4!) sum_i int_V phi_i(y)^4 d^{n_0} y acting on its outputs
phi_i = z^(L)_i over a box V in input space. At infinite width the outputs are independent
centred Gaussian processes with the covariance K = K^(L) (``kernel_recursion``), which is
not translation invariant, so G(x - y) becomes K(x, y) and G(0) becomes K(y, y) (for one
output neuron and for the neuron average alike). No band limit, so no rigorous bound:
``nodes`` is required and ``return_bound`` refused; compare against doubled nodes.
"""

import numpy as np

from ..cosnet import CosNet
from ..field_run import validate_points
from ..network import Network
from ..quadrature import (
    QuadratureRule,
    check_box,
    field_bandlimit,
    gl_error_bound,
    tensor_gauss_legendre,
)
from ..run import validate_inputs
from ..tuples import check_tuples
from .cosnet import (
    _check_net,
    _norms,
    amplitude_moments,
    cosnet_four_point,
    cosnet_h,
    cosnet_h3,
    cosnet_propagator,
    cosnet_six_point,
)
from .infinite_width import kernel_recursion

_CHUNK = 1 << 22  # entries of one (tuples x nodes) block
_PAIR_NODES = 1 << 16  # (pairs x nodes) sextuples per call of the exact functions
_MAX_NODE_CHUNK = 64  # quadrature nodes per call of the exact functions


def _setup(net, X, box, nodes):
    net = _check_net(net)
    X = validate_points(net, X)
    rule = QuadratureRule.for_field(net, box, nodes=nodes)
    return net, X, rule


def _g0(net):
    return float(cosnet_propagator(net, 0.0))


def _bound(net, rule, power, factors, mass):
    """V mass (eps(power Lambda) + 2 factors tail): the quadrature error of an integrand
    of total mass ``mass`` whose y-frequencies are at most power Lambda (effective for
    Gaussian momenta), ``factors`` of its factors depending on y."""
    k, tail = field_bandlimit(net, power)
    eps = gl_error_bound(rule.box, rule.nodes, k)
    return rule.volume * mass * (eps + 2.0 * factors * tail)


def _propagator_to_nodes(net, X, rule):
    """G(x_a - y_q): (B, Q)."""
    return cosnet_propagator(net, _norms(X[:, None, :] - rule.points[None, :, :]))


def _kernel_to_nodes(net, X, box, nodes, return_bound):
    """(K_xy (B, Q), K_yy (Q,), weights (Q,), rule): the covariance between the points X
    and the quadrature nodes y_q, its diagonal at the nodes and the rule's weights.

    Cos-net: K_xy = G(x_a - y_q), K_yy = G(0), the rule ``QuadratureRule.for_field``.
    nf.Network: K = K^(L) of ``kernel_recursion`` on X u {nodes} (one call), the tensor
    Gauss-Legendre rule with the required ``nodes``, and rule None (no bound)."""
    if not isinstance(net, Network):
        if not isinstance(net, CosNet):
            raise TypeError(
                f"net must be an nnft_fast.CosNet or nnft_fast.Network, got {type(net).__name__}"
            )
        net, X, rule = _setup(net, X, box, nodes)
        kyy = np.full(rule.weights.size, _g0(net))
        return _propagator_to_nodes(net, X, rule), kyy, rule.weights, rule
    if nodes is None:
        raise ValueError(
            "nodes= is required for an nf.Network: an MLP output has no band limit from "
            "which to choose the quadrature nodes (pass nodes and compare with 2 * nodes)"
        )
    if return_bound:
        raise ValueError(
            "return_bound=True is not available for an nf.Network: there is no rigorous "
            "quadrature bound for MLP outputs; compare against the value at doubled nodes"
        )
    X = validate_inputs(net, X)
    box = check_box(box, net.input_dim)
    y, weights = tensor_gauss_legendre(box, nodes, dim=net.input_dim)
    b = X.shape[0]
    k = kernel_recursion(net, np.concatenate([X, y]))[-1]
    return k[:b, b:], np.diag(k)[b:].copy(), weights, None


def phi4_tadpole(net, X, box, nodes=None, *, return_bound=False):
    """The infinite-width first-order two-point function of lambda phi^4 on the box V,

        dG(x_a, x_b) / d lambda = -(1/2) int_V K(x_a, y) K(y, y) K(y, x_b) dy,

    on the points X (B, d): (B, B).

    Cos-net (``nf.CosNet``, V in R^d): K(x, y) = G(x - y) = ``cosnet_propagator`` (exact),
    K(y, y) = G(0); the y-integral by ``QuadratureRule.for_field(net, box, nodes)``. Its
    error is at most (1/2) G(0)^3 V eps, eps = ``gl_error_bound`` at 2 Lambda (the
    integrand's band limit; Gaussian momenta: the effective limit, plus the tail term,
    module docstring); ``return_bound=True`` returns (value, bound).

    MLP (``nf.Network``, S_int = (lambda / 4!) sum_i int_V phi_i^4 on its outputs, X (B, n_0)
    inputs, V in R^{n_0}): K = K^(L) (``kernel_recursion``), the same for one output neuron
    and for the neuron average; the y-integral by the tensor Gauss-Legendre rule with
    ``nodes`` (required). No bound (``return_bound=True`` is a ValueError): compare against
    doubled nodes. Cost: the kernel at all (B + Q)^2 pairs of X u {nodes}."""
    kxy, kyy, w, rule = _kernel_to_nodes(net, X, box, nodes, return_bound)
    value = -0.5 * ((kxy * (kyy * w)) @ kxy.T)
    value = 0.5 * (value + value.T)
    if return_bound:
        return value, _bound(net, rule, 2, 2, 0.5 * _g0(net) ** 3)
    return value


def phi4_tree_level(net, X, box, quadruples=None, nodes=None, *, return_bound=False):
    """The infinite-width first-order connected four-point function of lambda phi^4,

        dG4c(x1, x2, x3, x4) / d lambda = -int_V prod_{k=1..4} K(x_k, y) dy,

    on the points X (B, d): the (B, B, B, B) tensor, or its (T,) entries at the index
    ``quadruples`` (T, 4).

    Cos-net: K(x, y) = G(x - y), the y-integral by ``QuadratureRule.for_field(net, box,
    nodes)``; error at most G(0)^4 V eps, eps = ``gl_error_bound`` at 4 Lambda (Gaussian
    momenta: effective, plus the tail term); ``return_bound=True`` returns (value, bound).

    MLP (``nf.Network``, the outputs deformed as in ``phi4_tadpole``, X (B, n_0), V in
    R^{n_0}): K = K^(L), the tensor Gauss-Legendre rule with the required ``nodes``, no
    bound (compare against doubled nodes); the kernel at all (B + Q)^2 pairs."""
    gy, _, w, rule = _kernel_to_nodes(net, X, box, nodes, return_bound)
    b, nq = gy.shape
    if quadruples is None:
        pairs = (gy[:, None, :] * gy[None, :, :]).reshape(b * b, nq)
        value = -((pairs * w) @ pairs.T).reshape(b, b, b, b)
    else:
        q = check_tuples("quadruples", quadruples, 4, b)
        value = np.empty(len(q))
        step = max(1, _CHUNK // max(nq, 1))
        for start in range(0, len(q), step):
            t = q[start : start + step]
            value[start : start + step] = (
                -(gy[t[:, 0]] * gy[t[:, 1]] * gy[t[:, 2]] * gy[t[:, 3]]) @ w
            )
    if return_bound:
        return value, _bound(net, rule, 4, 4, _g0(net) ** 4)
    return value


def phi4_first_order_two_point(net, X, box, nodes=None, *, return_bound=False):
    """The exact first-order two-point function of lambda phi^4 at finite width N,

        dG_ab / d lambda = -Cov_0(phi(x_a) phi(x_b), (1/4!) int_V phi^4)
                         = -(1/24) int_V (E[phi_a phi_b phi_y^4] - G_ab E[phi_y^4]) d^d y
                         = -(1/24) int_V [kappa6(a,b,y,y,y,y) + 4 G_ay kappa4(b,y,y,y)
                                          + 4 G_by kappa4(a,y,y,y) + 6 G(0) kappa4(a,b,y,y)] dy
                           - (1/2) G(0) int_V G_ay G_yb dy,

    the six-point moment written as the sum over the set partitions of {a, b, y, y, y, y}
    into cumulants (kappa2 = G, kappa4 = G4c, kappa6 = G6c of the free cos-net at width
    N, odd ones zero; the kappa2(ab) terms cancel against G_ab E[phi_y^4]). The cumulants
    are ``cosnet_four_point(..., quadruples)`` and ``cosnet_six_point`` on the point set
    X u {quadrature nodes}, G = ``cosnet_propagator``. As N -> infinity it reduces to
    ``phi4_tadpole`` (the last term); at width N it is tadpole + c1 / N + c2 / N^2 exactly.

    X (B, d): (B, B), the y-integral by ``QuadratureRule.for_field(net, box, nodes)``. The
    integrand's y-frequencies are at most 2 Lambda, so its error is at most (V / 24) M eps,
    eps = ``gl_error_bound`` at 2 Lambda (Gaussian momenta: effective, plus the tail term)
    and M = k6 + 14 G(0) k4 + 12 G(0)^3 with k4 = (3 c4 H(0) / 2 + 3 G(0)^2) / N and k6 =
    (5 c6 H3(0) / 2 + 45 c4 G(0) H(0) / 2 + 30 G(0)^3) / N^2 the total masses of kappa4 and
    kappa6; ``return_bound=True`` returns (value, bound).
    """
    net, X, rule = _setup(net, X, box, nodes)
    g0 = _g0(net)
    b, y, w = X.shape[0], rule.points, rule.weights
    ia, ib = np.triu_indices(b)
    n_pairs = ia.size
    chunk = int(max(1, min(_MAX_NODE_CHUNK, _PAIR_NODES // n_pairs)))
    total = np.zeros(n_pairs)
    for start in range(0, len(y), chunk):
        yc, wc = y[start : start + chunk], w[start : start + chunk]
        c = len(yc)
        points = np.concatenate([X, yc])
        nodes_c = b + np.arange(c)
        # (pair, node) rows: (a, b, y, y) and (a, b, y, y, y, y); (a, node): (a, y, y, y)
        pa, pb = np.repeat(ia, c), np.repeat(ib, c)
        py = np.tile(nodes_c, n_pairs)
        k4ab = cosnet_four_point(net, points, np.stack([pa, pb, py, py], axis=1))
        k6 = cosnet_six_point(net, points, np.stack([pa, pb, py, py, py, py], axis=1))
        sa, sy = np.repeat(np.arange(b), c), np.tile(nodes_c, b)
        k4a = cosnet_four_point(net, points, np.stack([sa, sy, sy, sy], axis=1)).reshape(b, c)
        gay = cosnet_propagator(net, _norms(X[:, None, :] - yc[None, :, :]))  # (B, c)
        integrand = (
            k6.reshape(n_pairs, c)
            + 4.0 * gay[ia] * k4a[ib]
            + 4.0 * gay[ib] * k4a[ia]
            + 6.0 * g0 * k4ab.reshape(n_pairs, c)
            + 12.0 * g0 * gay[ia] * gay[ib]
        )
        total += integrand @ wc
    value = np.empty((b, b))
    value[ia, ib] = value[ib, ia] = -total / 24.0
    if return_bound:
        c4, c6 = amplitude_moments(net)
        h0, h30 = float(cosnet_h(net, 0.0)), float(cosnet_h3(net, 0.0))
        n = float(net.width)
        k4 = (1.5 * c4 * h0 + 3.0 * g0**2) / n
        k6 = (2.5 * c6 * h30 + 22.5 * c4 * g0 * h0 + 30.0 * g0**3) / n**2
        mass = (k6 + 14.0 * g0 * k4 + 12.0 * g0**3) / 24.0
        return value, _bound(net, rule, 2, 2, mass)
    return value


__all__ = ["phi4_first_order_two_point", "phi4_tadpole", "phi4_tree_level"]
