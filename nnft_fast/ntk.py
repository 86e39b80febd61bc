"""NTK accumulators and the estimators of its mean and O(1/n) fluctuations.

Per network and layer the kernel ``kernels.cpu.ntk.ntk_statistics`` gives, over readout
neurons i < r and ordered pairs i != j of readouts (n = n_{l-1}, n_l neurons in the layer,
B inputs, Z_k = z_k z_k^T):
    h_diag = <H_ii>, h_off = <H_ij>, A* = <H_ii (x) H_jj>, B* = <H_ij (x) H_ij>,
    F* = <H_ij,ab z_i,c z_j,d>, hh = h_diag (x) h_diag, hG = h_diag (x) G,
and, over the r (n_l - 1) pairs (i < r, j != i) of a readout and ANY other neuron j < n_l,
    D* = <H_ii,ab Z_j,cd>,   G = <Z_j> = (sum_k Z_k - G_r) / (n_l - 1),  G_r = <Z_i>_(i<r)
(G weighs the z_j z_j^T with exactly the pairs of D*, H_ii replaced by 1).
From totals T over N networks (Roberts-Yaida normalisation, docs/conventions.md#ntk: the same
delta-structures and 1/n_{l-1} as the vertex V):
    Theta              = T_hdiag / N                      E[H_ii]
    Theta_off          = T_hoff / N                       E[H_ij], i != j (0 in law)
    (Theta Theta)_abcd = (T_h,ab T_h,cd - T_hh) / (N (N-1))   unbiased, likewise Theta K
    A_abcd             = n (T_A*/N - (Theta Theta)_abcd)
    B_acbd             = n T_B*,abcd / N        (E[dH_{i1i2} dH_{i3i4}] has d13 d24 B_1324)
    D_abcd             = n (T_D*/N - (Theta K)_abcd),  (Theta K) = (T_h T_G - T_hG)/(N (N-1))
    F_acbd             = n T_F*,abcd / N        (E[dH_{i1i2} z_i3 z_i4] has d13 d24 F_1324)
D is exactly unbiased: E[H_ii Z_j] = Theta K + D/n for every i != j (neurons are
exchangeable), E[G] = K, and h_diag, G of different networks are independent. It is also
the low-variance choice. With H_ii = Theta + dH_i, Z_j = K + dZ_j,
    D* = Theta K + Theta dG + K dh + <dH_i dZ_j>,   dG = G - K, dh = h_diag - Theta,
and (Theta K) carries the same first-order terms Theta mean(dG) + K mean(dh): they cancel
and only the O(1/sqrt n) products dH dZ, averaged over r (n_l - 1) pairs, are left.
Equivalently (the per-network form the kernel uses)
    D / n = Cov_N(h_diag, G) - mean_e[(1/(r (n_l - 1))) sum_{i<r} (H_ii - h_diag) (x) Z_i],
Cov_N the unbiased (N - 1) covariance over networks. The former D* paired H_ii with the
other readouts' Z_j only, while G averaged all n_l neurons, so an O(1) noise
Theta (G_r - G) was left and multiplied by n. Jackknife errors on the same 2000 networks
(tests/test_ntk.py::test_d_estimator_gain: tanh 3-48-48-48, projected, r = 2, seed 6),
former -> now: D^(1) (= 0 exactly) 0.11 -> 5e-15, D^(2) 1.36 -> 0.032 (42x), D^(3)
1.91 -> 0.070 (27x); on 3-10-7-12 tanh, r = 3: 7.6x and 3.7x at layers 2 and 3. The
former statistics (older stores) still give an unbiased D.
F has no product of means to subtract (E[H_ij] = E[z_i z_j] = 0 for i != j), so F* is
kept. The exactly zero-mean controls available do not help: sign-flip-odd statistics are
uncorrelated with F*, and readout-minus-other-neuron differences of Z explained at most
36% of its variance where measured, and only with a fitted coefficient (which is no
longer unbiased).
Standard errors: delete-one-block jackknife, as for the moments; networks whose NTK
statistics go non-finite are counted per layer likewise (``NTKAccumulator.nonfinite``).
"""

from dataclasses import dataclass

import numpy as np

from .accumulators import DEFAULT_BLOCKS, BlockAccumulator


@dataclass
class LayerNTK:
    """Full-tensor NTK estimates of one layer; arrays may carry leading replica axes."""

    theta: np.ndarray
    theta_off: np.ndarray
    A: np.ndarray
    B: np.ndarray
    D: np.ndarray
    F: np.ndarray


def ntk_statistics_size(n_inputs):
    """Length of the per-network NTK statistics vector (``kernels.cpu.ntk``)."""
    return 3 * n_inputs**2 + 6 * n_inputs**4


def ntk_estimates(totals, count, n_inputs, fan_in):
    """Estimators of the module docstring from totals (..., n_stat) and counts (...)."""
    nb = n_inputs
    b2, b4 = nb * nb, nb**4
    n_count = np.asarray(count, dtype=np.float64)[..., None, None]
    n4 = n_count[..., None, None]
    lead = totals.shape[:-1]

    def matrix(start):
        return totals[..., start : start + b2].reshape(lead + (nb, nb))

    def tensor(k):
        start = 3 * b2 + k * b4
        return totals[..., start : start + b4].reshape(lead + (nb,) * 4)

    t_h, t_off, t_g = matrix(0), matrix(b2), matrix(2 * b2)
    theta_theta = (np.einsum("...ab,...cd->...abcd", t_h, t_h) - tensor(4)) / (n4 * (n4 - 1.0))
    theta_k = (np.einsum("...ab,...cd->...abcd", t_h, t_g) - tensor(5)) / (n4 * (n4 - 1.0))
    swap = "...abcd->...acbd"
    return LayerNTK(
        theta=t_h / n_count,
        theta_off=t_off / n_count,
        A=fan_in * (tensor(0) / n4 - theta_theta),
        B=fan_in * np.einsum(swap, tensor(1) / n4),
        D=fan_in * (tensor(2) / n4 - theta_k),
        F=fan_in * np.einsum(swap, tensor(3) / n4),
    )


class NTKAccumulator(BlockAccumulator):
    """Per-layer block sums of the NTK statistics of one architecture, input set,
    readout count and learning rates."""

    def __init__(self, widths, n_inputs, n_readouts, lambda_b, lambda_w, n_blocks=DEFAULT_BLOCKS):
        self.widths = tuple(int(w) for w in widths)
        self.n_inputs = int(n_inputs)
        self.n_readouts = int(n_readouts)
        self.lambda_b = float(lambda_b)
        self.lambda_w = float(lambda_w)
        super().__init__(len(self.widths) - 1, ntk_statistics_size(self.n_inputs), n_blocks)

    def compatible(self, other):
        return (
            isinstance(other, NTKAccumulator)
            and self.widths == other.widths
            and self.n_inputs == other.n_inputs
            and self.n_readouts == other.n_readouts
            and self.lambda_b == other.lambda_b
            and self.lambda_w == other.lambda_w
            and self.n_blocks == other.n_blocks
        )

    def merge(self, other):
        """New accumulator holding both (disjoint sets of networks)."""
        return self._add_sums(
            other,
            NTKAccumulator(
                self.widths,
                self.n_inputs,
                self.n_readouts,
                self.lambda_b,
                self.lambda_w,
                self.n_blocks,
            ),
        )

    def layer_with_jackknife(self, layer):
        """(estimate over all networks, delete-one-block replicas), both LayerNTK."""
        total, n_total, left_sums, left_counts = self._layer_totals(layer - 1)
        fan_in = self.widths[layer - 1]
        return (
            ntk_estimates(total, n_total, self.n_inputs, fan_in),
            ntk_estimates(left_sums, left_counts, self.n_inputs, fan_in),
        )


@dataclass(frozen=True)
class NTKFluctuations:
    """Roberts-Yaida NTK fluctuations of one layer, each an ``nf.Estimate`` (B,B,B,B):
    A, B (NTK-NTK) and D, F (NTK-preactivation)."""

    A: object
    B: object
    D: object
    F: object
