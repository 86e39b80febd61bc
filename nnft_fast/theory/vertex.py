"""Four-point vertex at order 1/n (Roberts & Yaida ch. 4), Gaussian or Haar weights, B inputs.

With V^(l) = n_{l-1} x (connected distinct-neuron four-point function) (docs/conventions.md#vertex),
Gaussian weights:
    V^(1) = 0,
    V^(l+1)_{(ab)(cd)} = C_W^2 [<s_a s_b s_c s_d>_K - <s_a s_b>_K <s_c s_d>_K]
                         + (C_W^2 / 4) (n_l / n_{l-1})
                           sum_{e f g h} V^(l)_{(ef)(gh)} D^{ef}_{ab} D^{gh}_{cd},
    D^{ef}_{ab} = <d^2 (s_a s_b) / dz_e dz_f>_K,  s = sigma(z), K = K^(l) (infinite width),
and the same-neuron connected function is (V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)) / n_{l-1}.

Haar-orthogonal weights W = s O (O an n_{l+1} x n_l Haar frame, s^2 = C_W N / n_l with
N = max(n_l, n_{l+1}), docs/conventions.md#haar). Given the layer below, S = sigma(z^(l)), the
rows of O S are not independent Gaussians: O's entries obey the O(N) Weingarten calculus,
    E[O_ik O_il O_jm O_jp] = [(N+1) d_kl d_mp - d_km d_lp - d_kp d_lm] / (N (N-1) (N+2)),
for i != j, so with C = C_W S^T S / n_l (the conditional kernel less C_b)
    E[z_ia z_ib z_jc z_jd | S] = Khat_ab Khat_cd - (C_ac C_bd + C_ad C_bc) / N + O(1/N^2).
Two distinct neurons therefore carry, besides the Gaussian-weight part (the fluctuation of
Khat), a negative cross cumulant of order 1/N; it enters the next layer exactly like the
Gaussian part (through D), so the recursion keeps its form with one extra term:
    V^(1)   = -(n_0 / N_1) (C_ac C_bd + C_ad C_bc),          C = K^(1) - C_b^(1),
    V^(l+1) = [Gaussian right-hand side] - C_W^2 (n_l / N_{l+1})
              (<s_a s_c> <s_b s_d> + <s_a s_d> <s_b s_c>)_K,  N_{l+1} = max(n_l, n_{l+1}).
The same-neuron relation above also holds (the same-neuron Weingarten term gives -2/N
times the three Wick pairings). Checks: deep linear, square: V/K^2 = -2 at every depth,
i.e. E[z^4]/E[z^2]^2 = 3 - 6/n, the sphere's 3n/(n+2) to this order.

D is computed without sigma'' by Gaussian integration by parts on the (z_a, z_b)
marginal M:  D = M^{-1} <s_a s_b (z z^T - M)> M^{-1}, so kinks (ReLU) are harmless.
Gaussian averages of up to four distinct inputs use tensor-product Gauss-Hermite
quadrature on the Cholesky factor of the marginal covariance.
Single input checks (exact at this order): V/K^2 = 2(l-1) linear, 5(l-1) ReLU at criticality.

Residual connections (docs/conventions.md#residual), z' = xi z + gamma u at a layer of
unchanged width n, u_i = b_i + sum_j W_ij s_j, z = z^(l), z' = z^(l+1), s = sigma(z). Given
layer l the u_i are, for Gaussian weights, independent N(0, Ghat) with the shared
Ghat_ab = C_b + (C_W / n) sum_k s_ka s_kb, and independent of z. Without the residual
term every function of one neuron depends on the others only through Ghat, so the
distinct-neuron covariance of any two functions is (1/4n) V <d d F> <d d G>: V is all
there is at order 1/n. With xi != 0, z'_i keeps its own z_i, and Ghat depends on z_i
(through the k = i term) in a way that is not quadratic: the layer's neurons carry, at
order 1/n, cross cumulants of higher orders (a three-point E[z_ia z_ib z_jc] wherever
<d(s s)> != 0, as for ReLU; for odd sigma, such as tanh, the odd ones vanish, the six-point
and higher ones do not), and V alone no longer propagates.
What does close is the distinct-neuron covariance of arbitrary functions,
    C_l[F, G] = n_{l-1} Cov(F(z_i), G(z_j)),   i != j,   V^(l) = C_l[z_a z_b, z_c z_d].
With F~(z; Ghat) = E_u[F(xi z + gamma u)] the conditional mean given layer l,
Cov(F(z'_i), G(z'_j)) = Cov(F~(z_i; Ghat), G~(z_j; Ghat)); expanding Ghat = G0 + dGhat
(G0 = C_b + C_W <s s>_K) to first order, with d F~ / d Ghat_ef = (gamma^2 / 2) <d_e d_f F>
and n Cov(F~_0(z_i), Ghat_gh) = C_W [Cov_K(F~_0, s_g s_h) + r C_l[F~_0, s_g s_h]]
(the k = i neuron, then the n - 1 others), r = n_l / n_{l-1}:
    C_{l+1}[F, G] = r C_l[F~_0, G~_0]
        + (gamma^2 C_W / 2) sum_gh <d_g d_h G>' (Cov_K(F~_0, s_g s_h) + r C_l[F~_0, s_g s_h])
        + (the same with F and G exchanged)
        + (gamma^4 C_W^2 / 4) sum <d_e d_f F>' <d_g d_h G>'
          (Cov_K(s_e s_f, s_g s_h) + r C_l[s_e s_f, s_g s_h]),
with <.>' the average at K' = K^(l+1) and Cov_K the same-neuron (Gaussian, K = K^(l))
covariance; Gaussian layer 1: C_1 = 0. F~_0(z) = E[F(xi z + gamma u)], u ~ N(0, G0), is F
carried one layer down: a function F of z^(p) enters layer m < p as E[F(z^(p)) | z^(m)]
under the infinite-width law of one neuron, z^(p) = A z^(m) + (independent Gaussian),
A = xi_{m+1} ... xi_p, Cov(z^(p), z^(m)) = A K^(m); so <d d F~_0> = A^2 <d d F>_{K^(p)} and
Cov_K(F~_0, s s) = Cov(F(z^(p)), s s(z^(m))) is a Gaussian integral over both layers of
one neuron (at most four variables). ``vertex_recursion`` evaluates C_l on the functions
z_a z_b and s_a s_b of every layer, memoised, from the top down. Checks: xi = 0 gives the
plain recursion above (times gamma^4); F = z_a z_b gives F~_0 = xi^2 z_a z_b + const, so
    V^(l+1) = xi^4 r V^(l) + gamma^4 [plain right-hand side with C_l[s s, s s]]
              + xi^2 gamma^2 C_W [(K D K)_(ab)(cd) + r C_l[z_a z_b, s_c s_d] + (ab <-> cd)],
(K D K)_(ab)(cd) = sum_ef K_ae K_bf D^ef_cd = Cov_K(z_a z_b, s_c s_d), all exact at layer 2
at any width; deep linear, one input, no biases: V'/K'^2 = V/K^2 + 2 (1 - xi^4 / chi^2),
chi = xi^2 + gamma^2 C_W, the 1/n expansion of the exact finite-width recursion
(tests/test_residual.py). Haar weights: given z, the rows u_i are conditionally Gaussian
given a shared fluctuation of the frame (independent of z), E[u_ia u_ib | S] = Ghat_ab and
E[u_ib u_jd | S] = 0 for i != j, so only the gamma^4 term changes, by the Weingarten term
above: n Cov(Ghat_ef, Ghat_gh) gains -C_W^2 (n_l / N)(<s_e s_g> <s_f s_h> + <s_e s_h> <s_f s_g>),
and layer 1 has C_1[F, G] = (1/4) V^(1) <d d F> <d d G>. The same-neuron relation holds
with residual connections too (the xi^4 term carries it up from layer l; the others are
those of the distinct-neuron function summed over the three pairings).
"""

import functools
import itertools
import math
import sys

import numpy as np

from nnft_fast.run import validate_inputs

from .gaussian_integrals import numpy_activation
from .infinite_width import kernel_recursion

NODES_BY_DIMENSION = {1: 160, 2: 80, 3: 40, 4: 22}


@functools.cache
def _tensor_rule(d, n_nodes):
    """The d-dimensional tensor Gauss-Hermite grid (points, weights) for N(0, I_d)."""
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / math.sqrt(2.0 * math.pi)
    grid = np.stack(np.meshgrid(*([x] * d), indexing="ij"), axis=-1).reshape(-1, d)
    weights = np.prod(
        np.stack(np.meshgrid(*([w] * d), indexing="ij"), axis=-1).reshape(-1, d), axis=1
    )
    grid.flags.writeable = weights.flags.writeable = False
    return grid, weights


def gaussian_average(fn, cov, n_nodes=None):
    """<fn(z)> for z ~ N(0, cov) (d <= 4 dimensions); fn maps (..., d) points to values."""
    d = cov.shape[0]
    n_nodes = n_nodes or NODES_BY_DIMENSION[d]
    grid, weights = _tensor_rule(d, n_nodes)
    evals, evecs = np.linalg.eigh(cov)
    root = evecs * np.sqrt(np.clip(evals, 0.0, None))  # cov = root root^T, PSD-safe
    return float(np.dot(weights, fn(grid @ root.T)))


def _four_point_moment(sigma, k, idx):
    """<s_idx0 s_idx1 s_idx2 s_idx3> under N(0, K)."""
    distinct = sorted(set(idx))
    pos = [distinct.index(i) for i in idx]
    cov = k[np.ix_(distinct, distinct)]
    return gaussian_average(lambda z: np.prod([sigma(z[:, p]) for p in pos], axis=0), cov)


def _second_derivative_average(sigma, k, a, b):
    """D_ab: B x B matrix of <d^2 (s_a s_b)/dz_e dz_f>, non-zero only on e, f in {a, b}."""
    nb = k.shape[0]
    out = np.zeros((nb, nb))
    idx = [a] if a == b else [a, b]
    m = k[np.ix_(idx, idx)]
    minv = np.linalg.pinv(m)
    pa, pb = (0, 0) if a == b else (0, 1)
    avg = np.empty((len(idx), len(idx)))
    for i, j in itertools.product(range(len(idx)), repeat=2):
        avg[i, j] = gaussian_average(
            lambda z, i=i, j=j: sigma(z[:, pa]) * sigma(z[:, pb]) * (z[:, i] * z[:, j] - m[i, j]), m
        )
    out[np.ix_(idx, idx)] = minv @ avg @ minv
    return out


def _haar_cross_cumulant(c, fan_in, fan_out):
    """-(n_l / N)(C_ac C_bd + C_ad C_bc), N = max(n_l, n_{l+1}): the Haar weights' term."""
    return -(fan_in / max(fan_in, fan_out)) * (
        np.einsum("ac,bd->abcd", c, c) + np.einsum("ad,bc->abcd", c, c)
    )


# A function carried down through layers whose xi multiply to less than this is treated
# as a constant (its covariances are O(xi ... xi) of the others): it keeps the recursion
# over deep residual networks from visiting every pair of layers.
_NEGLIGIBLE = 1e-13


class _ResidualVertex:
    """C_l[F, G] of a network with residual connections (module docstring), memoised.

    A function is (kind, p, a, b): z^(p)_a z^(p)_b (kind "z") or s^(p)_a s^(p)_b (kind
    "s"), a <= b, of one neuron's preactivations at layer p (1-based), evaluated at any
    layer l <= p through the infinite-width law of the neuron across layers."""

    def __init__(self, network, kernels, haar):
        self.network = network
        self.kernels = kernels
        self.haar = haar
        self.sigma = numpy_activation(network.activation)
        self.nb = kernels[0].shape[0]
        self._c, self._cov, self._dd, self._pair = {}, {}, {}, {}

    def transfer(self, p, m):
        """A = xi_{m+1} ... xi_p: z^(p) = A z^(m) + (independent of z^(m))."""
        return float(np.prod(self.network.xi_array[m:p]))

    def covariance(self, var_a, var_b):
        """Cov(z^(p)_a, z^(q)_c) of one neuron at infinite width, var = (p, a)."""
        (p, a), (q, c) = var_a, var_b
        lo, hi = min(p, q), max(p, q)
        return self.transfer(hi, lo) * self.kernels[lo - 1][a, c]

    def _values(self, fn, z, slots):
        kind = fn[0]
        x, y = z[:, slots[0]], z[:, slots[1]]
        return x * y if kind == "z" else self.sigma(x) * self.sigma(y)

    def gauss_cov(self, f, g):
        """Cov(F(z^(p_F)), G(z^(p_G))) of one neuron at infinite width."""
        key = (f, g) if f <= g else (g, f)
        if key not in self._cov:
            variables = [(f[1], f[2]), (f[1], f[3]), (g[1], g[2]), (g[1], g[3])]
            unique = sorted(set(variables))
            slots = [unique.index(v) for v in variables]
            cov = np.array([[self.covariance(u, v) for v in unique] for u in unique])

            def mean(fn, pos):
                own = sorted(set(pos))
                sub = cov[np.ix_(own, own)]
                return gaussian_average(
                    lambda z: self._values(fn, z, [own.index(s) for s in pos]), sub
                )

            joint = gaussian_average(
                lambda z: self._values(f, z, slots[:2]) * self._values(g, z, slots[2:]), cov
            )
            self._cov[key] = joint - mean(f, slots[:2]) * mean(g, slots[2:])
        return self._cov[key]

    def second_derivatives(self, f, layer):
        """<d_e d_f F> (B x B) of F carried down to ``layer`` (A^2 times its own)."""
        key = (f, layer)
        if key not in self._dd:
            kind, p, a, b = f
            if kind == "z":
                own = np.zeros((self.nb, self.nb))
                own[a, b] += 1.0
                own[b, a] += 1.0
            else:
                own = _second_derivative_average(self.sigma, self.kernels[p - 1], a, b)
            self._dd[key] = self.transfer(p, layer) ** 2 * own
        return self._dd[key]

    def pair(self, layer):
        """<s_a s_b> (B x B) at layer ``layer``."""
        if layer not in self._pair:
            k = self.kernels[layer - 1]
            self._pair[layer] = np.array(
                [
                    [
                        gaussian_average(
                            lambda z: self.sigma(z[:, 0]) * self.sigma(z[:, 1]),
                            k[np.ix_([a, b], [a, b])],
                        )
                        for b in range(self.nb)
                    ]
                    for a in range(self.nb)
                ]
            )
        return self._pair[layer]

    def _support(self, dd):
        """The (e, f), e <= f, where the symmetric dd is non-zero, with their weight in a
        sum over all ordered pairs."""
        return [
            ((e, f), dd[e, f] * (1.0 if e == f else 2.0))
            for e in range(self.nb)
            for f in range(e, self.nb)
            if dd[e, f] != 0.0
        ]

    def value(self, layer, f, g):
        """C_layer[F, G] for functions of layers >= ``layer``."""
        key = (layer, f, g) if f <= g else (layer, g, f)
        if key in self._c:
            return self._c[key]
        if min(abs(self.transfer(f[1], layer)), abs(self.transfer(g[1], layer))) < _NEGLIGIBLE:
            result = 0.0  # a function carried below a plain layer is a constant
        elif layer == 1:
            result = 0.0
            if self.haar:
                v1 = _haar_cross_cumulant(
                    self.kernels[0] - self.network.cb_array[0], *self.network.widths[:2]
                )
                result = 0.25 * np.einsum(
                    "efgh,ef,gh->", v1, self.second_derivatives(f, 1), self.second_derivatives(g, 1)
                )
        else:
            result = self._step(layer - 1, f, g)
        self._c[key] = result
        return result

    def _step(self, l, f, g):
        """C_{l+1}[F, G] from layer l (module docstring)."""
        net = self.network
        widths = net.widths
        cw = net.cw_array[l]
        gamma2 = net.gamma_array[l] ** 2
        r = widths[l] / widths[l - 1]

        def s(e, h):
            return ("s", l, min(e, h), max(e, h))

        def mixed(fn, dd):  # sum_gh <d_g d_h G>' (Cov_K(F~_0, s_g s_h) + r C_l[F~_0, s_g s_h])
            return sum(
                w * (self.gauss_cov(fn, s(*eh)) + r * self.value(l, fn, s(*eh)))
                for eh, w in self._support(dd)
            )

        df, dg = self.second_derivatives(f, l + 1), self.second_derivatives(g, l + 1)
        result = r * self.value(l, f, g)
        result += 0.5 * gamma2 * cw * (mixed(f, dg) + mixed(g, df))
        pair = self.pair(l) if self.haar else None
        n_big = max(widths[l], widths[l + 1])
        for ef, wf in self._support(df):
            for gh, wg in self._support(dg):
                shared = self.gauss_cov(s(*ef), s(*gh)) + r * self.value(l, s(*ef), s(*gh))
                if self.haar:
                    (e, e2), (h, h2) = ef, gh
                    shared -= (widths[l] / n_big) * (
                        pair[e, h] * pair[e2, h2] + pair[e, h2] * pair[e2, h]
                    )
                result += 0.25 * gamma2 * gamma2 * cw * cw * wf * wg * shared
        return result

    def vertex(self, layer):
        """V^(layer) = C_layer[z_a z_b, z_c z_d], (B, B, B, B)."""
        nb = self.nb
        v = np.empty((nb,) * 4)
        for a, b, c, d in itertools.product(range(nb), repeat=4):
            v[a, b, c, d] = self.value(
                layer, ("z", layer, min(a, b), max(a, b)), ("z", layer, min(c, d), max(c, d))
            )
        return v


def vertex_recursion(network, X):
    """Leading-order vertices V^(l) (B, B, B, B) for l = 1..L, Gaussian or Haar weights,
    with or without residual connections (module docstring).

    Returns (kernels, vertices): the infinite-width K^(l) and V^(l) lists.
    """
    if network.init not in ("gaussian", "orthogonal"):
        raise ValueError(
            f"vertex_recursion covers gaussian and orthogonal weights; got init={network.init!r}"
        )
    haar = network.init == "orthogonal"
    x = validate_inputs(network, X)
    sigma = numpy_activation(network.activation)
    kernels = kernel_recursion(network, x)
    if np.any(network.xi_array != 0.0):
        residual = _ResidualVertex(network, kernels, haar)
        limit = sys.getrecursionlimit()  # the memoised recursion descends layer by layer
        sys.setrecursionlimit(max(limit, 10 * network.n_layers + 1000))
        try:
            vertices = [residual.vertex(layer) for layer in range(1, network.n_layers + 1)]
        finally:
            sys.setrecursionlimit(limit)
        return kernels, vertices
    nb = x.shape[0]
    widths = network.widths
    v = np.zeros((nb,) * 4)
    if haar:
        v = _haar_cross_cumulant(kernels[0] - network.cb_array[0], widths[0], widths[1])
    vertices = [v]
    for layer in range(1, network.n_layers):
        k = kernels[layer - 1]
        cw = network.cw_array[layer]
        four = {}
        pair = np.empty((nb, nb))
        for a, b in itertools.product(range(nb), repeat=2):
            pair[a, b] = gaussian_average(
                lambda z: sigma(z[:, 0]) * sigma(z[:, 1]), k[np.ix_([a, b], [a, b])]
            )
        for idx in itertools.combinations_with_replacement(range(nb), 4):
            four[idx] = _four_point_moment(sigma, k, idx)
        d = np.array(
            [[_second_derivative_average(sigma, k, a, b) for b in range(nb)] for a in range(nb)]
        )  # d[a, b, e, f]
        ratio = widths[layer] / widths[layer - 1]
        new = np.empty_like(v)
        for a, b, c, e in itertools.product(range(nb), repeat=4):
            new[a, b, c, e] = (
                cw * cw * (four[tuple(sorted((a, b, c, e)))] - pair[a, b] * pair[c, e])
            )
        propagated = np.einsum("efgh,abef,cdgh->abcd", v, d, d)
        v = new + 0.25 * cw * cw * ratio * propagated
        if haar:
            v = v + _haar_cross_cumulant(cw * pair, widths[layer], widths[layer + 1])
        gamma = network.gamma_array[layer]
        if gamma != 1.0:  # z' = gamma u: no residual term (xi = 0 everywhere here)
            v = gamma**4 * v
        vertices.append(v)
    return kernels, vertices


def same_neuron_connected(vertex, fan_in):
    """(V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)) / n_{l-1}: leading-order same-neuron function."""
    return (vertex + np.einsum("acbd->abcd", vertex) + np.einsum("adbc->abcd", vertex)) / fan_in
