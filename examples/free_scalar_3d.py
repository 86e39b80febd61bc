"""A free massive scalar in d = 3 as a cos-net ensemble (docs/fields.md).

1. G(r) on a grid against the exact cut-off propagator (log scale).
2. The finite-width variance of the two-point estimator at large separation, for alpha = -1
   (uniform momenta, amplitudes ~ P^(1/2), arXiv:2112.04527) against alpha = 0 (momenta
   drawn with the propagator, amplitudes constant in |w|, arXiv:2604.27050), at equal width
   and ensemble size, for both amplitude laws. One network's estimate of G(r) is
   phi(0) phi(r); its variance is

       sigma^2(r) = G(0)^2 + G(r)^2 + G4c(0, 0, r, r),

   the infinite-width (Gaussian) value plus the connected four-point function, the
   finite-width excess, exactly (c4 / 2)(H(2r) + 2 H(0)) - G(0)^2 - 2 G(r)^2 over N. Both
   are measured (jackknife errors) and set beside their exact values.

Run:  python examples/free_scalar_3d.py [OUTDIR] [N_NETWORKS]   (default: examples_out, 400000)
"""

import os
import sys

import numpy as np

import nnft_fast as nf
from nnft_fast import theory

MASS, CUTOFF, WIDTH = 1.0, 10.0, 64
SEPARATIONS = np.array([0.5, 1.0, 2.0, 3.0, 4.0])  # in units of 1/m


def propagator_on_grid(n_networks, seed=1):
    """(r, measured G(r), exact G(r)) on a 5^3 grid of spacing 0.5 / m."""
    net = nf.CosNet(3, WIDTH, MASS, CUTOFF, alpha=0.0)
    points = nf.grid_points((5, 5, 5), spacing=0.5)
    ens = nf.sample(net, points, n_networks, seed=seed)
    r, g_r = ens.two_point_by_separation()
    return r, g_r, theory.cosnet_propagator(net, r)


def variance_at_separations(alpha, amplitude, n_networks, seed=2):
    """(sigma^2(r) measured, exact; N G4c(0, 0, r, r) measured, exact) for the points 0 and
    r e_1 at every r of SEPARATIONS (Estimates of shape (R,) and arrays)."""
    net = nf.CosNet(3, WIDTH, MASS, CUTOFF, alpha=alpha, amplitude=amplitude)
    points = np.zeros((SEPARATIONS.size + 1, 3))
    points[1:, 0] = SEPARATIONS
    ens = nf.sample(net, points, n_networks, seed=seed)
    far = np.arange(1, SEPARATIONS.size + 1)
    variance = ens.estimate(
        1, lambda m: m.same_raw[..., 0, 0, far, far] - m.two_point[..., 0, far] ** 2
    )
    excess = ens.estimate(1, lambda m: WIDTH * m.same_connected[..., 0, 0, far, far])
    g = theory.cosnet_two_point(net, points)
    g4 = theory.cosnet_four_point(net, points, [(0, 0, k, k) for k in far])
    exact_variance = g[0, 0] * g[far, far] + g[0, far] ** 2 + g4
    return variance, exact_variance, excess, WIDTH * g4


def _cells(estimate, exact):
    return [
        f"{v:.4g} ± {e:.2g} ({x:.4g})" for v, e, x in zip(estimate.value, estimate.error, exact)
    ]


def main(outdir="examples_out", n_networks=400_000):
    os.makedirs(outdir, exist_ok=True)
    r, g_r, g_exact = propagator_on_grid(max(n_networks // 20, 1000))
    z = g_r.zscore(g_exact)
    print(f"G(r) on a 5^3 grid, N = {WIDTH}: {r.size} separations, max |z| = {np.abs(z).max():.2f}")
    rows = [
        (alpha, amplitude, *variance_at_separations(alpha, amplitude, n_networks))
        for amplitude in ("gaussian", "constant")
        for alpha in (-1.0, 0.0)
    ]
    header = "| alpha | amplitude | " + " | ".join(f"r = {s:g}" for s in SEPARATIONS) + " |"
    rule = "|---|---|" + "---|" * SEPARATIONS.size
    for title, value, exact in (
        ("sigma^2(r) = Var[phi(0) phi(r)]", 2, 3),
        ("finite-width excess N G4c(0, 0, r, r)", 4, 5),
    ):
        print(f"\n{title}, N = {WIDTH}, {n_networks} networks each: measured ± error (exact)")
        print(header)
        print(rule)
        for row in rows:
            print(f"| {row[0]:g} | {row[1]} | " + " | ".join(_cells(row[value], row[exact])) + " |")
    print()
    for amplitude in ("gaussian", "constant"):
        (v1, x1), (v0, x0) = [(row[2], row[3]) for row in rows if row[1] == amplitude]
        ratio = v1.value[-1] / v0.value[-1]
        error = ratio * np.hypot(v1.error[-1] / v1.value[-1], v0.error[-1] / v0.value[-1])
        print(
            f"{amplitude} amplitudes: sigma^2(alpha=-1) / sigma^2(alpha=0) at r = "
            f"{SEPARATIONS[-1]:g}: {ratio:.3f} ± {error:.3f} (exact {x1[-1] / x0[-1]:.3f})"
        )
    _plot(outdir, r, g_r, g_exact, rows)


def _plot(outdir, r, g_r, g_exact, rows):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no figure)")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.errorbar(r, np.abs(g_r.value), g_r.error, fmt="o", ms=3, label="measured |G(r)|")
    left.plot(r, np.abs(g_exact), "k-", lw=1, label="exact cut-off propagator")
    left.set_yscale("log")
    left.set(xlabel="r (1/m)", ylabel="|G(r)|", title=f"Free scalar, d = 3, N = {WIDTH}")
    left.legend()
    for alpha, amplitude, _, _, excess, exact in rows:
        line = right.errorbar(
            SEPARATIONS,
            excess.value,
            excess.error,
            fmt="o",
            ms=3,
            label=f"α = {alpha:g}, {amplitude}",
        )
        right.plot(SEPARATIONS, exact, "-", lw=1, color=line[0].get_color())
    right.axhline(0.0, color="0.6", lw=0.8)
    right.set(
        xlabel="r (1/m)",
        ylabel="N · G4c(0, 0, r, r)",
        title="Finite-width excess of Var[φ(0)φ(r)] (lines: exact)",
    )
    right.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(outdir, "free_scalar_3d.png")
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["examples_out"]), *(int(a) for a in sys.argv[2:3]))
