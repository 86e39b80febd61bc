"""Leading-order NTK fluctuations A, B, D, F (Roberts & Yaida ch. 8): Gaussian or Haar weights.

Normalisation (docs/conventions.md#ntk; the estimators of ``nnft_fast/ntk.py``): at layer l,
with n = n_{l-1}, i's neurons of layer l, a's inputs, dH = H - E[H],
    E[dH_{i1i2;a1a2} dH_{i3i4;a3a4}] = (1/n)[d12 d34 A_{a1a2a3a4} + d13 d24 B_{a1a3a2a4}
                                           + d14 d23 B_{a1a4a2a3}],
    E[dH_{i1i2;a1a2} z_{i3;a3} z_{i4;a4}] = (1/n)[d12 d34 D_{a1a2a3a4} + d13 d24 F_{a1a3a2a4}
                                               + d14 d23 F_{a1a4a2a3}],
so A_abcd = n Cov(H_ii;ab, H_jj;cd), B_acbd = n E[H_ij;ab H_ij;cd], D_abcd = n Cov(H_ii;ab,
z_j;c z_j;d), F_acbd = n E[H_ij;ab z_i;c z_j;d] (i != j).

Derivation. Write n = n_{l-1}, n' = n_l, C = C_W^(l+1), s_{j;a} = sigma(z^(l)_{j;a}),
t_{j;a} = sigma'(z^(l)_{j;a}), W = W^(l+1) iid N(0, C/n'). The NTK obeys exactly
    H^(l+1)_{i1i2;a1a2} = d_{i1i2} [lambda_b + lambda_W G_a1a2]
                          + sum_{j1j2} W_{i1j1} W_{i2j2} t_{j1;a1} t_{j2;a2} H^(l)_{j1j2;a1a2},
G = (1/n') sum_j s_j s_j. Averaging over W given layer l (Wick on four W's):
    E[H_{i1i2} z_i3 z_i4 | l] = d12 d34 Th_12 Kh_34
        + d13 d24 (C/n')^2 sum_{j1j2} t_{j1;1} s_{j1;3} t_{j2;2} s_{j2;4} H^(l)_{j1j2;12}
        + (3 <-> 4),
    E[H_{i1i2} H_{i3i4} | l] = d12 d34 Th_12 Th_34
        + d13 d24 (C/n')^2 sum_{j1j2} t_{j1;1} t_{j2;2} t_{j1;3} t_{j2;4} H_{j1j2;12} H_{j1j2;34}
        + (3 <-> 4),
with the conditional kernel Kh = C_b + C G and conditional mean NTK Th = lambda_b + lambda_W G
+ C Om, Om_ab = (1/n') sum_j t_{j;a} t_{j;b} H^(l)_{jj;ab}. Hence, exactly,
    A^(l+1) = n' Cov(Th_ab, Th_cd),     D^(l+1) = n' C Cov(Th_ab, G_cd),
    B^(l+1)_acbd = (C^2/n') E[sum_{j1j2} t_{j1;a} t_{j1;c} t_{j2;b} t_{j2;d} H_{j1j2;ab}
                   H_{j1j2;cd}],
    F^(l+1)_acbd = (C^2/n') E[sum_{j1j2} t_{j1;a} s_{j1;c} t_{j2;b} s_{j2;d} H_{j1j2;ab}].
The sums over neurons split into j1 = j2 (n' terms, layer l Gaussian with kernel K = K^(l),
H_jj -> Theta = Theta^(l)) and j1 != j2 (n'^2 terms, each O(1/n), carried by the layer-l
cumulants: the vertex V (docs/conventions.md#vertex), kappa(dH_jj, z_k, z_k) = D/n,
kappa(dH_{j1j2}, z_j1, z_j2) = F/n, E[dH_jj dH_kk] = A/n, E[H_{j1j2} H_{j1j2}] = B/n).
For functions g, h of one neuron's preactivations, at leading order (j != k)
    Cov(g(z_j), h(z_k))         = (1/4n) sum V_efgh <d_e d_f g> <d_g d_h h>,
    Cov(g(z_j), h(z_k) dH_kk;cd) = (1/2n) sum D_cdef <d_e d_f g> <h>,
    E[g(z_j1) h(z_j2) H_j1j2]   = (1/n)  sum F_{a e b f} <d_e g> <d_f h>,
    Cov(g(z_j) dH_jj, h(z_k) dH_kk) = (1/n) A <g> <h>,
(<.> = <.>_K, the Gaussian average; the mixed cumulants that would couple z_j and z_k to
dH_jj vanish by the delta-structures). With f_ab = lambda_W s_a s_b + C Theta_ab t_a t_b
(the one-neuron summand of Th), r = n'/n and, on one neuron,
    Dss^{ef}_ab = <d_e d_f (s_a s_b)>,  Df^{ef}_ab = <d_e d_f f_ab>,  P^e_ab = <d_e (t_a s_b)>,
the leading-order recursions are
    Theta^(l+1)_ab = lambda_b + lambda_W <s_a s_b> + C <t_a t_b> Theta_ab,
    A^(l+1)_abcd   = Cov[f_ab, f_cd]
                     + r [ (1/4) V_efgh Df^{ef}_ab Df^{gh}_cd
                           + (C/2) <t_c t_d> D_cdef Df^{ef}_ab + (C/2) <t_a t_b> D_abgh Df^{gh}_cd
                           + C^2 <t_a t_b> <t_c t_d> A_abcd ],
    D^(l+1)_abcd   = C Cov[f_ab, s_c s_d]
                     + r C [ (1/4) V_efgh Df^{ef}_ab Dss^{gh}_cd
                             + (C/2) <t_a t_b> D_abgh Dss^{gh}_cd ],
    B^(l+1)_acbd   = C^2 Theta_ab Theta_cd <t_a t_b t_c t_d> + r C^2 <t_a t_c> <t_b t_d> B_acbd,
    F^(l+1)_acbd   = C^2 Theta_ab <t_a t_b s_c s_d> + r C^2 sum_ef F_aebf P^e_ac P^f_bd,
(sums over repeated e, f, g, h; the right-hand sides at layer l: K, Theta, V, A, B, D, F;
Cov and <.> Gaussian with K), started from A = B = D = F = 0 at layer 1 (H^(1) is
deterministic). A and D couple to each other and to V; B and F only to themselves
(Roberts-Yaida eqs. for A, B, D, F in their notation, with lambda^(l) = lambda the same at
every layer and the fan-in 1/n in lambda_W as in this package). Layer 2 is exact at any
width n_1 (V, A, ..., of layer 1 vanish and the layer-2 NTK is an average of n_1 iid
neuron terms): A^(2) = Cov[f, f], D^(2) = C Cov[f, s s], B^(2), F^(2) as above.

Derivatives without sigma'': Gaussian integration by parts on the marginal M of the inputs
a function g depends on, <d_e g> = (M^{-1} <z g>)_e, <d_e d_f g> = (M^{-1} <g (z z^T - M)>
M^{-1})_ef (zero for e, f outside the marginal). Averages over one or two distinct inputs
use a polar rule cut where some z_a = 0 (``_polar_rule``): ReLU's kink and step sit on cell
edges, and the averages are exact to rounding for ReLU (~1e-12 for tanh); over three or four
distinct inputs a tensor Gauss-Hermite rule, which converges only algebraically across
ReLU's kinks. One input, closed forms at criticality (tests): ReLU with
C_W = 2, C_b = 0, theta = lambda_b + lambda_W K / 2, Theta^(l) = l theta and
    B = theta^2 (l-1) l (2l-1) / 3,   F = theta K l (l-1),
    D = (5/4) lambda_W K^2 l (l-1) + theta K l (l-1) / 2,
    A = [(5/4) lambda_W^2 K^2 + theta^2] (l-1) l (2l-1) / 6 + theta lambda_W K (l-1) l (l+1) / 6
(lambda_b = 0: A / Theta^2 = (l-1)(7l-2) / (3l), 2 at layer 2, growing like 7l/3);
deep linear with C_W = 1, C_b = 0, theta = lambda_b + lambda_W K:
    B = theta^2 (l-1) l (2l-1) / 6, F = theta K l (l-1) / 2, D = lambda_W K^2 l (l-1),
    A = lambda_W^2 K^2 (l-1) l (2l-1) / 3.

Haar-orthogonal weights W = s O (O an n_{l+1} x n_l frame of an N x N Haar matrix,
N = max(n_l, n_{l+1}), s^2 = C N / n_l, docs/conventions.md#haar). Two W's have the
Gaussian moments exactly, so Th, Kh, and the exact identities for A and D above are
unchanged. Four W's follow the O(N) Weingarten function,
    E[W_i1j1 W_i2j2 W_i3j3 W_i4j4] = (C/n')^2 [ sum_p d_p(i) d_p(j) (1 + O(1/N^2))
                                              - (1/N) sum_{p != q} d_p(i) d_q(j) ],
p, q the three pairings of 1..4. In E[H_{i1i2} H_{i3i4} | l] and E[H_{i1i2} z_i3 z_i4 | l]
the cross terms with q = (12)(34) on the j's meet the O(n'^2) sums
sum_{j,k} t_j t_j H_jj t_k t_k H_kk = n'^2 Om Om and sum_{j,k} t_j t_j H_jj s_k s_k =
n'^2 Om G; every other cross term is O(n') and drops at this order, and those with
p = (12)(34) on the i's (A, D) are O(1/n^2). So A and D keep their recursion (with the Haar
V, A, D of layer l) and B, F gain
    B^(l+1)_acbd += -(n'/N) C^2 Theta_ab Theta_cd <t_a t_b> <t_c t_d>,
    F^(l+1)_acbd += -(n'/N) C^2 Theta_ab <t_a t_b> <s_c s_d>,
the analogue of the vertex's -C^2 (n'/N) (<s_a s_c> <s_b s_d> + <s_a s_d> <s_b s_c>)
(``theory.vertex``). Layer 1 has no fluctuations (H^(1) is deterministic), but V^(1) != 0
enters A, D of layer 2, which is therefore not exact at finite width for Haar weights.
Checks, one input, square hidden layers n_l = n >= n_0, C_b = 0: deep linear (C_W = 1)
gives A = B = D = F = 0 at every layer, as it must: W O-scaled keeps |z^(l)| and the
Jacobians deterministic, so the NTK of every network is the same; ReLU (C_W = 2) gives the
Gaussian forms with 5/4 -> 3/4 in A and D and halved B and F:
    B = theta^2 (l-1) l (2l-1) / 6,   F = theta K l (l-1) / 2,
    D = (3/4) lambda_W K^2 l (l-1) + theta K l (l-1) / 2,
    A = [(3/4) lambda_W^2 K^2 + theta^2] (l-1) l (2l-1) / 6 + theta lambda_W K (l-1) l (l+1) / 6.
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np

from nnft_fast.run import DEFAULT_LAMBDA_B, DEFAULT_LAMBDA_W, validate_inputs

from .gaussian_integrals import numpy_activation, numpy_derivative
from .infinite_width import ntk_recursion
from .vertex import vertex_recursion

NODES_BY_DIMENSION = {1: 128, 2: 96, 3: 40, 4: 22}  # polar rule for 1, 2; Hermite for 3, 4


@dataclass
class PredictedNTKFluctuations:
    """Leading-order A, B, D, F of one layer, (B, B, B, B) arrays in the normalisation and
    index placement of ``Ensemble.ntk_fluctuations`` (B[a1, a3, a2, a4], F likewise)."""

    A: np.ndarray
    B: np.ndarray
    D: np.ndarray
    F: np.ndarray


@dataclass
class NTKTheory:
    """Per-layer infinite-width K, Theta and leading-order V and NTK fluctuations
    (index l - 1 holds layer l)."""

    kernels: list
    ntk: list
    vertices: list
    fluctuations: list


class GaussianMoments:
    """Gaussian expectations of products of sigma(z_a), sigma'(z_a) and their first and
    second derivatives (integration by parts) under z ~ N(0, K), one tensor-product
    Gauss-Hermite grid per set of distinct inputs (at most 4)."""

    def __init__(self, sigma, dsigma, k, nodes=None):
        self.sigma, self.dsigma, self.k = sigma, dsigma, np.asarray(k, dtype=np.float64)
        self.nodes = dict(NODES_BY_DIMENSION if nodes is None else nodes)
        self._grids = {}

    def _grid(self, inputs):
        """(z (Q, m), weights (Q,), sigma (Q, m), sigma' (Q, m)) for sorted distinct inputs."""
        if inputs not in self._grids:
            cov = self.k[np.ix_(inputs, inputs)]
            evals, evecs = np.linalg.eigh(cov)
            root = evecs * np.sqrt(np.clip(evals, 0.0, None))  # cov = root root^T
            rule = _polar_rule if len(inputs) <= 2 else _hermite_rule
            z, w = rule(root, self.nodes)
            self._grids[inputs] = (z, w, self.sigma(z), self.dsigma(z))
        return self._grids[inputs]

    def _product(self, factors):
        """(inputs, z, weights, product): factors are (input, 's' | 't') pairs."""
        inputs = tuple(sorted({a for a, _ in factors}))
        z, w, s, t = self._grid(inputs)
        prod = np.ones(len(w))
        for a, kind in factors:
            prod = prod * (s if kind == "s" else t)[:, inputs.index(a)]
        return inputs, z, w, prod

    def mean(self, factors):
        """<prod of factors>."""
        _, _, w, prod = self._product(factors)
        return float(w @ prod)

    def first(self, factors):
        """(B,) vector <d_e prod>, by <d_e g> = (M^{-1} <z g>)_e on the marginal M."""
        inputs, z, w, prod = self._product(factors)
        out = np.zeros(self.k.shape[0])
        m = self.k[np.ix_(inputs, inputs)]
        out[list(inputs)] = np.linalg.pinv(m) @ ((w * prod) @ z)
        return out

    def second(self, factors):
        """(B, B) matrix <d_e d_f prod> = M^{-1} <prod (z z^T - M)> M^{-1} on the marginal."""
        inputs, z, w, prod = self._product(factors)
        out = np.zeros(self.k.shape)
        m = self.k[np.ix_(inputs, inputs)]
        minv = np.linalg.pinv(m)
        avg = np.einsum("q,qe,qf->ef", w * prod, z, z) - float(w @ prod) * m
        out[np.ix_(inputs, inputs)] = minv @ avg @ minv
        return out


def _hermite_rule(root, nodes):
    """Tensor Gauss-Hermite nodes z = root u, u ~ N(0, I_m), and weights (m = 3, 4)."""
    m = root.shape[0]
    x, w = np.polynomial.hermite_e.hermegauss(nodes[m])
    w = w / math.sqrt(2.0 * math.pi)
    mesh = np.stack(np.meshgrid(*([x] * m), indexing="ij"), axis=-1).reshape(-1, m)
    wmesh = np.stack(np.meshgrid(*([w] * m), indexing="ij"), axis=-1).reshape(-1, m)
    return mesh @ root.T, np.prod(wmesh, axis=1)


def _polar_rule(root, nodes):
    """Nodes z = root u and weights for u ~ N(0, I_m), m = 1, 2, in polar coordinates:
    Gauss-Legendre in r on [0, R] (weight r^(m-1) e^{-r^2/2}) and, for m = 2, in the angle
    on every arc between the angles where some z_a = 0 (m = 1: the two half-lines). Kinks
    and steps at z_a = 0 (ReLU, its derivative) then sit on the cells' edges, where the
    rule has spectral accuracy on each piece (a tensor Hermite rule across a step converges
    only algebraically)."""
    m = root.shape[0]
    n_r = nodes[m]
    r_max = 12.0 + 4.0 * float(np.linalg.norm(root, 2))  # room for e^{4 z} integrands
    x, w = np.polynomial.legendre.leggauss(n_r)
    r = 0.5 * r_max * (x + 1.0)
    wr = 0.5 * r_max * w * np.exp(-0.5 * r * r)
    if m == 1:
        u = np.concatenate([r, -r])[:, None]
        return u @ root.T, np.concatenate([wr, wr]) / math.sqrt(2.0 * math.pi)
    cuts = [0.0, 2.0 * math.pi]
    for row in root:
        if np.any(row != 0.0):
            phi = math.atan2(-row[0], row[1]) % math.pi
            cuts += [phi, phi + math.pi]
    cuts = np.unique(np.asarray(cuts))
    xa, wa = np.polynomial.legendre.leggauss(nodes[m] // 2)
    phis, wphis = [], []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if hi - lo > 1e-15:
            phis.append(lo + 0.5 * (hi - lo) * (xa + 1.0))
            wphis.append(0.5 * (hi - lo) * wa)
    phi, wphi = np.concatenate(phis), np.concatenate(wphis)
    u = np.stack([np.outer(r, np.cos(phi)).ravel(), np.outer(r, np.sin(phi)).ravel()], axis=-1)
    weights = np.outer(wr * r, wphi).ravel() / (2.0 * math.pi)
    return u @ root.T, weights


def _layer_tables(mom, nb):
    """The Gaussian tables of one layer (docstring names): <s s>, <t t>, <s s s s>,
    <t t t t>, <t_a t_b s_c s_d>, Dss, Dtt = <d d (t t)>, P."""
    pairs = list(itertools.product(range(nb), repeat=2))
    s2, t2 = np.empty((nb, nb)), np.empty((nb, nb))
    dss, dtt = np.empty((nb,) * 4), np.empty((nb,) * 4)
    p = np.empty((nb, nb, nb))
    for a, b in pairs:
        s2[a, b] = mom.mean([(a, "s"), (b, "s")])
        t2[a, b] = mom.mean([(a, "t"), (b, "t")])
        dss[a, b] = mom.second([(a, "s"), (b, "s")])
        dtt[a, b] = mom.second([(a, "t"), (b, "t")])
        p[a, b] = mom.first([(a, "t"), (b, "s")])
    s4, t4, m4 = np.empty((nb,) * 4), np.empty((nb,) * 4), np.empty((nb,) * 4)
    for idx in itertools.combinations_with_replacement(range(nb), 4):  # symmetric in all
        s_val = mom.mean([(a, "s") for a in idx])
        t_val = mom.mean([(a, "t") for a in idx])
        for perm in set(itertools.permutations(idx)):
            s4[perm], t4[perm] = s_val, t_val
    for (a, b), (c, d) in itertools.product(
        itertools.combinations_with_replacement(range(nb), 2), repeat=2
    ):  # symmetric within (a, b) and within (c, d)
        val = mom.mean([(a, "t"), (b, "t"), (c, "s"), (d, "s")])
        for i, j, k, m in ((a, b, c, d), (b, a, c, d), (a, b, d, c), (b, a, d, c)):
            m4[i, j, k, m] = val
    return s2, t2, s4, t4, m4, dss, dtt, p


def fluctuation_step(mom, theta, vertex, prev, cw, lambda_w, ratio, haar_ratio=None):
    """A, B, D, F of layer l+1 from layer l (module docstring): ``mom`` the Gaussian moments
    under K^(l), ``theta`` Theta^(l), ``vertex`` V^(l), ``prev`` the layer-l
    PredictedNTKFluctuations, cw = C_W^(l+1), ratio = n_l / n_{l-1}; haar_ratio = n_l / N
    (N = max(n_l, n_{l+1})) adds the Weingarten terms of Haar weights W^(l+1), None for
    Gaussian weights."""
    nb = theta.shape[0]
    s2, t2, s4, t4, m4, dss, dtt, p = _layer_tables(mom, nb)
    outer = "ab,cd->abcd"
    th_ab = theta[:, :, None, None]
    th_cd = theta[None, None, :, :]
    t2_ab, t2_cd = t2[:, :, None, None], t2[None, None, :, :]
    s2_ab, s2_cd = s2[:, :, None, None], s2[None, None, :, :]
    m4_cdab = np.einsum("abcd->cdab", m4)
    cov_ss = s4 - s2_ab * s2_cd
    cov_f_ss = lambda_w * cov_ss + cw * th_ab * (m4 - t2_ab * s2_cd)
    cov_ff = (
        lambda_w * lambda_w * cov_ss
        + lambda_w * cw * th_cd * (m4_cdab - t2_cd * s2_ab)
        + lambda_w * cw * th_ab * (m4 - t2_ab * s2_cd)
        + cw * cw * th_ab * th_cd * (t4 - t2_ab * t2_cd)
    )
    df = lambda_w * dss + cw * th_ab * dtt  # Df[a, b, e, f]
    d_prev, a_prev = prev.D, prev.A
    d_df = np.einsum("abef,cdef->abcd", d_prev, df)  # D_abef Df^{ef}_cd
    a_new = cov_ff + ratio * (
        0.25 * np.einsum("efgh,abef,cdgh->abcd", vertex, df, df)
        + 0.5 * cw * t2_cd * np.einsum("abcd->cdab", d_df)
        + 0.5 * cw * t2_ab * d_df
        + cw * cw * t2_ab * t2_cd * a_prev
    )
    d_new = cw * cov_f_ss + ratio * cw * (
        0.25 * np.einsum("efgh,abef,cdgh->abcd", vertex, df, dss)
        + 0.5 * cw * t2_ab * np.einsum("abgh,cdgh->abcd", d_prev, dss)
    )
    # B[p, q, r, s] = B_{a1 a3 a2 a4}: Theta_{pr} Theta_{qs} <t t t t>, <t_p t_q> <t_r t_s>
    b_new = (
        cw * cw * np.einsum("pr,qs->pqrs", theta, theta) * t4
        + ratio * cw * cw * np.einsum(outer, t2, t2) * prev.B
    )
    f_new = cw * cw * theta[:, None, :, None] * np.einsum("prqs->pqrs", m4) + ratio * cw * cw * (
        np.einsum("perf,pqe,rsf->pqrs", prev.F, p, p)
    )
    if (
        haar_ratio is not None
    ):  # -(n_l / N) C^2 Omega_ab (Omega_cd | <s_c s_d>), Omega = Theta <t t>
        omega = theta * t2
        b_new = b_new - haar_ratio * cw * cw * np.einsum("pr,qs->pqrs", omega, omega)
        f_new = f_new - haar_ratio * cw * cw * np.einsum("pr,qs->pqrs", omega, s2)
    return PredictedNTKFluctuations(a_new, b_new, d_new, f_new)


def ntk_fluctuation_recursion(
    network, X, lambda_b=DEFAULT_LAMBDA_B, lambda_w=DEFAULT_LAMBDA_W, nodes=None
):
    """Leading-order NTK fluctuations of every layer (module docstring), Gaussian or
    Haar-orthogonal weights.

    Parameters: the network, the inputs X (B, n_0), the learning rates (scalars, the same
    for every layer, as ``nf.sample``'s) and optionally the Gauss-Hermite nodes per
    dimension ({1: 160, 2: 80, 3: 40, 4: 22}). Returns an NTKTheory: the infinite-width
    K^(l) and Theta^(l) (B, B), the vertex V^(l) and PredictedNTKFluctuations per layer.
    """
    if network.init not in ("gaussian", "orthogonal"):
        raise ValueError(
            "ntk_fluctuation_recursion covers gaussian and orthogonal weights; "
            f"got init={network.init!r}"
        )
    if network.is_residual:
        raise ValueError(
            "ntk_fluctuation_recursion covers networks without residual connections "
            "(xi = 0, gamma = 1)"
        )
    haar = network.init == "orthogonal"
    x = validate_inputs(network, X)
    kernels, vertices = vertex_recursion(network, x)
    thetas = ntk_recursion(network, x, lambda_b=lambda_b, lambda_w=lambda_w)
    sigma = numpy_activation(network.activation)
    dsigma = numpy_derivative(network.activation)
    nb = x.shape[0]
    zero = np.zeros((nb,) * 4)
    fl = PredictedNTKFluctuations(zero, zero.copy(), zero.copy(), zero.copy())
    out = [fl]
    widths = network.widths
    for layer in range(1, network.n_layers):
        mom = GaussianMoments(sigma, dsigma, kernels[layer - 1], nodes)
        fl = fluctuation_step(
            mom,
            thetas[layer - 1],
            vertices[layer - 1],
            fl,
            float(network.cw_array[layer]),
            float(lambda_w),
            widths[layer] / widths[layer - 1],
            widths[layer] / max(widths[layer], widths[layer + 1]) if haar else None,
        )
        out.append(fl)
    return NTKTheory(kernels, thetas, vertices, out)


__all__ = [
    "GaussianMoments",
    "NTKTheory",
    "PredictedNTKFluctuations",
    "fluctuation_step",
    "ntk_fluctuation_recursion",
]
