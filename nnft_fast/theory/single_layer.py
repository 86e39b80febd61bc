"""Single-hidden-layer networks as field theories: Halverson, Maiti & Stoner
(arXiv:2008.08601), exact at finite width N, any input points.

The network (one output neuron i; ``n_out`` independent copies share the hidden layer)

    f_i(x) = b1_i + sum_{j=1..N} W1_ij h_j(x),    h_j(x) = h(z_j(x)),
    z_j(x) = b0_j + sum_{k=1..d} W0_jk x_k,

    W0 ~ N(0, var_w0 / d),  b0 ~ N(0, var_b0),  W1 ~ N(0, var_w1 / N),  b1 ~ N(0, var_b1),

all independent; "var_*" are variances (HMS's sigma^2). For every hidden neuron j the
z_j(x_a) are jointly Gaussian with covariance

    K_ab = var_b0 + var_w0 x_a . x_b / d,

and the N hidden neurons are iid. Write G_ab = E[h(z_a) h(z_b)] and
M_abcd = E[h(z_a) h(z_b) h(z_c) h(z_d)] (one hidden neuron).

Two-point function (exact):

    G2_ab = E[f_i(x_a) f_i(x_b)] = var_b1 + var_w1 G_ab.

Connected four-point function, same output neuron (exact at finite N). Given the hidden
layer the output is a sum over j of w_j h_j with iid w_j ~ N(0, s^2/N), s^2 = var_w1;
in E[w_j w_k w_l w_m] only j=k=l=m (weight E[w^4] = 3 s^4/N^2, N terms) and the three
pairings j=k != l=m etc. (s^4/N^2 each, N(N-1) terms) survive, so

    E[g_a g_b g_c g_d] = (s^4/N) 3 M_abcd + s^4 (1 - 1/N) (G_ab G_cd + G_ac G_bd + G_ad G_bc),

and subtracting the Wick pairings of s^2 G (the bias b1 is an independent Gaussian: it
changes no connected function):

    G4c_abcd = (var_w1^2 / N) [3 M_abcd - G_ab G_cd - G_ac G_bd - G_ad G_bc].

Distinct output neurons i != i' (docs/conventions.md#correlators,
E[f_i,a f_i,b f_i',c f_i',d] - G2_ab G2_cd):

    (var_w1^2 / N) [M_abcd - G_ab G_cd].

The nets (HMS section 4):

* Gauss-net: f = W1 exp(z) / sqrt(exp[2(var_b0 + var_w0 |x|^2/d)]) + b1, i.e. the hidden
  output exp(z_a - K_aa). Then all moments are closed forms,
  E exp(sum_s z_s) = exp(1^T K 1 / 2), and
  G2_ab = var_b1 + var_w1 exp(-var_w0 |x_a - x_b|^2 / (2 d))   (translation invariant).
* Erf-net: h = erf. G_ab = (2/pi) arcsin(2 K_ab / sqrt((1 + 2 K_aa)(1 + 2 K_bb))).
  M_abcd: erf(z) = E_xi[sign(z + xi/sqrt 2)], xi ~ N(0, 1) independent, so M is the sign
  moment E[s_1 s_2 s_3 s_4] of a Gaussian with covariance K + I/2 over the four slots;
  Price's theorem along a straight path from the block-diagonal correlation matrix turns it
  into (2/pi)^2 arcsin(r_12) arcsin(r_34) plus a one-dimensional integral of arcsines of
  partial correlations (adaptive quadrature, ~1e-13).
* ReLU-net: h = relu. G_ab = sqrt(K_aa K_bb)/(2 pi) (sin t + (pi - t) cos t), cos t =
  K_ab/sqrt(K_aa K_bb) (arc-cosine kernel). M_abcd = E[prod z^n theta(z)] over the distinct
  inputs: rank <= 2 covariance: one angular integral over an arc (Gauss-Legendre, to
  rounding); full rank: Gaussian integration by parts (Stein) reduces it to orthant
  probabilities (closed forms for <= 3 variables, the sign-moment integral above for 4)
  and lower-dimensional conditional moments; rank 3 with 4 distinct inputs: the polyhedral
  cone is triangulated into simplicial cones, each a full-rank problem. Examples:
  E relu(z)^4 = 3 K^2 / 2, E relu(z_a)^2 relu(z_b)^2 = K_aa K_bb/(2 pi) [3 sin t cos t
  + (pi - t)(1 + 2 cos^2 t)].

Sampling: ``SingleLayerNet.network`` is the ``nf.Network`` the sampler draws,
(d, N, n_out) with cw = [var_w0, var_w1], cb = [var_b0, var_b1]. For the Gauss-net it is
the *unnormalised* exp network with no output bias; the output normalisation c_a =
exp(-K_aa) (``output_scale``) and var_b1 are applied to the estimates in ``measure``
(exactly: the estimators are multilinear in the outputs, and b1 is independent).
"""

import itertools
import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import integrate

from nnft_fast.ensemble import Estimate
from nnft_fast.network import Network
from nnft_fast.run import validate_inputs
from nnft_fast.sampling import sample

from .gaussian_integrals import closed_form_pair

KINDS = ("gauss", "erf", "relu")
_ACTIVATION = {"gauss": "exp", "erf": "erf", "relu": "relu"}
_NEURONS = ("same", "distinct")
_RANK_TOL = 1e-12  # eigenvalues below this fraction of the largest count as zero
_ARC_NODES = 48  # Gauss-Legendre nodes on an arc (trig polynomial: to rounding)
_TWO_OVER_PI = 2.0 / math.pi


# ----------------------------------------------------------------------- Gaussian moments


def _sign4(r):
    """E[sign y_1 sign y_2 sign y_3 sign y_4], y ~ N(0, r), r a 4x4 correlation matrix (PD).

    Price's theorem: dE/dr_ij = E[d_i d_j prod s] = 4 p_ij(0, 0) E[s_k s_l | y_i = y_j = 0]
    = (2/pi) (1 - r_ij^2)^(-1/2) (2/pi) arcsin(r_kl|ij). Integrate along r(t) = D + t (r - D)
    from the block-diagonal D (blocks {1,2}, {3,4}; PD on the whole path), where
    E = (2/pi)^2 arcsin(r_12) arcsin(r_34).
    """
    base = _TWO_OVER_PI**2 * math.asin(r[0, 1]) * math.asin(r[2, 3])
    off = [((0, 2), (1, 3)), ((0, 3), (1, 2)), ((1, 2), (0, 3)), ((1, 3), (0, 2))]
    off = [(ij, kl) for ij, kl in off if r[ij] != 0.0]
    if not off:
        return base
    block = np.zeros_like(r)
    block[:2, :2] = r[:2, :2]
    block[2:, 2:] = r[2:, 2:]
    delta = r - block

    def rate(t):
        rt = block + t * delta
        total = 0.0
        for (i, j), (k, m) in off:
            ij, km = [i, j], [k, m]
            cond = rt[np.ix_(km, km)] - rt[np.ix_(km, ij)] @ np.linalg.solve(
                rt[np.ix_(ij, ij)], rt[np.ix_(ij, km)]
            )
            partial = max(-1.0, min(1.0, cond[0, 1] / math.sqrt(cond[0, 0] * cond[1, 1])))
            rho = t * r[i, j]
            total += (
                r[i, j]
                * _TWO_OVER_PI
                / math.sqrt(1.0 - rho * rho)
                * _TWO_OVER_PI
                * math.asin(partial)
            )
        return total

    with warnings.catch_warnings():
        # Nearly degenerate correlations (erf of huge K, almost collinear inputs) make
        # quadpack report roundoff; the result stays accurate (checked to ~1e-11 against
        # 1-D adaptive quadrature at K = 1e6).
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, _ = integrate.quad(rate, 0.0, 1.0, epsabs=1e-13, epsrel=1e-10, limit=200)
    return base + value


def _correlation(cov):
    s = np.sqrt(np.diag(cov))
    return cov / np.outer(s, s)


def _orthant(cov):
    """P(z > 0) for z ~ N(0, cov), cov k x k positive definite, k <= 4."""
    k = cov.shape[0]
    if k == 0:
        return 1.0
    if k == 1:
        return 0.5
    r = _correlation(cov)
    asin_sum = sum(
        math.asin(max(-1.0, min(1.0, r[i, j]))) for i, j in itertools.combinations(range(k), 2)
    )
    if k == 2:
        return 0.25 + asin_sum / (2.0 * math.pi)
    if k == 3:
        return 0.125 + asin_sum / (4.0 * math.pi)
    # prod (1 + s_i)/2 expanded; odd sign moments vanish.
    return (1.0 + _TWO_OVER_PI * asin_sum + _sign4(r)) / 16.0


def _truncated_full_rank(cov, powers, memo):
    """T = E[prod_i z_i^{n_i} theta(z_i)], z ~ N(0, cov) full rank, every variable truncated.

    Stein: E[z_i F] = sum_j cov_ij E[d_j F]; with F = z_i^{n_i - 1} prod ... the derivative
    of z_j^m theta(z_j) is m z_j^{m-1} theta(z_j) (m >= 1) or delta(z_j) (m = 0), and
    E[delta(z_j) G] = (2 pi cov_jj)^(-1/2) E[G | z_j = 0] (Schur complement covariance).
    """
    key = (cov.tobytes(), powers)
    if key in memo:
        return memo[key]
    k = len(powers)
    if not any(powers):
        value = _orthant(cov)
    else:
        i = next(idx for idx, n in enumerate(powers) if n > 0)
        reduced = list(powers)
        reduced[i] -= 1
        value = 0.0
        for j in range(k):
            c = cov[i, j]
            if c == 0.0:
                continue
            if reduced[j] > 0:
                lower = list(reduced)
                lower[j] -= 1
                value += c * reduced[j] * _truncated_full_rank(cov, tuple(lower), memo)
            else:
                rest = [m for m in range(k) if m != j]
                cond = cov[np.ix_(rest, rest)] - np.outer(cov[rest, j], cov[j, rest]) / cov[j, j]
                cond = 0.5 * (cond + cond.T)
                density = 1.0 / math.sqrt(2.0 * math.pi * cov[j, j])
                value += (
                    c * density * _truncated_full_rank(cond, tuple(reduced[m] for m in rest), memo)
                )
    memo[key] = value
    return value


def _radial_moment(p, r):
    """E[rho^p] for rho^2 ~ chi^2_r."""
    return 2.0 ** (p / 2.0) * math.exp(math.lgamma((r + p) / 2.0) - math.lgamma(r / 2.0))


def _truncated_rank2(a, powers):
    """T for z = a g, g ~ N(0, I_r), r <= 2 (rows a_i): E[rho^p] x average over the circle
    (r = 2: the arc where every a_i . u > 0; r = 1: the two points u = +-1)."""
    p = sum(powers)
    if a.shape[1] == 1:
        total = 0.0
        for s in (1.0, -1.0):
            v = a[:, 0] * s
            if np.all(v > 0):
                total += 0.5 * float(np.prod(v ** np.array(powers)))
        return _radial_moment(p, 1) * total
    norms = np.hypot(a[:, 0], a[:, 1])
    angles = np.arctan2(a[:, 1], a[:, 0])
    rel = np.angle(np.exp(1j * (angles - angles[0])))  # in (-pi, pi]
    lo = float(np.max(rel)) - math.pi / 2.0
    hi = float(np.min(rel)) + math.pi / 2.0
    if hi <= lo:
        return 0.0
    x, w = np.polynomial.legendre.leggauss(_ARC_NODES)
    theta = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
    integrand = np.ones_like(theta)
    for norm, rel_i, n in zip(norms, rel, powers):
        integrand *= (norm * np.cos(theta - rel_i)) ** n
    arc = 0.5 * (hi - lo) * float(np.dot(w, integrand))
    return _radial_moment(p, 2) * arc / (2.0 * math.pi)


def _expand_linear_product(coefs, powers):
    """prod_i (c_i . w)^{n_i} as {exponent tuple: coefficient}."""
    dim = coefs.shape[1]
    poly = {(0,) * dim: 1.0}
    for c, n in zip(coefs, powers):
        for _ in range(n):
            new = {}
            for exps, value in poly.items():
                for m in range(dim):
                    if c[m] == 0.0:
                        continue
                    e = list(exps)
                    e[m] += 1
                    e = tuple(e)
                    new[e] = new.get(e, 0.0) + value * c[m]
            poly = new
    return poly


def _truncated_rank3(a, powers, memo):
    """T for z = a g, g ~ N(0, I_3), more rows than 3: integrate the polynomial over the
    polyhedral cone {a_i . g > 0}, fan-triangulated into simplicial cones g = V w, w > 0,
    each a full-rank truncated moment of w ~ N(0, V^-1 V^-T)."""
    unit = a / np.linalg.norm(a, axis=1)[:, None]
    rays = []
    for i, j in itertools.combinations(range(len(unit)), 2):
        cross = np.cross(unit[i], unit[j])
        size = np.linalg.norm(cross)
        if size < 1e-12:
            if np.dot(unit[i], unit[j]) < 0:
                return 0.0  # opposite half-spaces: empty interior
            continue  # the same half-space twice
        for s in (1.0, -1.0):
            v = s * cross / size
            if np.all(unit @ v > -1e-12) and not any(np.dot(v, u) > 1 - 1e-12 for u in rays):
                rays.append(v)
    if len(rays) < 3:
        return 0.0
    rays = np.array(rays)
    centre = rays.sum(axis=0)
    centre /= np.linalg.norm(centre)
    e1 = rays[0] - np.dot(rays[0], centre) * centre
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(centre, e1)
    rays = rays[np.argsort(np.arctan2(rays @ e2, rays @ e1))]
    total = 0.0
    for j in range(1, len(rays) - 1):
        v = np.column_stack([rays[0], rays[j], rays[j + 1]])
        if abs(np.linalg.det(v)) < 1e-12:
            continue
        vinv = np.linalg.inv(v)
        cov = vinv @ vinv.T
        cov = 0.5 * (cov + cov.T)
        for exps, coef in _expand_linear_product(a @ v, powers).items():
            total += coef * _truncated_full_rank(cov, exps, memo)
    return total


def relu_moment(cov, powers=None):
    """E[prod_i relu(z_i)^{n_i}], z ~ N(0, cov) (k <= 4 distinct variables, cov PSD).

    powers: exponents n_i >= 1 (default all 1). Exact up to rounding and a 1-D adaptive
    quadrature (see module docstring); rank-deficient covariances (collinear inputs) are
    handled by their rank: eigenvalues below 1e-12 x the largest count as zero.
    """
    cov = np.asarray(cov, dtype=np.float64)
    k = cov.shape[0]
    powers = (1,) * k if powers is None else tuple(int(n) for n in powers)
    if any(n < 1 for n in powers) or len(powers) != k or not 1 <= k <= 4:
        raise ValueError("relu_moment needs 1..4 variables with powers >= 1")
    cov = 0.5 * (cov + cov.T)
    if np.any(np.diag(cov) <= 0.0):
        return 0.0  # some z is identically 0
    evals, evecs = np.linalg.eigh(cov)
    keep = evals > _RANK_TOL * evals[-1]
    rank = int(keep.sum())
    memo = {}
    if rank == k and k >= 3:
        return _truncated_full_rank(cov, powers, memo)
    a = evecs[:, keep] * np.sqrt(evals[keep])
    if rank <= 2:
        return _truncated_rank2(a, powers)
    return _truncated_rank3(a, powers, memo)


def erf_moment(cov):
    """E[prod_s erf(z_s)] over 2 or 4 slots s (repeats allowed), z ~ N(0, cov) slot
    covariance: erf(z) = E sign(z + xi / sqrt 2), so it is a sign moment of cov + I/2."""
    cov = np.asarray(cov, dtype=np.float64)
    y = 0.5 * (cov + cov.T) + 0.5 * np.eye(cov.shape[0])
    r = _correlation(y)
    if cov.shape[0] == 2:
        return _TWO_OVER_PI * math.asin(r[0, 1])
    if cov.shape[0] == 4:
        return _sign4(r)
    raise ValueError("erf_moment needs 2 or 4 slots")


def gauss_moment(cov):
    """E[prod_s exp(z_s - cov_ss)] over slots s: exp(1^T cov 1 / 2 - tr cov)."""
    cov = np.asarray(cov, dtype=np.float64)
    return math.exp(0.5 * float(cov.sum()) - float(np.trace(cov)))


# ----------------------------------------------------------------------- the networks


def _check_int(name, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_variance(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (a variance), got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be a finite variance >= 0, got {value}")
    return value


@dataclass(frozen=True)
class SingleLayerNet:
    """One-hidden-layer network of Halverson-Maiti-Stoner (see the module docstring).

    kind: "gauss" | "erf" | "relu"; d: input dimension; width: hidden width N;
    var_w0, var_b0, var_w1, var_b1: variances (W0 entries var_w0/d, W1 entries var_w1/N);
    n_out: independent output neurons sampled per network (>= 2 for distinct-neuron
    correlators; more neurons, more statistics).
    """

    kind: str
    d: int
    width: int
    var_w0: float = 1.0
    var_b0: float = 0.0
    var_w1: float = 1.0
    var_b1: float = 0.0
    n_out: int = 2

    def __post_init__(self):
        if not isinstance(self.kind, str):
            raise TypeError(f"kind must be a string, got {type(self.kind).__name__}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; choose one of {KINDS}")
        for name, minimum in (("d", 1), ("width", 1), ("n_out", 1)):
            object.__setattr__(self, name, _check_int(name, getattr(self, name), minimum))
        for name in ("var_w0", "var_b0", "var_w1", "var_b1"):
            object.__setattr__(self, name, _check_variance(name, getattr(self, name)))

    @property
    def network(self):
        """The ``nf.Network`` the sampler draws: widths (d, N, n_out), cw = [var_w0, var_w1],
        cb = [var_b0, var_b1]. Gauss-net: activation exp, no output normalisation and
        cb = [var_b0, 0]; ``measure`` applies both (see ``output_scale``)."""
        out_bias = 0.0 if self.kind == "gauss" else self.var_b1
        return Network(
            (self.d, self.width, self.n_out),
            _ACTIVATION[self.kind],
            "gaussian",
            cw=[self.var_w0, self.var_w1],
            cb=[self.var_b0, out_bias],
        )

    def inputs(self, X):
        """X validated as a float64 (B, d) array (1-D X is one input)."""
        return validate_inputs(self.network, X)

    def first_layer_kernel(self, X):
        """K_ab = var_b0 + var_w0 x_a . x_b / d, (B, B)."""
        x = self.inputs(X)
        return self.var_b0 + self.var_w0 * (x @ x.T) / self.d

    def output_scale(self, X):
        """Output normalisation c, shape (B,). Gauss-net: f(x_a) = c_a z_a + b1 with z the
        output of ``network`` (which has no output bias), c_a = exp(-K_aa). Erf/ReLU-nets:
        ``network`` outputs f itself, c = 1."""
        k = self.first_layer_kernel(X)
        if self.kind == "gauss":
            return np.exp(-np.diag(k))
        return np.ones(k.shape[0])

    def _moment(self, k, idx):
        """E[prod_s h(z_{idx_s})] for one hidden neuron (len(idx) = 2 or 4)."""
        sub = k[np.ix_(idx, idx)]
        if self.kind == "gauss":
            return gauss_moment(sub)
        if self.kind == "erf":
            return erf_moment(sub)
        distinct = sorted(set(idx))
        powers = [idx.count(i) for i in distinct]
        return relu_moment(k[np.ix_(distinct, distinct)], powers)

    def _pair(self, k):
        nb = k.shape[0]
        g = np.empty((nb, nb))
        for a in range(nb):
            for b in range(a, nb):
                if self.kind == "gauss":
                    g[a, b] = gauss_moment(k[np.ix_([a, b], [a, b])])
                else:
                    g[a, b] = closed_form_pair(self.kind, k[a, a], k[a, b], k[b, b])
                g[b, a] = g[a, b]
        return g

    def hidden_moments(self, X):
        """(G, M): G_ab = E[h_a h_b] (B, B) and M_abcd = E[h_a h_b h_c h_d] (B, B, B, B)
        for one hidden neuron (Gauss-net: h_a = exp(z_a - K_aa))."""
        k = self.first_layer_kernel(X)
        nb = k.shape[0]
        m = np.empty((nb,) * 4)
        for quad in itertools.combinations_with_replacement(range(nb), 4):
            value = self._moment(k, list(quad))
            for perm in set(itertools.permutations(quad)):
                m[perm] = value
        return self._pair(k), m

    def two_point(self, X):
        """G2_ab = var_b1 + var_w1 E[h(z_a) h(z_b)], exact; shape (B, B)."""
        k = self.first_layer_kernel(X)
        return self.var_b1 + self.var_w1 * self._pair(k)

    def four_point_connected(self, X, neurons="same"):
        """Connected four-point function of the output, exact at finite width N, (B,)*4.

        neurons="same":     (var_w1^2/N) [3 M_abcd - G_ab G_cd - G_ac G_bd - G_ad G_bc]
        neurons="distinct": (var_w1^2/N) [M_abcd - G_ab G_cd]
        """
        if neurons not in _NEURONS:
            raise ValueError(f"neurons must be one of {_NEURONS}, got {neurons!r}")
        g, m = self.hidden_moments(X)
        gg = np.einsum("ab,cd->abcd", g, g)
        if neurons == "same":
            bracket = 3.0 * m - gg - np.einsum("acbd->abcd", gg) - np.einsum("adbc->abcd", gg)
        else:
            bracket = m - gg
        return self.var_w1**2 / self.width * bracket

    def measure(self, X, n_networks, seed=0, neurons="same", **sample_kwargs):
        """Sample ``n_networks`` networks and return (two-point, connected four-point)
        ``nf.Estimate``s of the output f, (B, B) and (B, B, B, B), comparable with
        ``two_point`` and ``four_point_connected``. Gauss-net: the estimates of the
        unnormalised network are scaled by c_a c_b (c_a c_b c_c c_d), c = ``output_scale``,
        and var_b1 is added to the two-point value. Extra keywords go to ``nf.sample``."""
        if neurons not in _NEURONS:
            raise ValueError(f"neurons must be one of {_NEURONS}, got {neurons!r}")
        x = self.inputs(X)
        ens = sample(self.network, x, n_networks, seed, **sample_kwargs)
        two = ens.two_point(2)
        four = ens.four_point(2, connected=True, neurons=neurons)
        if self.kind != "gauss":
            return two, four
        c = self.output_scale(x)
        c2 = np.outer(c, c)
        c4 = np.einsum("ab,cd->abcd", c2, c2)
        return (
            Estimate(two.value * c2 + self.var_b1, two.error * c2),
            Estimate(four.value * c4, four.error * c4),
        )


def _constructor(kind):
    def make(d, width, var_w0=1.0, var_b0=0.0, var_w1=1.0, var_b1=0.0, n_out=2):
        return SingleLayerNet(kind, d, width, var_w0, var_b0, var_w1, var_b1, n_out)

    make.__name__ = f"{kind}_net"
    make.__qualname__ = make.__name__
    make.__doc__ = (
        f"The HMS {kind.capitalize()}-net: SingleLayerNet({kind!r}, d, width, "
        "var_w0, var_b0, var_w1, var_b1, n_out); variances, not std."
    )
    return make


gauss_net = _constructor("gauss")
erf_net = _constructor("erf")
relu_net = _constructor("relu")

__all__ = [
    "KINDS",
    "SingleLayerNet",
    "erf_moment",
    "erf_net",
    "gauss_moment",
    "gauss_net",
    "relu_moment",
    "relu_net",
]
