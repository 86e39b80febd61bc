"""Plain-NumPy reference implementations of every nnft_fast kernel.

This module is the project's single independent re-implementation of the compiled
kernels (``nnft_fast.kernels.cpu.*``) and of the estimators of docs/estimators.md. It uses
only NumPy (and the ``math`` module): no Numba, no ``nnft_fast`` imports, so a bug in the
package cannot leak into its own check. Everything here is written for clarity, not speed:
use small networks and a few hundred networks at most.

Conventions (docs/conventions.md, kernels/cpu/rng.py, kernels/cpu/forward.py)
----------------------------------------------------------------------
* Random numbers. Every number is a pure function of (seed, network e, stream, index m):
      key     = (seed mod 2^32, seed div 2^32)
      counter = (block j, stream, e mod 2^32, e div 2^32)
  Philox4x32-10 of (counter, key) gives 4 uint32 words w0..w3 per block; the m-th number
  of a stream is lane m % 4 of block j = m // 4.
      uniform  u(w) = (w + 1/2) 2^-32                    (open interval (0, 1))
      normal   Box-Muller per block:
               r0 = sqrt(-2 ln u(w0)), r1 = sqrt(-2 ln u(w2)),
               t0 = 2 pi u(w1),        t1 = 2 pi u(w3),
               lanes = (r0 cos t0, r0 sin t0, r1 cos t1, r1 sin t1)
* Streams: stream = 8 * layer + purpose, layer = 1..L, purpose weights 0, bias 1, frame 2.
* Layer l maps n_in = n_{l-1} to n_out = n_l; z^(1) = W x + b, z^(l+1) = W act(z^(l)) + b.

Comparing the projected sampler
-------------------------------
The projected path QR-factorises S = act(z) itself. When S has exact structure (ReLU
zeros, repeated inputs, B > n), a reflector sign or direction can be decided by rounding
noise, so two equally exact implementations give different (equally distributed)
samples. ``qr_sign_ambiguous`` and ``qr_indeterminate`` detect those steps; the tests
allow exactly that freedom and nothing else.
"""

import functools
import itertools
import math

import numpy as np

MASK32 = np.uint64(0xFFFFFFFF)
PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint64(0x9E3779B9)
PHILOX_W1 = np.uint64(0xBB67AE85)
PHILOX_ROUNDS = 10
TWO_M32 = 2.0**-32

N_PURPOSES = 8
PURPOSE_WEIGHTS = 0
PURPOSE_BIAS = 1
PURPOSE_FRAME = 2
RANK_TOL = 1e-11  # kernels/cpu/haar.py RANK_TOL_FLOAT64

INITS = ("gaussian", "orthogonal", "uniform")


# ---------------------------------------------------------------------------------------
# Random numbers
# ---------------------------------------------------------------------------------------


def philox4x32(ctr, key, rounds=PHILOX_ROUNDS):
    """Vectorised Philox4x32-R (Salmon et al., SC'11; Random123), R = 10 by default.

    ctr: (..., 4) uint32-valued integers; key: (..., 2) uint32-valued, broadcastable.
    One round, with (hi, lo) the 64-bit product split in 32-bit halves:
        (hi0, lo0) = M0 * c0,  (hi1, lo1) = M1 * c2
        c <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        k <- (k0 + W0, k1 + W1) mod 2^32
    M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85.
    Arithmetic is in uint64 (a product of two 32-bit values fits). Returns (..., 4) uint32.
    """
    ctr = np.asarray(ctr, dtype=np.uint64) & MASK32
    key = np.asarray(key, dtype=np.uint64) & MASK32
    if ctr.shape[-1] != 4 or key.shape[-1] != 2:
        raise ValueError("ctr must have a last axis of 4 and key a last axis of 2")
    shape = np.broadcast_shapes(ctr.shape[:-1], key.shape[:-1])
    c0, c1, c2, c3 = (np.broadcast_to(ctr[..., i], shape) for i in range(4))
    k0, k1 = (np.broadcast_to(key[..., i], shape) for i in range(2))
    with np.errstate(over="ignore"):
        for _ in range(rounds):
            p0 = PHILOX_M0 * c0
            p1 = PHILOX_M1 * c2
            c0, c1, c2, c3 = (
                (p1 >> np.uint64(32)) ^ c1 ^ k0,
                p1 & MASK32,
                (p0 >> np.uint64(32)) ^ c3 ^ k1,
                p0 & MASK32,
            )
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def stream_id(layer, purpose):
    """Stream number of (layer, purpose): 8 * layer + purpose."""
    return N_PURPOSES * int(layer) + int(purpose)


def philox_words(seed, network, stream, n_blocks):
    """Words (n_blocks, 4) uint32 of blocks 0..n_blocks-1 of one stream of one network."""
    seed = int(seed)
    network = int(network)
    stream = int(stream)
    j = np.arange(n_blocks, dtype=np.uint64)
    ctr = np.empty((n_blocks, 4), dtype=np.uint64)
    ctr[:, 0] = j & MASK32
    ctr[:, 1] = stream & 0xFFFFFFFF
    ctr[:, 2] = network & 0xFFFFFFFF
    ctr[:, 3] = (network >> 32) & 0xFFFFFFFF
    key = np.array([seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF], dtype=np.uint64)
    return philox4x32(ctr, key)


def word_to_uniform(words):
    """u = (w + 1/2) 2^-32 in float64: uniform on the open interval (0, 1)."""
    return (np.asarray(words, dtype=np.float64) + 0.5) * TWO_M32


def uniforms(seed, network, stream, m):
    """The first m uniforms on (0, 1) of a stream: number t is lane t % 4 of block t // 4."""
    words = philox_words(seed, network, stream, (m + 3) // 4)
    return word_to_uniform(words).reshape(-1)[:m]


def normals(seed, network, stream, m):
    """The first m standard normals of a stream (Box-Muller per block, see module doc)."""
    u = word_to_uniform(philox_words(seed, network, stream, (m + 3) // 4))
    r0 = np.sqrt(-2.0 * np.log(u[:, 0]))
    r1 = np.sqrt(-2.0 * np.log(u[:, 2]))
    t0 = 2.0 * math.pi * u[:, 1]
    t1 = 2.0 * math.pi * u[:, 3]
    g = np.stack([r0 * np.cos(t0), r0 * np.sin(t0), r1 * np.cos(t1), r1 * np.sin(t1)], axis=1)
    return g.reshape(-1)[:m]


# ---------------------------------------------------------------------------------------
# Householder QR and Haar frames
# ---------------------------------------------------------------------------------------


def householder_qr(a, return_steps=False):
    """Thin Householder QR a = Q R of an (m, n) matrix, k = min(m, n); returns (Q, R).

    Q is (m, k) with orthonormal columns, R is (k, n) upper trapezoidal. Sign convention
    of kernels/cpu/haar.py: for column j with sub-column x = a[j:, j] (after the previous
    reflectors), ||x|| = norm, x0 = x[0],
        alpha = -sign(x0) * norm   with sign(0) = +1,
        v = x - alpha e_0,  beta = 2 / |v|^2,  H_j = I - beta v v^T,
    and R_jj = alpha (NO sign fix: R_jj <= 0 when x0 >= 0). Canonical degenerate steps
    (haar.py): a sub-column with norm <= RANK_TOL times its column's norm is zeroed
    (H_j = I, R_jj = 0). Q = H_0 ... H_{k-1} [I_k; 0].

    With ``return_steps`` also returns x0 (k,) and norm (k,): the pivot entry and the
    sub-column norm each reflector saw (see ``qr_sign_ambiguous``, ``qr_indeterminate``).
    """
    a = np.array(a, dtype=np.float64)
    m, n = a.shape
    k = min(m, n)
    vs, betas, rdiag, x0s, norms = [], np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k)
    for j in range(k):
        x = a[j:, j].copy()
        norm2 = float(np.dot(x, x))
        norm = math.sqrt(norm2)
        x0 = x[0]
        x0s[j] = x0
        norms[j] = norm
        column_norm = math.sqrt(norm2 + float(np.dot(a[:j, j], a[:j, j])))
        if norm2 <= (RANK_TOL * column_norm) ** 2:  # numerically dependent column
            a[j:, j] = 0.0
            vs.append(None)
            rdiag[j] = 0.0
            continue
        alpha = -norm if x0 >= 0 else norm
        v0 = x0 - alpha
        vnorm2 = norm2 - x0 * x0 + v0 * v0
        v = x
        v[0] = v0
        beta = 2.0 / vnorm2
        a[j:, j + 1 :] -= np.outer(v, beta * (v @ a[j:, j + 1 :]))
        a[j + 1 :, j] = 0.0
        a[j, j] = alpha
        vs.append(v)
        betas[j] = beta
        rdiag[j] = alpha
    r = np.triu(a[:k, :])
    r[np.arange(k), np.arange(k)] = rdiag
    q = np.eye(m, k)
    for j in range(k - 1, -1, -1):
        if vs[j] is None:
            continue
        v = vs[j]
        q[j:, :] -= betas[j] * np.outer(v, v @ q[j:, :])
    if return_steps:
        return q, r, x0s, norms
    return q, r


def qr_sign_ambiguous(a, rtol=1e-9, trials=8, jitter=1e-12):
    """Steps j (bool, (k,)) whose reflector sign is decided by rounding noise.

    alpha_j = -sign(x0_j) * norm_j. When x0_j is zero in exact arithmetic but computed
    through cancellations (typical after the exact zeros of ReLU: orthogonal or
    disjointly supported columns), its sign is rounding noise, and two correct
    implementations may pick opposite signs. Both are exact (the thin QR is unique up to
    the signs of the rows of R, and the projected sampler's F is invariant in law under
    column sign flips), but their outputs then differ by R_j -> -R_j, and the later rows
    of R are only determined up to sign as well.

    Detection: x0 is recomputed for ``trials`` copies of ``a`` whose non-zero entries are
    multiplied by 1 + U(-jitter, jitter) (exact zeros stay exact). Step j is ambiguous when
    |x0_j| <= rtol * ||a[:, j]|| in every copy but not exactly 0 in all of them (an x0_j
    that is exactly 0 in every copy is a structural zero, computed exactly by any
    implementation).
    """
    a = np.asarray(a, dtype=np.float64)
    gen = np.random.default_rng(0)
    runs = [householder_qr(a, return_steps=True)[2]]
    for _ in range(trials):
        noisy = a * (1.0 + jitter * gen.uniform(-1.0, 1.0, a.shape))
        runs.append(householder_qr(noisy, return_steps=True)[2])
    x0 = np.array(runs)
    k = x0.shape[1]
    col_norms = np.sqrt(np.sum(a[:, :k] ** 2, axis=0))
    small = np.all(np.abs(x0) <= rtol * col_norms, axis=0)
    structural = np.all(x0 == 0.0, axis=0)
    return small & ~structural


def qr_indeterminate(a, rtol=1e-9):
    """True when the R of ``a`` (m, n) is not determined up to row signs.

    That happens when some step j < n - 1 sees a sub-column that is zero up to rounding
    (|x| <= rtol ||a[:, j]||) although column j of ``a`` is not exactly zero: column j is
    (numerically) a combination of the earlier ones, the reflector H_j then points along
    rounding noise, and it still acts on the later columns. (An exactly zero column stays
    exactly zero in any implementation, giving H_j = I.) The projected sampler stays
    exact, but two implementations legitimately give different samples.
    """
    a = np.asarray(a, dtype=np.float64)
    _, _, _, norms = householder_qr(a, return_steps=True)
    n = a.shape[1]
    k = norms.size
    col_norms = np.sqrt(np.sum(a[:, :k] ** 2, axis=0))
    bad = (norms <= rtol * col_norms) & (col_norms > 0.0)
    return bool(np.any(bad[: min(k, n - 1)]))


def haar_frame(gauss):
    """Haar frame from an (m, k) Gaussian matrix, m >= k: Q * sign(diag R) (Mezzadri).

    sign(R_jj) is taken as -1 where R_jj < 0 and +1 otherwise, as in kernels/cpu/haar.py.
    """
    q, r = householder_qr(gauss)
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    return q * signs[None, :]


def haar_frame_from_stream(m, k, seed, network, stream):
    """(m, k) Haar frame of a stream: m*k normals filled as a C-ordered (k, m) array,
    transposed to (m, k) (i.e. column c of the Gaussian is normals [c*m, (c+1)*m))."""
    gauss = normals(seed, network, stream, m * k).reshape(k, m).T
    return haar_frame(gauss)


def haar_matrix(n_rows, n_cols, seed, network, stream=0):
    """Haar matrix (n_rows, n_cols) of kernels/cpu/haar.py::haar_matrix_from_stream.

    n_rows >= n_cols: the (n_rows, n_cols) Haar frame of the stream (orthonormal columns);
    otherwise the transpose of the (n_cols, n_rows) Haar frame (orthonormal rows).
    """
    if n_rows >= n_cols:
        return haar_frame_from_stream(n_rows, n_cols, seed, network, stream)
    return haar_frame_from_stream(n_cols, n_rows, seed, network, stream).T


# ---------------------------------------------------------------------------------------
# Forward passes
# ---------------------------------------------------------------------------------------


def per_layer(value, n_layers):
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n_layers, float(arr))
    if arr.shape != (n_layers,):
        raise ValueError(f"expected a scalar or {n_layers} values, got shape {arr.shape}")
    return arr


def orthogonal_scale(cw, n_in, n_out):
    """s = sqrt(cw * max(1, n_out / n_in)): Haar weights s*O have entry variance cw/n_in."""
    return math.sqrt(cw * max(1.0, n_out / n_in))


def dense_weights(init, cw, n_in, n_out, seed, network, layer):
    """Explicit (n_out, n_in) weights of one layer, filled row-major from stream 8*layer:
    gaussian    sqrt(cw/n_in) * normals
    uniform     -a + 2a * uniforms,  a = sqrt(3 cw / n_in)
    orthogonal  orthogonal_scale(cw, n_in, n_out) * haar_matrix(n_out, n_in)
    """
    stream = stream_id(layer, PURPOSE_WEIGHTS)
    if init == "gaussian":
        return math.sqrt(cw / n_in) * normals(seed, network, stream, n_out * n_in).reshape(
            n_out, n_in
        )
    if init == "uniform":
        a = math.sqrt(3.0 * cw / n_in)
        u = uniforms(seed, network, stream, n_out * n_in).reshape(n_out, n_in)
        return -a + (2.0 * a) * u
    if init == "orthogonal":
        return orthogonal_scale(cw, n_in, n_out) * haar_matrix(n_out, n_in, seed, network, stream)
    raise ValueError(f"unknown init {init!r}")


def bias(cb, n_out, seed, network, layer):
    """b ~ N(0, cb) of one layer (stream 8*layer + 1), or zeros when cb == 0 (not drawn)."""
    if cb > 0.0:
        return math.sqrt(cb) * normals(seed, network, stream_id(layer, PURPOSE_BIAS), n_out)
    return np.zeros(n_out)


def _prepare(widths, x, cw, cb):
    widths = [int(w) for w in widths]
    n_layers = len(widths) - 1
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if x.shape[1] != widths[0]:
        raise ValueError(f"x must be (B, n_0={widths[0]}), got {x.shape}")
    return widths, n_layers, x.T.copy(), per_layer(cw, n_layers), per_layer(cb, n_layers)


def dense_forward(widths, act, init, cw, cb, x, seed, network):
    """Dense forward pass of network ``network`` (kernels/cpu/forward.py::forward_dense_one).

    widths (n_0, ..., n_L); act: vectorised callable (e.g. ``ACTIVATIONS['relu']``);
    init in INITS; cw, cb scalars or per-layer sequences; x (B, n_0).
        z^(l) = W^(l) s^(l-1) + b^(l),  s^(0) = x^T,  s^(l) = act(z^(l)).
    Returns the list over layers l = 1..L of z^(l), each (n_l, B) float64.
    """
    widths, n_layers, s, cw, cb = _prepare(widths, x, cw, cb)
    out = []
    for layer in range(1, n_layers + 1):
        n_in, n_out = widths[layer - 1], widths[layer]
        w = dense_weights(init, cw[layer - 1], n_in, n_out, seed, network, layer)
        z = w @ s + bias(cb[layer - 1], n_out, seed, network, layer)[:, None]
        out.append(z)
        s = act(z)
    return out


def projected_layer(s, init, cw, cb, n_out, seed, network, layer):
    """One projected layer (docs/projected-sampler.md; forward.py::forward_projected_one).

    With S = s (n_in, B), k = min(n_in, B) and the thin Householder QR S = Q R (R is
    (k, B), ``householder_qr`` convention, rows then signed so that diag(R) >= 0), W S is
    replaced by F R:
        gaussian    F = sqrt(cw/n_in) * G,  G (n_out, k) column-major normals, stream 8*layer
        orthogonal  F = orthogonal_scale(cw, n_in, n_out) * H[:n_out],  H the (m, k) Haar
                    frame of stream 8*layer + 2 with m = max(n_out, n_in)
    and z = F R + b. Returns (F, R, b) with b (n_out,) (zeros when cb == 0).
    """
    s = np.asarray(s, dtype=np.float64)
    n_in, nb = s.shape
    k = min(n_in, nb)
    _, r = householder_qr(s)
    r = r * np.where(np.diag(r) < 0.0, -1.0, 1.0)[:, None]  # canonical: diag(R) >= 0
    if init == "gaussian":
        g = normals(seed, network, stream_id(layer, PURPOSE_WEIGHTS), n_out * k)
        f = math.sqrt(cw / n_in) * g.reshape(k, n_out).T
    elif init == "orthogonal":
        m = max(n_out, n_in)
        frame = haar_frame_from_stream(m, k, seed, network, stream_id(layer, PURPOSE_FRAME))
        f = orthogonal_scale(cw, n_in, n_out) * frame[:n_out]
    else:
        raise ValueError(
            f"the projected sampler is exact only for gaussian/orthogonal, not {init!r}"
        )
    return f, r, bias(cb, n_out, seed, network, layer)


def projected_forward(widths, act, init, cw, cb, x, seed, network, return_ambiguous=False):
    """Exact projected forward pass: ``projected_layer`` for l = 1..L, s = act(z).

    Returns the list of z^(l), each (n_l, B); with ``return_ambiguous`` also a bool, True
    when some QR step was sign-ambiguous or indeterminate (``qr_sign_ambiguous``,
    ``qr_indeterminate``): then an equally exact implementation may legitimately differ
    from this one.
    """
    widths, n_layers, s, cw, cb = _prepare(widths, x, cw, cb)
    out = []
    ambiguous = False
    for layer in range(1, n_layers + 1):
        ambiguous = ambiguous or bool(np.any(qr_sign_ambiguous(s))) or qr_indeterminate(s)
        f, r, b = projected_layer(
            s, init, cw[layer - 1], cb[layer - 1], widths[layer], seed, network, layer
        )
        z = f @ r + b[:, None]
        out.append(z)
        s = act(z)
    return (out, ambiguous) if return_ambiguous else out


def forward(method, widths, act, init, cw, cb, x, seed, networks):
    """Stack of a forward pass over several networks: list over layers of (N, n_l, B)."""
    fn = {"dense": dense_forward, "projected": projected_forward}[method]
    per_net = [fn(widths, act, init, cw, cb, x, seed, e) for e in networks]
    return [np.stack([p[l] for p in per_net]) for l in range(len(per_net[0]))]


_erf = np.vectorize(math.erf, otypes=[np.float64])

# Vectorised NumPy versions of the registry activations (nnft_fast/activations.py).
ACTIVATIONS = {
    "linear": lambda z: np.array(z, dtype=np.float64),
    "relu": lambda z: np.where(z > 0.0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0.0, z, 0.01 * z),
    "tanh": np.tanh,
    "erf": _erf,
    "gelu": lambda z: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "softplus": lambda z: np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))),
    "swish": lambda z: z / (1.0 + np.exp(-z)),
    "sin": np.sin,
    "cos": np.cos,
    "exp": np.exp,
}


# ---------------------------------------------------------------------------------------
# Estimators (docs/estimators.md) with delete-one-block jackknife errors
# ---------------------------------------------------------------------------------------

MOMENT_NAMES = (
    "two_point",
    "same_raw",
    "distinct_raw",
    "same_connected",
    "distinct_connected",
    "vertex",
)


def per_network_statistics(z):
    """Per-network G (N, B, B) and Q (N, B, B, B, B) of samples z (N, n, B):
    G_ab   = (1/n) sum_i z_ia z_ib
    Q_abcd = (1/n) sum_i z_ia z_ib z_ic z_id
    """
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[1]
    g = np.einsum("eia,eib->eab", z, z) / n
    q = np.einsum("eia,eib,eic,eid->eabcd", z, z, z, z) / n
    return g, q


def estimates_from_statistics(g, q, width, fan_in):
    """docs/estimators.md estimators from per-network G (N,B,B), Q (N,B,B,B,B), N >= 2:
        K_ab        = mean_e G_ab
        Qbar_abcd   = mean_e Q_abcd                                (same neuron, raw)
        P_abcd      = mean_e (n G_ab G_cd - Q_abcd) / (n - 1)     (distinct neurons, raw)
        KK_abcd     = sum_{e != f} G^e_ab G^f_cd / (N (N-1))       (U-statistic K_ab K_cd)
        same_connected     = Qbar - (KK_abcd + KK_acbd + KK_adbc)
        distinct_connected = P - KK
        vertex             = fan_in * distinct_connected
    Returns a dict over MOMENT_NAMES.
    """
    n_net = g.shape[0]
    n = float(width)
    k = g.mean(axis=0)
    qbar = q.mean(axis=0)
    gg = np.einsum("eab,ecd->eabcd", g, g)
    p = np.mean((n * gg - q) / (n - 1.0), axis=0) if width > 1 else np.full_like(qbar, np.nan)
    gsum = g.sum(axis=0)
    kk = (np.einsum("ab,cd->abcd", gsum, gsum) - gg.sum(axis=0)) / (n_net * (n_net - 1.0))
    same_connected = qbar - kk - kk.transpose(0, 2, 1, 3) - kk.transpose(0, 2, 3, 1)
    distinct_connected = p - kk
    return {
        "two_point": k,
        "same_raw": qbar,
        "distinct_raw": p,
        "same_connected": same_connected,
        "distinct_connected": distinct_connected,
        "vertex": fan_in * distinct_connected,
    }


def moment_estimates(samples, fan_in, n_blocks=64, first=0):
    """Estimates and delete-one-block jackknife errors of one layer's correlators.

    samples: (N, n, B) preactivations of networks first, ..., first + N - 1 at one layer
    (or a list of such arrays, one per layer, with ``fan_in`` a matching sequence; then a
    list of results is returned). fan_in: n_{l-1}, the width feeding the layer.

    Network e belongs to block e % n_blocks. With the g non-empty blocks, theta_b is the
    estimate recomputed from scratch without block b, and
        error = sqrt((g - 1)/g * sum_b (theta_b - mean_b theta_b)^2).
    Returns {name: (value, error)} for name in MOMENT_NAMES.
    """
    if isinstance(samples, (list, tuple)):
        return [moment_estimates(s, f, n_blocks, first) for s, f in zip(samples, fan_in)]
    z = np.asarray(samples, dtype=np.float64)
    n_net, width = z.shape[0], z.shape[1]
    g, q = per_network_statistics(z)
    full = estimates_from_statistics(g, q, width, fan_in)
    block = (first + np.arange(n_net)) % n_blocks
    used = np.unique(block)
    replicas = {name: [] for name in MOMENT_NAMES}
    for b in used:
        keep = block != b
        est = estimates_from_statistics(g[keep], q[keep], width, fan_in)
        for name in MOMENT_NAMES:
            replicas[name].append(est[name])
    return {
        name: (full[name], jackknife_error(replicas[name], full[name].shape))
        for name in MOMENT_NAMES
    }


def jackknife_error(replicas, shape):
    """Delete-one-block jackknife standard error of a list of g replicas (NaN if g < 2)."""
    g = len(replicas)
    if g < 2:
        return np.full(shape, np.nan)
    reps = np.array(replicas)
    dev = reps - reps.mean(axis=0)
    return np.sqrt((g - 1.0) / g * np.sum(dev * dev, axis=0))


# ---------------------------------------------------------------------------------------
# Neural tangent kernel (docs/conventions.md#ntk) and its fluctuation estimators
# ---------------------------------------------------------------------------------------

# sigma'(z) of the activations used by the NTK tests (kernels/cpu/activations.py
# ``activate_derivative``; relu'(0) = 0).
ACTIVATION_DERIVATIVES = {
    "linear": lambda z: np.ones_like(np.asarray(z, dtype=np.float64)),
    "relu": lambda z: np.where(np.asarray(z) > 0.0, 1.0, 0.0),
    "leaky_relu": lambda z: np.where(np.asarray(z) > 0.0, 1.0, 0.01),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "erf": lambda z: 2.0 / math.sqrt(math.pi) * np.exp(-(np.asarray(z, dtype=np.float64) ** 2)),
    "sin": np.cos,
    "exp": np.exp,
}


def dense_parameters(widths, init, cw, cb, seed, network):
    """Explicit weights [(n_l, n_{l-1})] and biases [(n_l,)] of one dense network, l = 1..L
    (``dense_weights`` / ``bias``: the streams of ``dense_forward``)."""
    widths = [int(w) for w in widths]
    n_layers = len(widths) - 1
    cw, cb = per_layer(cw, n_layers), per_layer(cb, n_layers)
    weights, biases = [], []
    for layer in range(1, n_layers + 1):
        weights.append(
            dense_weights(
                init, cw[layer - 1], widths[layer - 1], widths[layer], seed, network, layer
            )
        )
        biases.append(bias(cb[layer - 1], widths[layer], seed, network, layer))
    return weights, biases


def forward_with_parameters(weights, biases, act, x):
    """z^(l) (n_l, B) for l = 1..L of a network with explicit parameters; x (B, n_0)."""
    s = np.atleast_2d(np.asarray(x, dtype=np.float64)).T
    out = []
    for w, b in zip(weights, biases):
        z = w @ s + b[:, None]
        out.append(z)
        s = act(z)
    return out


def ntk_from_parameters(weights, biases, act, dact, x, lambda_b, lambda_w, readouts):
    """NTK of one network with explicit parameters by backpropagation.

    With s^(0) = x^T, s^(l) = act(z^(l)) and, for readout neuron i of layer l, the
    backward vectors J^(l,l')_{i;a} = dz^(l)_{i;a} / dz^(l')_{.;a} (over layer-l' neurons):
        J^(l,l)_{i;a}    = e_i
        J^(l,l'-1)_{i;a} = (W^(l')^T J^(l,l')_{i;a}) * act'(z^(l'-1)_{.;a}),
    the bias and weight derivatives are dz_{i;a}/db^(l')_j = J_{i;a,j} and
    dz_{i;a}/dW^(l')_{jk} = J_{i;a,j} s^(l'-1)_{k;a}, hence
        H^(l)_{i1 i2; a1 a2} = sum_{l'=1..l} [lambda_b + lambda_w Gs^(l'-1)_{a1 a2}]
                                             <J^(l,l')_{i1;a1}, J^(l,l')_{i2;a2}>,
        Gs^(l'-1)_{a1 a2}   = (1/n_{l'-1}) sum_k s^(l'-1)_{k;a1} s^(l'-1)_{k;a2}.
    Returns the list over l = 1..L of H^(l) for i1, i2 = 0..readouts-1: (r, r, B, B).
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    zs = forward_with_parameters(weights, biases, act, x)
    ss = [x.T] + [act(z) for z in zs]  # s^(0..L), each (n, B)
    grams = [s.T @ s / s.shape[0] for s in ss]  # Gs^(0..L-1) used
    r = int(readouts)
    out = []
    for layer in range(1, len(weights) + 1):
        n_l, nb = zs[layer - 1].shape
        jac = np.zeros((r, n_l, nb))  # J^(l,l)[i, j, a]
        jac[np.arange(r), np.arange(r), :] = 1.0
        h = np.zeros((r, r, nb, nb))
        for lp in range(layer, 0, -1):
            inner = np.einsum("ija,kjb->ikab", jac, jac)
            h += (lambda_b + lambda_w * grams[lp - 1])[None, None] * inner
            if lp > 1:
                back = np.einsum("jk,ija->ika", weights[lp - 1], jac)
                jac = back * dact(zs[lp - 2])[None, :, :]
        out.append(h)
    return out


def dense_ntk(widths, act, dact, init, cw, cb, x, seed, network, lambda_b, lambda_w, readouts):
    """Per-network NTK of the dense network ``network`` of ``seed`` (same weights as
    ``dense_forward``): list over layers of (r, r, B, B), see ``ntk_from_parameters``."""
    weights, biases = dense_parameters(widths, init, cw, cb, seed, network)
    return ntk_from_parameters(weights, biases, act, dact, x, lambda_b, lambda_w, readouts)


def finite_difference_ntk(
    widths, act, init, cw, cb, x, seed, network, lambda_b, lambda_w, readouts, eps=1e-5
):
    """The NTK straight from its definition (docs/conventions.md#ntk), by central differences.

    Every parameter theta (all weights and biases, biases included even where C_b = 0)
    is perturbed by +-eps: g_theta = (z(theta + eps) - z(theta - eps)) / (2 eps), and
        H^(l) = sum_{theta in layers <= l} lambda_theta g_theta^(l) (x) g_theta^(l),
    lambda_theta = lambda_b for biases, lambda_w / n_{l'-1} for weights of layer l'.
    Only for tiny networks (cost: 2 forward passes per parameter). Same output layout as
    ``dense_ntk``.
    """
    weights, biases = dense_parameters(widths, init, cw, cb, seed, network)
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    r = int(readouts)
    n_layers = len(weights)
    nb = x.shape[0]
    h = [np.zeros((r, r, nb, nb)) for _ in range(n_layers)]

    def add(arrays, index, rate):
        old = arrays[index[0]][index[1:]]
        arrays[index[0]][index[1:]] = old + eps
        plus = forward_with_parameters(weights, biases, act, x)
        arrays[index[0]][index[1:]] = old - eps
        minus = forward_with_parameters(weights, biases, act, x)
        arrays[index[0]][index[1:]] = old
        for layer in range(n_layers):
            g = (plus[layer][:r] - minus[layer][:r]) / (2.0 * eps)  # (r, B)
            h[layer] += rate * np.einsum("ia,jb->ijab", g, g)

    for lp in range(n_layers):
        n_in = weights[lp].shape[1]
        for j in range(weights[lp].shape[0]):
            add(biases, (lp, j), lambda_b)
            for k in range(n_in):
                add(weights, (lp, j, k), lambda_w / n_in)
    return h


NTK_NAMES = ("theta", "theta_offdiag", "A", "B", "D", "F")


def ntk_per_network_statistics(h, z, readout_z=None):
    """Per-network averages over ordered readout pairs i != j (r readouts) of one layer.

    h: (N, r, r, B, B) samples H_{i1 i2; a1 a2}; z: (N, n, B) the layer's preactivations
    (the readouts are its first r neurons unless ``readout_z`` (N, r, B) is given).
        T_ab       = (1/r) sum_i H_ii;ab
        O_ab       = mean_{i != j} H_ij;ab
        PA_abcd    = mean_{i != j} H_ii;ab H_jj;cd
        PB_abcd    = mean_{i != j} H_ij;ab H_ij;cd
        PD_abcd    = mean_{i != j} H_ii;ab z_j;c z_j;d
        PF_abcd    = mean_{i != j} H_ij;ab z_i;c z_j;d
        G_ab       = (1/n) sum_{k < n} z_k;a z_k;b              (all neurons of the layer)
    """
    h = np.asarray(h, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    r = h.shape[1]
    zr = z[:, :r] if readout_z is None else np.asarray(readout_z, dtype=np.float64)
    pairs = r * (r - 1.0)
    off = ~np.eye(r, dtype=bool)
    diag = np.einsum("eiiab->eiab", h)  # (N, r, B, B)
    zz = np.einsum("eia,eib->eiab", zr, zr)  # (N, r, B, B)
    dsum, zsum = diag.sum(axis=1), zz.sum(axis=1)
    hoff = h * off[None, :, :, None, None]
    return {
        "T": dsum / r,
        "O": hoff.sum(axis=(1, 2)) / pairs,
        "PA": (np.einsum("eab,ecd->eabcd", dsum, dsum) - np.einsum("eiab,eicd->eabcd", diag, diag))
        / pairs,
        "PB": np.einsum("eijab,eijcd->eabcd", hoff, h) / pairs,
        "PD": (np.einsum("eab,ecd->eabcd", dsum, zsum) - np.einsum("eiab,eicd->eabcd", diag, zz))
        / pairs,
        "PF": np.einsum("eijab,eic,ejd->eabcd", hoff, zr, zr) / pairs,
        "G": np.einsum("eka,ekb->eab", z, z) / z.shape[1],
    }


def ntk_estimates_from_statistics(stats, fan_in):
    """Estimators of the NTK mean and fluctuations from per-network statistics (N >= 2):
        Theta      = mean_e T,    Theta_offdiag = mean_e O,    K = mean_e G
        U(X, Y)_abcd = sum_{e != f} X^e_ab Y^f_cd / (N (N - 1))   (unbiased product)
        A_abcd       = n (mean_e PA_abcd - U(T, T)_abcd)
        B_{a c b d}  = n mean_e PB_abcd           (B[a1,a3,a2,a4] = n E[H_ij;a1a2 H_ij;a3a4])
        D_abcd       = n (mean_e PD_abcd - U(T, G)_abcd)
        F_{a c b d}  = n mean_e PF_abcd           (F[a1,a3,a2,a4] = n E[H_ij;a1a2 z_i;a3 z_j;a4])
    with n = fan_in = n_{l-1}. Returns a dict over NTK_NAMES (plus "K").
    """
    n = float(fan_in)
    t, g = stats["T"], stats["G"]
    n_net = t.shape[0]

    def ustat(a, b):
        sa, sb = a.sum(axis=0), b.sum(axis=0)
        return (np.einsum("ab,cd->abcd", sa, sb) - np.einsum("eab,ecd->abcd", a, b)) / (
            n_net * (n_net - 1.0)
        )

    return {
        "theta": t.mean(axis=0),
        "theta_offdiag": stats["O"].mean(axis=0),
        "K": g.mean(axis=0),
        "A": n * (stats["PA"].mean(axis=0) - ustat(t, t)),
        "B": n * stats["PB"].mean(axis=0).transpose(0, 2, 1, 3),
        "D": n * (stats["PD"].mean(axis=0) - ustat(t, g)),
        "F": n * stats["PF"].mean(axis=0).transpose(0, 2, 1, 3),
    }


def ntk_estimates(h, z, fan_in, n_blocks=64, first=0, readout_z=None):
    """NTK estimates of one layer with delete-one-block jackknife errors.

    h: (N, r, r, B, B) per-network NTK samples (``nf.ntk_samples`` / ``dense_ntk``) of
    networks first .. first + N - 1; z: (N, n, B) the same networks' preactivations at that
    layer; fan_in = n_{l-1}. Network e is in block e % n_blocks (as ``moment_estimates``).
    Returns {name: (value, error)} for NTK_NAMES and "K" (see
    ``ntk_estimates_from_statistics``).
    """
    stats = ntk_per_network_statistics(h, z, readout_z)
    full = ntk_estimates_from_statistics(stats, fan_in)
    n_net = stats["T"].shape[0]
    block = (first + np.arange(n_net)) % n_blocks
    used = np.unique(block)
    reps = {name: [] for name in full}
    for b in used:
        keep = block != b
        est = ntk_estimates_from_statistics({k: v[keep] for k, v in stats.items()}, fan_in)
        for name in full:
            reps[name].append(est[name])
    return {name: (full[name], jackknife_error(reps[name], full[name].shape)) for name in full}


# ---------------------------------------------------------------------------------------
# Cos-net fields (docs/fields.md, kernels/cpu/field.py)
# ---------------------------------------------------------------------------------------
#
# phi_k(x) = sum_i a_ki cos(w_i . x + b_i) on the layer-1 streams of network e:
#   |w_i|  = F^-1(u_i F_total), u from stream (1, RADIUS = 4), F the CDF of
#            f(k) = k^(d-1) (k^2 + m^2)^-(1+alpha) on [0, Lambda];
#   w_i    = |w_i| g_i / |g_i|, g_i = normals i d .. i d + d - 1 of stream (1, WEIGHTS = 0)
#            (Gaussian momenta: w_i = g_i / length);
#   b_i    = 2 pi (u_i - 1/2), u from stream (1, BIAS = 1);
#   a_ki   = sqrt(2 A(|w_i|) / N) g_ki, g normal k N + i of stream (1, AMPLITUDE = 5)
#            (constant amplitudes: sign(g_ki)), A(k) = Z (k^2 + m^2)^alpha / (2 pi)^d,
#            Z = S_{d-1} F_total (Gaussian momenta: A = variance).

PURPOSE_RADIUS = 4
PURPOSE_AMPLITUDE = 5


def _radial_f(k, dim, mass, alpha):
    return k ** (dim - 1) * (k * k + mass * mass) ** (-(1.0 + alpha))


_gauss_legendre = functools.cache(np.polynomial.legendre.leggauss)


def radial_cdf(k, dim, mass, alpha, pieces=400, nodes=24):
    """F(k) = int_0^k f for an array of k, by composite Gauss-Legendre on [0, k]."""
    x, w = _gauss_legendre(nodes)
    k = np.asarray(k, dtype=np.float64)
    edges = k[..., None] * np.linspace(0.0, 1.0, pieces + 1)
    mid = 0.5 * (edges[..., 1:] + edges[..., :-1])
    half = 0.5 * (edges[..., 1:] - edges[..., :-1])
    values = _radial_f(mid[..., None] + half[..., None] * x, dim, mass, alpha)
    return np.sum(half * (values @ w), axis=-1)


def radial_inverse(u, dim, mass, cutoff, alpha, chunk=512):
    """k with F(k) = u F(Lambda), vectorised over u (``chunk`` values at a time): 24
    bisection steps bracket k to 2^-24 Lambda, then 4 Newton steps k -= (F(k) - u F) / f(k)
    (kept inside the bracket) take it to rounding (quadratic convergence)."""
    total = radial_cdf(np.array(cutoff), dim, mass, alpha)
    u = np.asarray(u, dtype=np.float64)
    flat = u.ravel()
    k = np.empty_like(flat)
    for start in range(0, flat.size, chunk):
        target = flat[start : start + chunk] * total
        lo = np.zeros_like(target)
        hi = np.full_like(target, cutoff)
        for _ in range(24):
            mid = 0.5 * (lo + hi)
            below = radial_cdf(mid, dim, mass, alpha) < target
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        root = 0.5 * (lo + hi)
        for _ in range(4):
            slope = _radial_f(root, dim, mass, alpha)
            step = np.where(slope > 0, radial_cdf(root, dim, mass, alpha) - target, 0.0)
            root = np.clip(root - step / np.where(slope > 0, slope, 1.0), lo, hi)
        k[start : start + chunk] = root
    return k.reshape(u.shape), float(total)


def cosnet_radii(net, seed, networks):
    """|w| (len(networks), N) of propagator momenta: F^{-1}(u F(Lambda)) of the radius
    uniforms of every network, inverted together."""
    u = np.array([uniforms(seed, e, stream_id(1, PURPOSE_RADIUS), net.width) for e in networks])
    return radial_inverse(u, net.dim, net.mass, net.cutoff, net.alpha)


def cosnet_parameters(net, seed, network, radii=None):
    """(w (N, d), b (N,), a (n_out, N)) of network ``network``; ``net`` any object with the
    attributes of nf.CosNet (dim, width, n_out, amplitude, momenta, mass, cutoff, alpha,
    length, variance); ``radii`` = (|w| (N,), F(Lambda)) of propagator momenta when
    already computed (``cosnet_radii``)."""
    d, n, n_out = net.dim, net.width, net.n_out
    g = normals(seed, network, stream_id(1, PURPOSE_WEIGHTS), n * d).reshape(n, d)
    if net.momenta == "gaussian":
        w = g / net.length
        amp_var = np.full(n, net.variance)
    else:
        k, total = radii if radii is not None else cosnet_radii(net, seed, [network])
        k = k.reshape(n)
        w = k[:, None] * g / np.linalg.norm(g, axis=1)[:, None]
        z = 2.0 * math.pi ** (d / 2) / math.gamma(d / 2) * total
        amp_var = z * (k * k + net.mass**2) ** net.alpha / (2.0 * math.pi) ** d
    b = 2.0 * math.pi * (uniforms(seed, network, stream_id(1, PURPOSE_BIAS), n) - 0.5)
    ga = normals(seed, network, stream_id(1, PURPOSE_AMPLITUDE), n_out * n).reshape(n_out, n)
    if net.amplitude == "constant":
        ga = np.where(ga >= 0.0, 1.0, -1.0)
    return w, b, np.sqrt(2.0 * amp_var / n) * ga


def cosnet_field(w, b, a, x):
    """phi (n_out, B) = a cos(x w^T + b)^T for points x (B, d)."""
    return a @ np.cos(x @ w.T + b).T


def cosnet_fields(net, x, seed, networks):
    """phi (len(networks), n_out, B) of the given networks."""
    networks = list(networks)
    if net.momenta == "gaussian":
        radii = [None] * len(networks)
    else:
        k, total = cosnet_radii(net, seed, networks)
        radii = [(row, total) for row in k]
    return np.array(
        [cosnet_field(*cosnet_parameters(net, seed, e, r), x) for e, r in zip(networks, radii)]
    )


def _output_moment(phi, points):
    """Per network (1/n_out) sum_k prod_{p in points} phi_k(x_p): (M,)."""
    return np.prod(phi[:, :, list(points)], axis=2).mean(axis=1)


def _u2(x, y):
    """sum_{e != f} x_e y_f / (M (M - 1)): unbiased product of two means."""
    m = x.size
    return (x.sum() * y.sum() - (x * y).sum()) / (m * (m - 1.0))


def _u3(x, y, z):
    """sum over distinct e, f, g of x_e y_f z_g / (M (M-1) (M-2))."""
    m = x.size
    s = x.sum() * y.sum() * z.sum()
    s -= (x * y).sum() * z.sum() + (x * z).sum() * y.sum() + (y * z).sum() * x.sum()
    s += 2.0 * (x * y * z).sum()
    return s / (m * (m - 1.0) * (m - 2.0))


def connected_four(phi, t):
    """Connected E[phi1 phi2 phi3 phi4] - (three pairings, unbiased) at tuple t."""
    mo = lambda *p: _output_moment(phi, [t[i] for i in p])  # noqa: E731
    pairings = ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2))
    return mo(0, 1, 2, 3).mean() - sum(_u2(mo(a, b), mo(c, d)) for a, b, c, d in pairings)


def connected_six(phi, t):
    """The sixth cumulant at tuple t with unbiased products of moments:
    m6 - sum_15 m2 m4 - sum_10 m3 m3 + 2 sum_15 m2 m2 m2."""
    mo = lambda idx: _output_moment(phi, [t[i] for i in idx])  # noqa: E731
    every = set(range(6))
    total = mo(range(6)).mean()
    for pair in itertools.combinations(range(6), 2):
        total -= _u2(mo(pair), mo(sorted(every - set(pair))))
    for triple in itertools.combinations(range(6), 3):
        if 0 in triple:  # each split into two triples once
            total -= _u2(mo(triple), mo(sorted(every - set(triple))))
    seen = set()
    for p1 in itertools.combinations(range(6), 2):
        for p2 in itertools.combinations(sorted(every - set(p1)), 2):
            p3 = tuple(sorted(every - set(p1) - set(p2)))
            key = frozenset((p1, p2, p3))
            if key not in seen:
                seen.add(key)
                total += 2.0 * _u3(mo(p1), mo(p2), mo(p3))
    return total


def tuple_estimates(phi, tuples, function, n_blocks=64, first=0):
    """(values, jackknife errors) of ``function(phi, t)`` for every tuple over the
    delete-one-block replicas (network e in block e % n_blocks)."""
    values = np.array([function(phi, t) for t in tuples])
    block = (first + np.arange(phi.shape[0])) % n_blocks
    replicas = [np.array([function(phi[block != b], t) for t in tuples]) for b in np.unique(block)]
    return values, jackknife_error(replicas, values.shape)


def two_point_estimates(z, n_blocks=64, first=0):
    """(K, jackknife error) of K_ab = E[(1/n) sum_i z_ia z_ib] from samples z (N, n, B),
    without the four-point statistics (any B)."""
    g = np.einsum("eia,eib->eab", z, z) / z.shape[1]
    block = (first + np.arange(z.shape[0])) % n_blocks
    replicas = [g[block != b].mean(axis=0) for b in np.unique(block)]
    return g.mean(axis=0), jackknife_error(replicas, g.shape[1:])


# ---------------------------------------------------------------------------------------
# Deformed cos-net ensembles (docs/fields.md#deformations)
# ---------------------------------------------------------------------------------------


def phi4_interaction(phi_nodes, weights):
    """s = sum_q W_q phi(y_q)^4 / 4! per network, phi_nodes (M, Q)."""
    return (phi_nodes**4 / 24.0) @ weights


def first_order_mean(x, s):
    """-(E[s x] - E[s] E[x]) with the product of means over different networks, x (M, ...)."""
    m = x.shape[0]
    sx = np.einsum("e,e...->e...", s, x)
    return -(sx.mean(axis=0) - (s.sum() * x.sum(axis=0) - sx.sum(axis=0)) / (m * (m - 1.0)))


def first_order_connected_four(phi, s, t):
    """d/dlambda of E[p1 p2 p3 p4] - three pairings at tuple t, phi (M, B) of one output:
    d m4 - sum over pairings of (d m2(P1) m2(P2) + m2(P1) d m2(P2)), every product of means
    over different networks (explicit U-statistics)."""
    m = phi.shape[0]
    y = lambda *idx: np.prod(phi[:, [t[i] for i in idx]], axis=1)  # noqa: E731
    total = first_order_mean(y(0, 1, 2, 3), s)
    for a, b, c, d in ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2)):
        g1, g2 = y(a, b), y(c, d)
        for first, second in ((g1, g2), (g2, g1)):
            # -(E[s first] E[second] - E[s] E[first] E[second]), unbiased
            u2 = ((s * first).sum() * second.sum() - (s * first * second).sum()) / (m * (m - 1.0))
            u3 = _u3(s, first, second)
            total -= -(u2 - u3)
    return total


def reweighted_mean(x, s, coupling):
    """sum_e w_e x_e / sum_e w_e, w = exp(-coupling s)."""
    w = np.exp(-coupling * (s - s.min()))
    return np.einsum("e,e...->...", w, x) / w.sum()


def reweighted_connected_four(phi, s, coupling, t):
    """<p1 p2 p3 p4>_w - the three pairings of <p p>_w (plug-in), phi (M, B)."""
    mean = lambda *idx: reweighted_mean(np.prod(phi[:, [t[i] for i in idx]], axis=1), s, coupling)  # noqa: E731
    return (
        mean(0, 1, 2, 3)
        - mean(0, 1) * mean(2, 3)
        - mean(0, 2) * mean(1, 3)
        - mean(0, 3) * mean(1, 2)
    )


def block_jackknife(function, n_networks, n_blocks=64, first=0):
    """(value, error) of ``function(mask)`` over the delete-one-block replicas."""
    block = (first + np.arange(n_networks)) % n_blocks
    value = np.asarray(function(np.ones(n_networks, bool)))
    replicas = [np.asarray(function(block != b)) for b in np.unique(block)]
    return value, jackknife_error(replicas, value.shape)


# MLP layers (nnft_fast.deformations on nf.Network): per-network neuron averages G (M, B, B)
# and Q (M, B, B, B, B) of one layer (``per_network_statistics``) and the interaction s (M,).


def _pairings(kk):
    """KK_abcd + KK_acbd + KK_adbc of a pair-product tensor KK_abcd = K_ab K_cd."""
    return kk + kk.transpose(0, 2, 1, 3) + kk.transpose(0, 2, 3, 1)


def _distinct_raw(g, q, width):
    """Per network (n G_ab G_cd - Q_abcd) / (n - 1): two different neurons of n."""
    return (width * np.einsum("eab,ecd->eabcd", g, g) - q) / (width - 1.0)


def first_order_pair_product(g, s):
    """d/dlambda of K_ab K_cd, unbiased: -(E[s G_ab] E[G_cd] - E[s] E[G_ab] E[G_cd]) - (the
    same with the factors exchanged), every product over different networks."""
    m = g.shape[0]
    sg = s[:, None, None] * g
    outer = lambda x, y: np.einsum("ab,cd->abcd", x.sum(axis=0), y.sum(axis=0))  # noqa: E731
    same = lambda x, y: np.einsum("eab,ecd->abcd", x, y)  # noqa: E731
    u_sg_g = (outer(sg, g) - same(sg, g)) / (m * (m - 1.0))
    u_g_sg = (outer(g, sg) - same(g, sg)) / (m * (m - 1.0))
    u_s_g_g = (
        s.sum() * outer(g, g)
        - outer(sg, g)
        - outer(g, sg)
        - s.sum() * same(g, g)
        + 2.0 * same(sg, g)
    ) / (m * (m - 1.0) * (m - 2.0))
    return -(u_sg_g - u_s_g_g) - (u_g_sg - u_s_g_g)


def first_order_layer_four_point(g, q, s, width):
    """d/dlambda of the connected four-point functions of a layer of ``width`` neurons:
    (same neuron: Qbar - three pairings, distinct neurons: P - K_ab K_cd), unbiased."""
    dkk = first_order_pair_product(g, s)
    same = first_order_mean(q, s) - _pairings(dkk)
    distinct = first_order_mean(_distinct_raw(g, q, width), s) - dkk
    return same, distinct


def reweighted_layer_four_point(g, q, s, coupling, width):
    """The reweighted connected four-point functions of a layer (plug-in products):
    (<Q>_w - three pairings of <G>_w, <P>_w - <G_ab>_w <G_cd>_w)."""
    k = reweighted_mean(g, s, coupling)
    kk = np.einsum("ab,cd->abcd", k, k)
    same = reweighted_mean(q, s, coupling) - _pairings(kk)
    distinct = reweighted_mean(_distinct_raw(g, q, width), s, coupling) - kk
    return same, distinct


# ---------------------------------------------------------------------------------------
# Residual networks (docs/conventions.md#residual)
# ---------------------------------------------------------------------------------------


def residual_forward(method, widths, act, init, cw, cb, xi, gamma, x, seed, network):
    """Forward pass of a residual network: u^(l) = W^(l) s^(l-1) + b^(l), the plain layer of
    ``dense_forward`` (dense weights) or ``projected_layer`` (F R + b, the same draws), then
        z^(l) = xi_l z^(l-1) + gamma_l u^(l)   at the layers with xi_l != 0 or gamma_l != 1
    (they have l >= 2 and n_l = n_{l-1}), z^(l) = u^(l) elsewhere; s^(l) = act(z^(l)).
    xi, gamma: scalars or per-layer sequences (length L). Returns the list over layers of
    z^(l), each (n_l, B) float64."""
    widths, n_layers, s, cw, cb = _prepare(widths, x, cw, cb)
    xi, gamma = per_layer(xi, n_layers), per_layer(gamma, n_layers)
    out = []
    for layer in range(1, n_layers + 1):
        n_in, n_out = widths[layer - 1], widths[layer]
        if method == "dense":
            w = dense_weights(init, cw[layer - 1], n_in, n_out, seed, network, layer)
            u = w @ s + bias(cb[layer - 1], n_out, seed, network, layer)[:, None]
        elif method == "projected":
            f, r, b = projected_layer(
                s, init, cw[layer - 1], cb[layer - 1], n_out, seed, network, layer
            )
            u = f @ r + b[:, None]
        else:
            raise ValueError(f"unknown method {method!r}")
        if xi[layer - 1] != 0.0 or gamma[layer - 1] != 1.0:
            if layer == 1 or n_in != n_out:
                raise ValueError(f"layer {layer} cannot carry a residual connection")
            u = xi[layer - 1] * out[-1] + gamma[layer - 1] * u
        out.append(u)
        s = act(u)
    return out


def deep_linear_residual_moments(widths, cw, cb, xi, gamma, x):
    """Exact finite-width (K, E[z_i^4], E[z_i^2 z_j^2] for i != j) of every layer of a deep
    linear network with Gaussian weights and biases on one input x (n_0,), with residual
    coefficients xi, gamma per layer (layers l >= 2 of equal width where they act).

    Layer 1 is Gaussian: K = C_b + C_W |x|^2 / n_0, A = 3 K^2, D = K^2. Given layer l
    (width n), u_i = b_i + sum_j W_ij z_j are independent N(0, g), g = C_b + C_W S,
    S = (1/n) sum_k z_k^2, and z'_i = xi z_i + gamma u_i, so with M = E[S^2] = E[z_i^2 S]
    = (A + (n - 1) D) / n (exchangeable neurons):
        K' = xi^2 K + gamma^2 (C_b + C_W K)
        A' = xi^4 A + 6 xi^2 gamma^2 E[g z_i^2] + 3 gamma^4 E[g^2]
        D' = xi^4 D + 2 xi^2 gamma^2 E[g z_i^2] + gamma^4 E[g^2]
    with E[g z_i^2] = C_b K + C_W M and E[g^2] = C_b^2 + 2 C_b C_W K + C_W^2 M. (At the
    layers that change the width, xi = 0 and gamma = 1 give the plain recursion.)"""
    widths = [int(w) for w in widths]
    n_layers = len(widths) - 1
    cw, cb = per_layer(cw, n_layers), per_layer(cb, n_layers)
    xi, gamma = per_layer(xi, n_layers), per_layer(gamma, n_layers)
    x = np.asarray(x, dtype=np.float64).ravel()
    k = cb[0] + cw[0] * float(x @ x) / widths[0]
    a, d = 3.0 * k * k, k * k
    out = [(k, a, d)]
    for layer in range(2, n_layers + 1):
        n = widths[layer - 1]
        c, v = cw[layer - 1], cb[layer - 1]
        x2, g2 = xi[layer - 1] ** 2, gamma[layer - 1] ** 2
        m = (a + (n - 1) * d) / n
        gz = v * k + c * m
        gg = v * v + 2.0 * v * c * k + c * c * m
        k, a, d = (
            x2 * k + g2 * (v + c * k),
            x2 * x2 * a + 6.0 * x2 * g2 * gz + 3.0 * g2 * g2 * gg,
            x2 * x2 * d + 2.0 * x2 * g2 * gz + g2 * g2 * gg,
        )
        out.append((k, a, d))
    return out


def residual_forward_with_parameters(weights, biases, act, x, xi, gamma):
    """z^(l) (n_l, B), l = 1..L, of a residual network with explicit parameters:
    u^(l) = W^(l) s^(l-1) + b^(l), z^(l) = xi_l z^(l-1) + gamma_l u^(l) at the layers with
    xi_l != 0 or gamma_l != 1 (l >= 2, n_l = n_{l-1}), z^(l) = u^(l) elsewhere; x (B, n_0),
    xi, gamma per layer (length L; xi = 0, gamma = 1 at the plain layers, as
    ``Network.xi_array`` / ``gamma_array``)."""
    n_layers = len(weights)
    xi, gamma = per_layer(xi, n_layers), per_layer(gamma, n_layers)
    s = np.atleast_2d(np.asarray(x, dtype=np.float64)).T
    out = []
    for layer, (w, b) in enumerate(zip(weights, biases), start=1):
        z = w @ s + b[:, None]
        if xi[layer - 1] != 0.0 or gamma[layer - 1] != 1.0:
            z = xi[layer - 1] * out[-1] + gamma[layer - 1] * z
        out.append(z)
        s = act(z)
    return out


def residual_ntk_from_parameters(
    weights, biases, act, dact, x, xi, gamma, lambda_b, lambda_w, readouts
):
    """NTK of one residual network with explicit parameters from its explicit Jacobians.

    Per input a, the layer-to-layer Jacobian matrices (n_l x n_{l-1}) of
    ``residual_forward_with_parameters``
        M^(l)_a = dz^(l)_a / dz^(l-1)_a = xi_l I + gamma_l W^(l) diag(act'(z^(l-1)_a))
    (xi_l = 0, gamma_l = 1 at the plain layers) give dz^(l)_a/dz^(l')_a = M^(l)_a ...
    M^(l'+1)_a, and the parameter Jacobian of z^(l)_a is the (n_l x P_l) matrix of
        dz^(l)_a / db^(l')_j     = gamma_l' [dz^(l)_a/dz^(l')_a]_{:, j},
        dz^(l)_a / dW^(l')_{jk}  = gamma_l' [dz^(l)_a/dz^(l')_a]_{:, j} s^(l'-1)_{k;a},
    over every parameter of the layers l' <= l, each column scaled by the square root of
    its learning rate (lambda_b; lambda_w / n_{l'-1} for the weights). Then
        H^(l)_{i1 i2; a1 a2} = sum_p Jp^(l)_{a1}[i1, p] Jp^(l)_{a2}[i2, p].
    Returns the list over l = 1..L of H^(l) for i1, i2 < readouts: (r, r, B, B)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n_layers = len(weights)
    xi, gamma = per_layer(xi, n_layers), per_layer(gamma, n_layers)
    zs = residual_forward_with_parameters(weights, biases, act, x, xi, gamma)
    ss = [x.T] + [act(z) for z in zs]
    nb, r = x.shape[0], int(readouts)
    residual = [xi[l] != 0.0 or gamma[l] != 1.0 for l in range(n_layers)]
    g = [gamma[l] if residual[l] else 1.0 for l in range(n_layers)]
    out = []
    for layer in range(1, n_layers + 1):
        jacobians = []  # per input: (n_l, P_l)
        for a in range(nb):
            chain = np.eye(weights[layer - 1].shape[0])  # dz^(l)/dz^(lp)
            columns = []
            for lp in range(layer, 0, -1):
                w = weights[lp - 1]
                n_in = w.shape[1]
                s_prev = ss[lp - 1][:, a]
                columns.append(math.sqrt(lambda_b) * g[lp - 1] * chain)
                columns.append(
                    math.sqrt(lambda_w / n_in)
                    * g[lp - 1]
                    * np.einsum("ij,k->ijk", chain, s_prev).reshape(chain.shape[0], -1)
                )
                if lp > 1:
                    step = g[lp - 1] * w * dact(zs[lp - 2][:, a])[None, :]
                    if residual[lp - 1]:
                        step = step + xi[lp - 1] * np.eye(n_in)
                    chain = chain @ step
            jacobians.append(np.concatenate(columns, axis=1)[:r])
        jac = np.stack(jacobians)  # (B, r, P)
        out.append(np.einsum("aip,bjp->ijab", jac, jac))
    return out


def residual_dense_ntk(
    widths, act, dact, init, cw, cb, xi, gamma, x, seed, network, lambda_b, lambda_w, readouts
):
    """Per-network NTK of the dense residual network ``network`` of ``seed`` (the weights of
    ``residual_forward(method="dense")``): list over layers of (r, r, B, B), see
    ``residual_ntk_from_parameters``."""
    weights, biases = dense_parameters(widths, init, cw, cb, seed, network)
    return residual_ntk_from_parameters(
        weights, biases, act, dact, x, xi, gamma, lambda_b, lambda_w, readouts
    )
