"""Quartic couplings from correlators: the first-order Edgeworth action.

Demirtas, Halverson, Maiti, Schwartz & Stoner, arXiv:2307.03223 (the Edgeworth-motivated
reconstruction of the action):
given the two-point function G and the connected four-point function G4c of a field
phi in R^B (here: one neuron's preactivations on B inputs), the density to first order in
G4c is

    p(phi) = N(phi; 0, G) [1 + (1/4!) G4c_abcd H_abcd(phi)],
    H_abcd = y_a y_b y_c y_d - (Gi_ab y_c y_d + 5 perms) + (Gi_ab Gi_cd + 2 perms),

with Gi = G^{-1}, y = Gi phi (H N = d^4 N / dphi_a dphi_b dphi_c dphi_d). Exponentiating,
p = exp(-S) with

    S(phi) = (1/2) phi_a M_ab phi_b + (1/4!) lam_abcd phi_a phi_b phi_c phi_d + c,
    lam_abcd = - G4c_efgh Gi_ea Gi_fb Gi_gc Gi_hd                 (quartic coupling)
    M_cd     = Gi_cd - (1/2) lam_abcd G_ab                        (corrected quadratic)
    c        = (1/2) log det(2 pi G) + (1/8) lam_abcd G_ab G_cd    (normalisation)

Derivation: the y^4 term of H gives the quartic term; the six "Gi y y" terms give
-(1/4) G4c_abcd Gi_ab y_c y_d = -(1/4) lam_abcd G_ab phi_c phi_d in log p, hence the -1/2 in
M; the three constants give the 1/8 in c. Check: with S as above, first-order perturbation
theory gives <phi phi> = M^{-1} - (1/2) G (lam . G) G = G (the tadpole of lam/4! phi^4 is
cancelled by the shift of M) and a connected four-point function -lam . G^{x4} = G4c, so
the action reproduces its inputs up to O(G4c^2). Sign: S contains +lam/4!, so a positive
excess kurtosis (networks at finite width) gives lam < 0.

Layer action (many neurons). For the n neurons of a layer, phi_{i a}, with
G = delta_ij K and a permutation-invariant law, the connected four-point function is
    delta_ij delta_kl C_abcd + delta_ik delta_jl C_acbd + delta_il delta_jk C_adbc
    + delta_ijkl E_abcd,
C the distinct-neuron function, E = (same-neuron function) - (C_abcd + C_acbd + C_adbc)
(zero for rotation-invariant laws: Gaussian and Haar weights). The same construction gives
    S = (1/2) sum_i phi_i M phi_i + (1/8) sum_ij lam_abcd phi_ia phi_ib phi_jc phi_jd
        + (1/4!) sum_i onsite_abcd phi_ia phi_ib phi_ic phi_id,
    lam    = -C . K^{-1 x4},   onsite = -E . K^{-1 x4},
    M_cd   = Ki_cd - (1/2) [(n - 1) lam_abcd + lam^same_abcd] K_ab,
lam^same = -(same-neuron function) . K^{-1 x4}. Roberts-Yaida (arXiv:2106.10165, ch. 4) write
the quartic term as -(1/8) v, so lam = -v and, for rotation-invariant laws,
M = K^{-1} + (1/2) sum_ab K_ab [n v_(ab)(cd) + 2 v_(ac)(bd)]: the quadratic coupling depends
on the number n of neurons kept (their marginalisation rule); n = 1 is the one-neuron action.

All functions accept leading batch axes (e.g. jackknife replicas) on every array.
"""

import math

import numpy as np

from nnft_fast.ensemble import Ensemble, Estimate

SYMMETRY_RTOL = 1e-8

__all__ = [
    "action_constant",
    "evaluate_action",
    "layer_coupling",
    "measured_coupling",
    "quartic_coupling",
]


# ------------------------------------------------------------------------ validation


def _as_float_array(name, value):
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _symmetric(arr, axes_perm, scale):
    """True when arr equals its transpose by axes_perm (trailing axes) within tolerance."""
    lead = arr.ndim - len(axes_perm)
    perm = tuple(range(lead)) + tuple(lead + p for p in axes_perm)
    return np.allclose(arr, np.transpose(arr, perm), rtol=0.0, atol=SYMMETRY_RTOL * scale)


def _check_two_point(two_point):
    """(G, G^{-1}) after checking shape, symmetry and positive definiteness."""
    g = _as_float_array("two_point", two_point)
    if g.ndim < 2 or g.shape[-1] != g.shape[-2] or g.shape[-1] < 1:
        raise ValueError(f"two_point must be a square (..., B, B) matrix, got shape {g.shape}")
    scale = max(float(np.max(np.abs(g))), np.finfo(np.float64).tiny)
    if not _symmetric(g, (1, 0), scale):
        raise ValueError("two_point must be symmetric")
    try:
        np.linalg.cholesky(g)
    except np.linalg.LinAlgError:
        raise ValueError(
            "two_point must be positive definite (it is singular or has "
            "a non-positive eigenvalue); repeated or zero inputs make G "
            "singular and the action undefined"
        ) from None
    eye = np.broadcast_to(np.eye(g.shape[-1]), g.shape)
    gi = np.linalg.solve(g, eye)
    gi = 0.5 * (gi + np.swapaxes(gi, -1, -2))
    return g, gi


def _check_four_point(name, four_point, g, full_symmetry):
    b = g.shape[-1]
    c = _as_float_array(name, four_point)
    if c.ndim < 4 or c.shape[-4:] != (b,) * 4:
        raise ValueError(
            f"{name} must have shape (..., B, B, B, B) with B = {b} (from two_point), got {c.shape}"
        )
    try:
        np.broadcast_shapes(g.shape[:-2], c.shape[:-4])
    except ValueError:
        raise ValueError(
            f"leading (batch) axes of two_point {g.shape[:-2]} and {name} "
            f"{c.shape[:-4]} do not broadcast"
        ) from None
    scale = max(float(np.max(np.abs(c))), float(np.max(np.abs(g))) ** 2, np.finfo(np.float64).tiny)
    perms = ((1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1))  # (ab), (cd), (ab)<->(cd)
    if full_symmetry:
        perms = perms + ((0, 2, 1, 3),)  # with the above: all 24 permutations
    for perm in perms:
        if not _symmetric(c, perm, scale):
            what = (
                "fully symmetric in its four indices"
                if full_symmetry
                else "symmetric under a<->b, c<->d and (ab)<->(cd)"
            )
            raise ValueError(f"{name} must be {what}")
    return c


def _check_n_neurons(n_neurons):
    if isinstance(n_neurons, (bool, np.bool_)) or not isinstance(n_neurons, (int, np.integer)):
        raise TypeError(f"n_neurons must be an integer >= 1, got {n_neurons!r}")
    if n_neurons < 1:
        raise ValueError(f"n_neurons must be >= 1, got {n_neurons}")
    return int(n_neurons)


# ------------------------------------------------------------------------ algebra


def _lower_all(gi, t):
    """t_efgh Gi_ea Gi_fb Gi_gc Gi_hd (Gi symmetric), batched over leading axes."""
    t = np.einsum("...ea,...efgh->...afgh", gi, t)
    t = np.einsum("...fb,...afgh->...abgh", gi, t)
    t = np.einsum("...gc,...abgh->...abch", gi, t)
    return np.einsum("...hd,...abch->...abcd", gi, t)


def _pair_trace(lam, g):
    """sum_ab lam_abcd G_ab -> (..., B, B) over (c, d)."""
    return np.einsum("...abcd,...ab->...cd", lam, g)


def _symmetrise(m):
    return 0.5 * (m + np.swapaxes(m, -1, -2))


def quartic_coupling(two_point, four_point_connected):
    """First-order Edgeworth action of a field phi in R^B (module docstring).

    two_point: G (..., B, B), symmetric positive definite. four_point_connected: G4c
    (..., B, B, B, B), fully symmetric (e.g. the same-neuron connected function).
    Returns (lam, quadratic): lam_abcd = -G4c . (G^{-1})^{x4} (..., B, B, B, B) and
    M_cd = G^{-1}_cd - (1/2) lam_abcd G_ab (..., B, B), so that
    S(phi) = phi M phi / 2 + lam phi^4 / 4! + const reproduces G and G4c to first order.
    """
    g, gi = _check_two_point(two_point)
    g4 = _check_four_point("four_point_connected", four_point_connected, g, True)
    lam = -_lower_all(gi, g4)
    quadratic = _symmetrise(gi - 0.5 * _pair_trace(lam, g))
    return lam, quadratic


def layer_coupling(two_point, distinct_connected, same_connected=None, n_neurons=1):
    """First-order Edgeworth action of n_neurons neurons of one layer (module docstring).

    two_point: K (..., B, B); distinct_connected: C (..., B, B, B, B), the i != j
    connected function (symmetric in (ab), (cd) and under (ab)<->(cd));
    same_connected: the same-neuron connected function, or None to assume a
    rotation-invariant law (same = C_abcd + C_acbd + C_adbc, onsite coupling 0).
    Returns (lam, quadratic, onsite) with
    S = sum_i phi_i M phi_i / 2 + sum_ij lam phi_i phi_i phi_j phi_j / 8
        + sum_i onsite phi_i^4 / 4! + const.
    """
    n = _check_n_neurons(n_neurons)
    k, ki = _check_two_point(two_point)
    c = _check_four_point("distinct_connected", distinct_connected, k, False)
    lam = -_lower_all(ki, c)
    lam_sym = lam + np.einsum("...acbd->...abcd", lam) + np.einsum("...adbc->...abcd", lam)
    if same_connected is None:
        lam_same = lam_sym
        onsite = np.zeros_like(lam_sym)
    else:
        same = _check_four_point("same_connected", same_connected, k, True)
        lam_same = -_lower_all(ki, same)
        onsite = lam_same - lam_sym
    quadratic = _symmetrise(ki - 0.5 * _pair_trace((n - 1) * lam + lam_same, k))
    return lam, quadratic, onsite


def action_constant(two_point, coupling):
    """Normalisation c = log det(2 pi G)/2 + lam_abcd G_ab G_cd / 8 of the one-field action,
    so that exp(-S) integrates to 1 at first order in lam."""
    g, _ = _check_two_point(two_point)
    lam = _as_float_array("coupling", coupling)
    if lam.ndim < 4 or lam.shape[-4:] != (g.shape[-1],) * 4:
        raise ValueError(
            f"coupling must have shape (..., B, B, B, B) with B = {g.shape[-1]}, got {lam.shape}"
        )
    _, logdet = np.linalg.slogdet(2.0 * math.pi * g)
    return 0.5 * logdet + 0.125 * np.einsum("...abcd,...ab,...cd->...", lam, g, g)


def evaluate_action(phi, quadratic, coupling, constant=0.0):
    """S(phi) = phi M phi / 2 + lam phi^4 / 4! + constant for phi (..., B) (one field, no
    batch axes on M, lam)."""
    phi = _as_float_array("phi", phi)
    m = _as_float_array("quadratic", quadratic)
    lam = _as_float_array("coupling", coupling)
    b = m.shape[-1]
    if m.shape != (b, b) or lam.shape != (b,) * 4 or phi.shape[-1:] != (b,):
        raise ValueError(
            f"need quadratic (B, B), coupling (B, B, B, B), phi (..., B); got "
            f"{m.shape}, {lam.shape}, {phi.shape}"
        )
    quad = np.einsum("...a,ab,...b->...", phi, m, phi)
    quart = np.einsum("...a,...b,...c,...d,abcd->...", phi, phi, phi, phi, lam, optimize=True)
    return 0.5 * quad + quart / 24.0 + constant


# ------------------------------------------------------------------------ measured


def measured_coupling(ensemble, layer, neurons="same", n_neurons=None):
    """(lam, quadratic) as ``Estimate``s with delete-one-block jackknife errors.

    neurons="same": the one-neuron action from the two-point and the same-neuron connected
    function (``quartic_coupling``). neurons="distinct": the layer action of
    ``layer_coupling`` for n_neurons neurons (default: the layer's width n_l), lam being
    the inter-neuron coupling -C . K^{-1 x4} (= -v of Roberts-Yaida) and the quadratic
    term using both connected functions. The whole nonlinear map is recomputed on every
    jackknife replica, so the errors include all correlations between K and the
    four-point function.
    """
    if not isinstance(ensemble, Ensemble):
        raise TypeError(f"ensemble must be an nf.Ensemble, got {type(ensemble).__name__}")
    if neurons not in ("same", "distinct"):
        raise ValueError(f"neurons must be 'same' or 'distinct', got {neurons!r}")
    ensemble.four_point(layer, connected=True, neurons=neurons)  # validates layer etc.
    if neurons == "distinct":
        n = ensemble.network.widths[layer] if n_neurons is None else n_neurons
        n = _check_n_neurons(n)
    elif n_neurons is not None:
        raise ValueError("n_neurons applies to neurons='distinct' only")
    b = ensemble.inputs.shape[0]

    def statistic(m):
        if neurons == "same":
            lam, quad = quartic_coupling(m.two_point, m.same_connected)
        else:
            lam, quad, _ = layer_coupling(m.two_point, m.distinct_connected, m.same_connected, n)
        lead = lam.shape[:-4]
        return np.concatenate([lam.reshape(lead + (-1,)), quad.reshape(lead + (-1,))], -1)

    est = ensemble.estimate(layer, statistic)
    split = b**4
    lam = Estimate(
        est.value[..., :split].reshape((b,) * 4), est.error[..., :split].reshape((b,) * 4)
    )
    quad = Estimate(est.value[..., split:].reshape((b, b)), est.error[..., split:].reshape((b, b)))
    return lam, quad
