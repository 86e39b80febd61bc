"""The agreement check: z-scores of the statistics of two methods, before any timing is
believed.

``compare(a, b, layers)`` takes two ``nf.Ensemble`` (nnft_fast's own, or a baseline's
block sums wrapped as one: ``bench.dense``) and compares, at each layer, the unique
entries of K and, where both hold four-point statistics, of the distinct-neuron
(layers of more than one neuron) and same-neuron connected four-point functions, with
the project's jackknife errors (``Ensemble.two_point`` / ``four_point``). Two z-scores,
both with a tiny floor rel_floor * |value| added to the error (K at layer 1 is
deterministic per network for orthogonal weights with n_1 >= n_0; without the floor
rounding would be divided by rounding):

    z     = (a - b) / sqrt(err_a^2 + err_b^2), each side's own jackknife error;
    z_p   = the same with the error of the larger ensemble (N_big) standing in for both:
            err_small^2 := err_big^2 N_big / N_small. Under the null hypothesis (same law,
            same estimator) this is the right variance, and unlike the small ensemble's own
            jackknife it is not correlated with the small ensemble's estimate: with a few
            dozen networks a connected four-point function is essentially a sample
            covariance, whose jackknife error shrinks exactly when the estimate fluctuates
            low, which makes z heavy-tailed.

z_p is then mapped through Student's t with (non-empty blocks of the larger ensemble - 1)
degrees of freedom to the normal quantile of the same two-sided p-value; that z_pt is
what the scripts' verdicts use (bench.compare: max |z_pt| < 4.5; bench.matrix: < 5).
"""

import numpy as np

REL_FLOOR = 1e-9


def unique_indices(nb):
    """Index tuples of the unique entries of K (a <= b), of the distinct-neuron four-point
    function (pairs p <= p') and of the same-neuron one (a <= b <= c <= d), B = nb."""
    pairs = [(a, b) for a in range(nb) for b in range(a, nb)]
    k_idx = tuple(np.array(v) for v in zip(*pairs))
    quad_d = [p + q for i, p in enumerate(pairs) for q in pairs[i:]]
    d_idx = tuple(np.array(v) for v in zip(*quad_d))
    quad_s = [
        (a, b, c, d)
        for a in range(nb)
        for b in range(a, nb)
        for c in range(b, nb)
        for d in range(c, nb)
    ]
    s_idx = tuple(np.array(v) for v in zip(*quad_s))
    return {"K": k_idx, "C_distinct": d_idx, "C_same": s_idx}


def layer_estimates(ens, layer, four_point):
    """{name: (value, error)} of K (and the connected four-point functions) at ``layer``."""
    out = {"K": ens.two_point(layer)}
    if four_point:
        if ens.accumulator.neurons[layer - 1] > 1:
            out["C_distinct"] = ens.four_point(layer, neurons="distinct")
        out["C_same"] = ens.four_point(layer, neurons="same")
    return {k: (v.value, v.error) for k, v in out.items()}


def z_own(va, ea, vb, eb, rel_floor=REL_FLOOR):
    """z with each side's own error (and the floor)."""
    floor2 = (rel_floor * np.maximum(np.abs(va), np.abs(vb))) ** 2 + 1e-300
    return (va - vb) / np.sqrt(ea**2 + eb**2 + floor2)


def z_pooled(va, ea, na, vb, eb, nb, dof=None, rel_floor=REL_FLOOR):
    """z_p (the larger ensemble's error for both sides), or z_pt when ``dof`` is given."""
    from scipy import stats as sps

    floor2 = (rel_floor * np.maximum(np.abs(va), np.abs(vb))) ** 2 + 1e-300
    e_big = ea if na >= nb else eb
    zp = (va - vb) / np.sqrt(e_big**2 * (1.0 + max(na, nb) / min(na, nb)) + floor2)
    if dof is None:
        return zp
    return np.sign(zp) * sps.norm.isf(np.clip(sps.t.sf(np.abs(zp), dof), 1e-300, 0.5))


def compare(a, b, layers=None):
    """{name: {n, max_abs_z, max_abs_z_pt, rms_z_pt, n_abs_z_pt_gt_3,
    max_abs_z_pt_per_layer}} for ensembles ``a``, ``b`` at ``layers`` (default all)."""
    layers = tuple(layers or range(1, a.n_layers + 1))
    idx = unique_indices(a.inputs.shape[0])
    na, nb = a.n_networks, b.n_networks
    big = a if na >= nb else b
    dof = int(np.count_nonzero(big.accumulator.block_counts)) - 1
    four = a.has_four_point and b.has_four_point
    found = {}
    for layer in layers:
        ea, eb = layer_estimates(a, layer, four), layer_estimates(b, layer, four)
        for name in ea:
            va, sa = (t[idx[name]] for t in ea[name])
            vb, sb = (t[idx[name]] for t in eb[name])
            z = z_own(va, sa, vb, sb)
            zpt = z_pooled(va, sa, na, vb, sb, nb, dof)
            found.setdefault(name, []).append((z, zpt))
    out = {}
    for name, per_layer in found.items():
        z = np.concatenate([z for z, _ in per_layer])
        zpt = np.concatenate([zpt for _, zpt in per_layer])
        out[name] = {
            "n": int(z.size),
            "max_abs_z": float(np.nanmax(np.abs(z))),
            "max_abs_z_pt": float(np.nanmax(np.abs(zpt))),
            "rms_z_pt": float(np.sqrt(np.nanmean(zpt**2))),
            "n_abs_z_pt_gt_3": int(np.sum(np.abs(zpt) > 3)),
            "max_abs_z_pt_per_layer": [float(np.nanmax(np.abs(p))) for _, p in per_layer],
        }
    return out


def worst(result, key="max_abs_z_pt"):
    """The largest ``key`` over the quantities of a ``compare`` result."""
    return max(r[key] for r in result.values())
