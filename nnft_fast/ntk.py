"""NTK accumulators and the estimators of its mean and O(1/n) fluctuations.

Per network and layer the kernel ``kernels.cpu.ntk.ntk_statistics`` gives, over readout
neurons i and ordered pairs i != j (n = n_{l-1}, B inputs):
    h_diag = <H_ii>, h_off = <H_ij>, G = (1/n_l) z z^T, A* = <H_ii (x) H_jj>,
    B* = <H_ij (x) H_ij>, D* = <H_ii,ab z_j,c z_j,d>, F* = <H_ij,ab z_i,c z_j,d>,
    hh = h_diag (x) h_diag, hG = h_diag (x) G.
From totals T over N networks (Roberts-Yaida normalisation, docs/conventions.md#ntk: the same
delta-structures and 1/n_{l-1} as the vertex V):
    Theta              = T_hdiag / N                      E[H_ii]
    Theta_off          = T_hoff / N                       E[H_ij], i != j (0 in law)
    (Theta Theta)_abcd = (T_h,ab T_h,cd - T_hh) / (N (N-1))   unbiased, likewise Theta K
    A_abcd             = n (T_A*/N - (Theta Theta)_abcd)
    B_acbd             = n T_B*,abcd / N        (E[dH_{i1i2} dH_{i3i4}] has d13 d24 B_1324)
    D_abcd             = n (T_D*/N - (Theta K)_abcd)
    F_acbd             = n T_F*,abcd / N        (E[dH_{i1i2} z_i3 z_i4] has d13 d24 F_1324)
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
