"""λφ⁴ in d = 1 and d = 2 as a deformed cos-net ensemble (docs/fields.md#deformations).

The interacting theory deforms the parameter density of a free cos-net,
P_λ(θ) ∝ P_0(θ) exp(-(λ/4!) Σ_y w_y φ_θ(y)⁴), the sum on the Gauss-Legendre rule of a
box (``nf.Phi4``). The networks are drawn from P_0; ``FieldEnsemble.first_order`` gives
dG/dλ at λ = 0 (covariances with the interaction, exactly unbiased) and
``FieldEnsemble.reweighted`` the correlators at the run's λ (weights exp(-S_int)).

1. The connected four-point function. At large width its first-order derivative is the
   tree-level vertex -Σ_y w_y Π_k G(x_k - y) (``theory.phi4_tree_level`` on the same
   rule); the width adds O(1/N). For a few λ the reweighted slope (G4c_λ - G4c_0) / λ (on
   the same networks, so most of the noise cancels) and the first-order estimate are set
   beside tree level; the slope differs from it by O(λ): (slope - first order) / λ tends
   to (1/2) d²G4c/dλ², at infinite width the one-loop diagrams on the rule (``one_loop``).
2. The locality picture. On the rule's nodes y_a themselves (d = 1, 7 nodes), the quartic
   coupling reconstructed from the correlators, λ_abcd = -G4c . (G⁻¹)^⊗4
   (``theory.quartic_coupling``, the first-order Edgeworth action), is for the deformation
   part d/dλ λ_abcd = w_a δ_abcd: the interaction is local, one φ⁴ per node with its
   weight. The free cos-net at width N has its own coupling, from its O(1/N) connected
   four-point function, and that one is not local (plane-wave features couple all points).

Errors: the first-order estimates carry their jackknife errors; the reweighted slope and
the reconstructed couplings are nonlinear in sums over the same networks, so their errors
are batch means over ``SHARDS`` disjoint sub-ensembles (merged for the values).

Run:  python examples/phi4.py [OUTDIR] [N_NETWORKS]   (default: examples_out, 150000)
"""

import os
import sys

import numpy as np

import nnft_fast as nf
from nnft_fast import theory

WIDTH, MASS = 200, 1.0
COUPLINGS = (0.05, 0.1, 0.2)
SHARDS = 40
SEED = 3

# d = 1: the continuum rule of the box (default nodes); d = 2: a 6 x 6 rule (the
# interaction is defined on it, a lattice regularisation; tree level on the same rule)
SETUPS = {
    1: dict(
        cutoff=4.0,
        box=(-1.0, 1.0),
        nodes=None,
        points=[[-0.6], [0.0], [0.25], [0.6]],
        quadruples=[(1, 1, 1, 1), (1, 1, 2, 2), (0, 1, 2, 3)],
    ),
    2: dict(
        cutoff=3.0,
        box=(-1.0, 1.0),
        nodes=(6, 6),
        points=[[0.0, 0.0], [0.5, 0.0], [0.0, 0.5], [0.5, 0.5]],
        quadruples=[(0, 0, 0, 0), (0, 0, 3, 3), (0, 1, 2, 3)],
    ),
}
LOCAL = dict(cutoff=4.0, box=(-4.0, 4.0), nodes=7, coupling=0.1)


def one_loop(net, points, rule, quadruples):
    """(1/2) d²G4c/dλ² at λ = 0 and infinite width, on the rule's nodes y (weights w):

        sum over the channels (ab|cd), (ac|bd), (ad|bc) of
            (1/2) sum_yz w_y w_z G_ay G_by G_yz² G_cz G_dz           (the bubble)
        + (1/2) G(0) sum_l sum_yz w_y w_z (prod_{k != l} G_ky) G_yz G_zl
                                                  (tree level, one leg with its tadpole),

    the connected diagrams of order λ² of exp(-(λ/4!) sum_y w_y φ_y⁴) (vacuum bubbles
    cancel; no others connect four external points). (T,) at the ``quadruples``."""
    y, w = rule.points, rule.weights
    gx = theory.cosnet_propagator(net, np.linalg.norm(points[:, None] - y[None], axis=-1))
    gyy = theory.cosnet_propagator(net, np.linalg.norm(y[:, None] - y[None], axis=-1))
    g0 = float(theory.cosnet_propagator(net, 0.0))
    out = []
    for q in quadruples:
        a, b, c, d = q
        value = 0.0
        for i, j, k, m in ((a, b, c, d), (a, c, b, d), (a, d, b, c)):
            value += 0.5 * (gx[i] * gx[j] * w) @ gyy**2 @ (gx[k] * gx[m] * w)
        for leg in range(4):
            others = np.prod([gx[q[k]] for k in range(4) if k != leg], axis=0)
            value += 0.5 * g0 * (others * w) @ gyy @ (gx[q[leg]] * w)
        out.append(value)
    return np.array(out)


def _sharded(net, points, n_networks, deformation, **kwargs):
    """SHARDS disjoint ensembles of the same run (networks 0 .. n_networks - 1)."""
    size = max(n_networks // SHARDS, 2)
    return [
        nf.sample(
            net,
            points,
            size,
            seed=SEED,
            first_network=k * size,
            deformation=deformation,
            **kwargs,
        )
        for k in range(SHARDS)
    ]


def _merged(parts):
    whole = parts[0]
    for part in parts[1:]:
        whole = whole.merge(part)
    return whole


def _batch_error(values):
    """Standard error of the mean of the shards' values (axis 0)."""
    values = np.asarray(values)
    return values.std(axis=0, ddof=1) / np.sqrt(len(values))


def four_point_rows(dim, n_networks):
    """For one dimension: tree level, the first-order estimate and, per coupling, the
    reweighted slope (G4c_λ - G4c_0) / λ at the quadruples (values, errors) and its ESS."""
    s = SETUPS[dim]
    net = nf.CosNet(dim, WIDTH, MASS, s["cutoff"], alpha=0.0)
    points = np.asarray(s["points"], dtype=float)
    quads = s["quadruples"]
    tree = theory.phi4_tree_level(net, points, s["box"], quads, nodes=s["nodes"])
    slopes, first, ess = [], None, []
    for coupling in COUPLINGS:
        deformation = nf.Phi4(coupling, s["box"], nodes=s["nodes"])
        parts = _sharded(net, points, n_networks, deformation, quadruples=quads)
        whole = _merged(parts)
        if first is None:  # the first-order sums do not depend on the coupling
            first = whole.first_order.connected_four_point()
            rule = deformation.rule(net)

        def slope(ens, coupling=coupling):
            free = ens.connected_four_point().value
            return (ens.reweighted.connected_four_point().value - free) / coupling

        def curvature(ens, coupling=coupling):
            """(slope - first order) / λ -> (1/2) d²G4c/dλ² at 0: the second order."""
            return (slope(ens) - ens.first_order.connected_four_point().value) / coupling

        slopes.append((slope(whole), _batch_error([slope(p) for p in parts])))
        ess.append(whole.reweighted.effective_sample_size() / whole.n_networks)
    second = (curvature(whole), _batch_error([curvature(p) for p in parts]))
    loop = one_loop(net, points, rule, quads)
    return dict(
        net=net,
        rule=rule,
        quads=quads,
        tree=tree,
        first=first,
        slopes=slopes,
        ess=ess,
        second=second,
        one_loop=loop,
    )


def locality(n_networks):
    """The quartic couplings on the nodes of a 7-node rule (d = 1): d/dλ of the deformed
    ensemble's (from the first-order four-point function) and the free ensemble's own, as
    (value, error) pairs of (B, B, B, B) tensors, with the weights, the exact free coupling
    and the nodes."""
    net = nf.CosNet(1, WIDTH, MASS, LOCAL["cutoff"], alpha=0.0)
    deformation = nf.Phi4(LOCAL["coupling"], LOCAL["box"], nodes=LOCAL["nodes"])
    rule = deformation.rule(net)
    y = rule.points
    g = theory.cosnet_propagator(net, np.abs(y - y.T))  # exact at every width
    parts = _sharded(net, y, n_networks, deformation, observables=("two_point", "four_point"))
    whole = _merged(parts)

    def couplings(ens):
        deformed, _ = theory.quartic_coupling(g, ens.first_order.four_point().value)
        free, _ = theory.quartic_coupling(g, ens.four_point().value)
        return deformed, free

    values = couplings(whole)
    errors = [_batch_error(c) for c in zip(*(couplings(p) for p in parts))]
    b = len(y)
    every = np.array(np.meshgrid(*[np.arange(b)] * 4, indexing="ij")).reshape(4, -1).T
    exact_g4 = theory.cosnet_four_point(net, y, every).reshape((b,) * 4)
    exact_free, _ = theory.quartic_coupling(g, exact_g4)
    return dict(
        net=net,
        rule=rule,
        deformed=(values[0], errors[0]),
        free=(values[1], errors[1]),
        exact_free=exact_free,
    )


def _cell(value, error):
    return f"{value:.4g} ± {error:.2g}"


def _print_four_point(dim, rows):
    net, rule = rows["net"], rows["rule"]
    nodes = [int(n) for n in rule.nodes]
    print(
        f"\nd = {dim}: N = {WIDTH}, m = {MASS:g}, Λ = {net.cutoff:g}, box "
        f"{np.asarray(rule.box).tolist()}, {rule.points.shape[0]} nodes {nodes}"
    )
    print("dG4c/dλ at the quadruples: tree level, first order, reweighted (G4c_λ - G4c_0)/λ")
    header = "| quadruple | tree level | first order (pull) | "
    header += " | ".join(f"λ = {c:g} (pull)" for c in COUPLINGS) + " |"
    print(header)
    print("|---" * (3 + len(COUPLINGS)) + "|")
    first = rows["first"]
    for t, quad in enumerate(rows["quads"]):
        tree = rows["tree"][t]
        cells = [f"{tree:.4g}"]
        for value, error in [(first.value[t], first.error[t])] + [
            (v[t], e[t]) for v, e in rows["slopes"]
        ]:
            cells.append(f"{_cell(value, error)} ({(value - tree) / error:+.1f})")
        print(f"| {quad} | " + " | ".join(cells) + " |")
    print(
        "effective sample size / networks: "
        + ", ".join(f"{e:.4f} (λ = {c:g})" for c, e in zip(COUPLINGS, rows["ess"]))
    )
    value, error = rows["second"]
    print(
        f"second order, (slope at λ = {COUPLINGS[-1]:g} - first order) / λ on the same networks"
        " (one loop at N = ∞, pull): "
        + ", ".join(
            f"{_cell(v, e)} ({x:.4g}, {(v - x) / e:+.1f})"
            for v, e, x in zip(value, error, rows["one_loop"])
        )
    )


def _diagonal_mask(b):
    i = np.arange(b)
    mask = np.zeros((b,) * 4, dtype=bool)
    mask[i, i, i, i] = True
    return mask


def _print_locality(loc):
    rule = loc["rule"]
    w = rule.weights
    b = w.size
    (dv, de), (fv, fe) = loc["deformed"], loc["free"]
    diag = _diagonal_mask(b)
    i = np.arange(b)
    print(
        f"\nLocality on the {b} nodes of {np.asarray(rule.box).tolist()} (d = 1, N = {WIDTH},"
        f" Λ = {loc['net'].cutoff:g}): reconstructed quartic couplings λ_abcd"
    )
    print(
        "| node y_a | weight w_a | dλ_aaaa/dλ (deformation) | λ_aaaa (free, N = "
        f"{WIDTH}) | exact free |"
    )
    print("|---|---|---|---|---|")
    for a in range(b):
        print(
            f"| {rule.points[a, 0]:+.3f} | {w[a]:.4f} | {_cell(dv[a, a, a, a], de[a, a, a, a])} | "
            f"{_cell(fv[a, a, a, a], fe[a, a, a, a])} | {loc['exact_free'][a, a, a, a]:.4g} |"
        )
    pull_diag = (dv[i, i, i, i] - w) / de[i, i, i, i]
    pull_off = dv[~diag] / de[~diag]
    print(
        f"deformation: (dλ_aaaa/dλ - w_a)/error: rms {np.sqrt(np.mean(pull_diag**2)):.2f}, "
        f"max |.| {np.abs(pull_diag).max():.2f}; the {b**4 - b} other entries / error: rms "
        f"{np.sqrt(np.mean(pull_off**2)):.2f}, max |.| {np.abs(pull_off).max():.2f}; "
        f"max |off-diagonal| {np.abs(dv[~diag]).max():.3g} against min w_a {w.min():.3g}"
    )
    pull_free = (fv - loc["exact_free"]) / fe
    off_free = np.abs(loc["exact_free"][~diag])
    print(
        f"free coupling: measured against exact, pulls rms {np.sqrt(np.mean(pull_free**2)):.2f};"
        f" exact off-diagonal max |λ| {off_free.max():.3g}, against the diagonal's "
        f"{np.abs(loc['exact_free'][diag]).max():.3g}: not local"
    )


def main(outdir="examples_out", n_networks=150_000):
    os.makedirs(outdir, exist_ok=True)
    rows = {dim: four_point_rows(dim, n_networks) for dim in SETUPS}
    for dim, r in rows.items():
        _print_four_point(dim, r)
    loc = locality(n_networks)
    _print_locality(loc)
    _plot(outdir, rows, loc)


def _aabb(tensor):
    i = np.arange(tensor.shape[0])
    return tensor[i[:, None], i[:, None], i[None, :], i[None, :]]


def _plot(outdir, rows, loc):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no figure)")
        return
    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    for ax, (dim, r) in zip(axes[0], rows.items()):
        for t, quad in enumerate(r["quads"]):
            tree = r["tree"][t]
            values = [r["first"].value[t]] + [v[t] for v, _ in r["slopes"]]
            errors = [r["first"].error[t]] + [e[t] for _, e in r["slopes"]]
            line = ax.errorbar(
                np.array([0.0, *COUPLINGS]) + 0.003 * (t - 1),
                np.array(values) / tree,
                np.array(errors) / abs(tree),
                fmt="o",
                ms=4,
                capsize=2,
                label=f"{quad}",
            )
            lam = np.array([0.0, COUPLINGS[-1]])
            ax.plot(lam, 1.0 + lam * r["one_loop"][t] / tree, "--", color=line[0].get_color())
        ax.axhline(1.0, color="k", lw=0.8)
        ax.plot([], [], "k--", label="tree + λ · one loop (N = ∞)")
        ax.set(
            xlabel="λ  (0: first order)",
            ylabel="(G4c_λ − G4c_0) / λ  ÷  tree level",
            title=f"d = {dim}, N = {WIDTH}: reweighted slope / tree level",
        )
        ax.text(
            0.02,
            0.03,
            "errors correlated across λ (same networks)",
            transform=ax.transAxes,
            fontsize=8,
        )
        ax.legend(title="quadruple", fontsize=8)
    rule = loc["rule"]
    deformed = _aabb(loc["deformed"][0])
    free = _aabb(loc["free"][0])
    labels = [f"{y:+.1f}" for y in rule.points[:, 0]]
    for ax, data, title in (
        (axes[1, 0], deformed, "deformed ensemble: ∂λ_aabb/∂λ  (diagonal ≈ w_a)"),
        (axes[1, 1], free, f"free cos-net, N = {WIDTH}: its own λ_aabb"),
    ):
        scale = np.abs(data).max()
        image = ax.imshow(data, cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set(xlabel="node y_b", ylabel="node y_a", title=title)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    path = os.path.join(outdir, "phi4.png")
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["examples_out"]), *(int(a) for a in sys.argv[2:3]))
