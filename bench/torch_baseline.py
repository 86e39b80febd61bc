"""PyTorch (CPU) dense baseline: what a competent PyTorch user would write.

For a chunk of ``c`` networks at once (float64 throughout) it draws explicit weight
matrices with ``torch.randn`` (Gaussian entries of variance cw/n_in) or Haar-orthogonal
ones by a batched ``torch.linalg.qr`` of a Gaussian (max x min) matrix with Mezzadri's
sign fix (columns of Q times sign(diag R), transposed when n_out < n_in, scaled by
sqrt(cw * max(1, n_out/n_in)); docs/conventions.md#weights), pushes the inputs through with
``torch.bmm``, adds N(0, cb) biases when cb > 0, and reduces every layer's preactivations
z (c x n x B) to nnft_fast's per-network statistics vector (docs/estimators.md,
``nnft_fast.kernels.cpu.moments``):

    [G | Q | GG]   G_ab = (1/n) sum_i z_ia z_ib                (a <= b, pairs)
                   Q_abcd = (1/n) sum_i z_ia z_ib z_ic z_id    (a <= b <= c <= d)
                   GG = G_p G_p'                               (pairs p <= p')

in ``MomentLayout`` order. Q comes from one batched product of the pair products
y_i,p = z_ia z_ib: (y^T y)/n holds every z_a z_b z_c z_d average. The vectors go into an
``nnft_fast.accumulators.MomentAccumulator`` (block sums, flat memory, mergeable), so
``as_ensemble`` gives the same ``Ensemble.two_point`` / ``four_point`` estimates and
jackknife errors as ``nf.sample``. Only the bookkeeping (``bench.dense``) is shared with
nnft_fast; the networks are drawn and pushed through by PyTorch alone.
"""

import math

import torch

from .dense import DenseEnsemble, statistic_tables

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "linear": lambda z: z}
DTYPE = torch.float64


def torch_tables(n_inputs, four_point):
    """``bench.dense.statistic_tables`` as long tensors."""
    return tuple(
        torch.as_tensor(t, dtype=torch.long) for t in statistic_tables(n_inputs, four_point)
    )


def layer_statistics(z, tables, four_point):
    """Per-network [G | Q | GG] (or [G]) of preactivations z (c, n, B) -> (c, n_stat)."""
    pair_a, pair_b, quad_p1, quad_p2, gg_1, gg_2 = tables
    y = z[:, :, pair_a] * z[:, :, pair_b]  # (c, n, P) pair products
    g = y.mean(dim=1)  # (c, P)
    if not four_point:
        return g
    m = torch.bmm(y.transpose(1, 2), y) / z.shape[1]  # (c, P, P): <z_a z_b z_c z_d>
    return torch.cat([g, m[:, quad_p1, quad_p2], g[:, gg_1] * g[:, gg_2]], dim=1)


def gaussian_weights(generator, count, n_out, n_in, cw):
    """``count`` iid Gaussian weight matrices (count, n_out, n_in), variance cw/n_in."""
    w = torch.randn(count, n_out, n_in, dtype=DTYPE, generator=generator)
    return w.mul_(math.sqrt(cw / n_in))


def haar_weights(generator, count, n_out, n_in, cw):
    """``count`` scaled Haar (Stiefel) weight matrices (count, n_out, n_in): batched QR of
    a Gaussian (max x min) matrix with the sign fix, transposed when n_out < n_in."""
    m, k = max(n_out, n_in), min(n_out, n_in)
    q, r = torch.linalg.qr(torch.randn(count, m, k, dtype=DTYPE, generator=generator))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    if n_out < n_in:
        q = q.transpose(-1, -2)
    return q * math.sqrt(cw * max(1.0, n_out / n_in))


@torch.inference_mode()
def chunk_statistics(generator, widths, xt, count, init, cw, cb, activation, four_point, tables):
    """Statistics (count, L, n_stat) float64 NumPy of ``count`` fresh networks.

    xt: inputs as a (n_0, B) float64 tensor; cw, cb: scalars (every layer)."""
    draw = gaussian_weights if init == "gaussian" else haar_weights
    act = ACTIVATIONS[activation]
    s = xt.expand(count, *xt.shape)  # (c, n_0, B)
    out = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        z = torch.bmm(draw(generator, count, n_out, n_in, cw), s)  # (c, n_out, B)
        if cb > 0.0:
            z += math.sqrt(cb) * torch.randn(count, n_out, 1, dtype=DTYPE, generator=generator)
        out.append(layer_statistics(z, tables, four_point))
        s = act(z)
    return torch.stack(out, dim=1).numpy()


class TorchDenseEnsemble(DenseEnsemble):
    """Streams dense networks drawn by PyTorch into a ``MomentAccumulator``.

    Networks are numbered 0, 1, ... in the order drawn (for the block assignment); the
    random stream is one ``torch.Generator`` seeded with ``seed``.
    """

    name = "torch-dense"

    def __init__(self, widths, X, **kw):
        super().__init__(widths, X, **kw)
        self.xt = torch.as_tensor(self.X.T.copy(), dtype=DTYPE)
        self.tables = torch_tables(self.X.shape[0], self.four_point)
        self.generator = torch.Generator().manual_seed(int(self.seed))

    def run(self, n, keep=True):
        """Draw n networks; with keep=False they are drawn and reduced but not counted."""
        for start in range(0, n, self.chunk):
            c = min(self.chunk, n - start)
            stats = chunk_statistics(
                self.generator,
                self.widths,
                self.xt,
                c,
                self.init,
                self.cw,
                self.cb,
                self.activation,
                self.four_point,
                self.tables,
            )
            if keep:
                self.accumulator.add(stats, self.next_network)
                self.next_network += c
        return n


def versions():
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
