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


def haar_frames(generator, count, m, k):
    """``count`` Haar frames (count, m, k), m >= k: batched QR of a Gaussian with the sign
    fix (columns of Q times sign(diag R))."""
    q, r = torch.linalg.qr(torch.randn(count, m, k, dtype=DTYPE, generator=generator))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def haar_weights(generator, count, n_out, n_in, cw):
    """``count`` scaled Haar (Stiefel) weight matrices (count, n_out, n_in): a Haar frame of
    (max x min), transposed when n_out < n_in."""
    q = haar_frames(generator, count, max(n_out, n_in), min(n_out, n_in))
    if n_out < n_in:
        q = q.transpose(-1, -2)
    return q * math.sqrt(cw * max(1.0, n_out / n_in))


def dense_layer(generator, s, n_out, init, cw):
    """W s (c, n_out, B) with explicit weights W (c, n_out, n_in) for s (c, n_in, B)."""
    draw = gaussian_weights if init == "gaussian" else haar_weights
    return torch.bmm(draw(generator, s.shape[0], n_out, s.shape[1], cw), s)


@torch.inference_mode()
def chunk_statistics(
    generator, widths, xt, count, init, cw, cb, activation, four_point, tables, layer=dense_layer
):
    """Statistics (count, L, n_stat) float64 NumPy of ``count`` fresh networks.

    xt: inputs as a (n_0, B) float64 tensor; cw, cb: scalars (every layer); ``layer``:
    (generator, s, n_out, init, cw) -> W s in law (``dense_layer``, or
    bench/torch_projected.py's ``projected_layer``)."""
    act = ACTIVATIONS[activation]
    s = xt.expand(count, *xt.shape)  # (c, n_0, B)
    out = []
    for n_out in widths[1:]:
        z = layer(generator, s, n_out, init, cw)  # (c, n_out, B)
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
    layer = staticmethod(dense_layer)

    def __init__(self, widths, X, **kw):
        super().__init__(widths, X, **kw)
        self.xt = torch.as_tensor(self.X.T.copy(), dtype=DTYPE)
        self.tables = torch_tables(self.X.shape[0], self.four_point)
        self.generator = torch.Generator().manual_seed(int(self.seed))

    def run(self, n, keep=True):
        """Draw n networks; with keep=False they are drawn and reduced but not counted."""
        args = (*self.law, self.tables, self.layer)
        return self.run_chunks(
            n, keep, lambda c: chunk_statistics(self.generator, self.widths, self.xt, c, *args)
        )


def set_threads(threads):
    """PyTorch's intra-op threads: the same count as nnft_fast's Numba threads."""
    torch.set_num_threads(int(threads))


def versions():
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
