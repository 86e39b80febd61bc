"""PyTorch (CPU) projected baseline: nnft_fast's exact low-rank law of every layer
(docs/projected-sampler.md; the law is spelled out in bench/numpy_projected.py) written
the way a competent PyTorch user would, float64, a chunk of networks at once:

    gram = S^T S                  torch.bmm, (c, B, B)
    L    = cholesky(gram)         torch.linalg.cholesky_ex (batched); the matrices it
                                  reports singular get R = diag(sqrt(w)) V^T from
                                  torch.linalg.eigh instead (exact at any rank)
    gaussian    z = F L^T,  F = torch.randn(c, n_out, B) sqrt(cw / n_in)
    orthogonal  z = s H[:, :n_out] L^T,  H the (c, max(n_out, n_in), B) Haar frames of
                bench/torch_baseline.py (batched torch.linalg.qr, sign fix)

A layer with n_in <= B draws explicit weights (bench/torch_baseline.py's ``dense_layer``:
as many normals as the projected path). Biases, activations and the [G | Q | GG]
statistics are bench/torch_baseline.py's (``chunk_statistics`` with this module's
``projected_layer``); the vectors go into nnft_fast's ``MomentAccumulator`` as there.
"""

import math

import torch

from .projected import projected_chunk
from .torch_baseline import DTYPE, TorchDenseEnsemble, dense_layer, haar_frames


def eigh_factor(gram):
    """R with R^T R = gram at any rank: diag(sqrt(w)) V^T of gram = V diag(w) V^T."""
    w, v = torch.linalg.eigh(gram)
    return w.clamp_min(0.0).sqrt().unsqueeze(-1) * v.transpose(-1, -2)


def gram_factor(s):
    """R (c, B, B) with R^T R = S^T S for s (c, n_in, B): transposed Cholesky factors,
    ``eigh_factor`` for the singular ones."""
    gram = torch.bmm(s.transpose(-1, -2), s)
    low, info = torch.linalg.cholesky_ex(gram)
    r = low.transpose(-1, -2).clone()
    bad = info != 0
    if bool(bad.any()):
        r[bad] = eigh_factor(gram[bad])
    return r


def projected_layer(generator, s, n_out, init, cw):
    """W s in law for s (c, n_in, B), without forming W: (c, n_out, B)."""
    c, n_in, nb = s.shape
    if n_in <= nb:
        return dense_layer(generator, s, n_out, init, cw)
    r = gram_factor(s)
    if init == "gaussian":
        f = torch.randn(c, n_out, nb, dtype=DTYPE, generator=generator)
        f.mul_(math.sqrt(cw / n_in))
    else:
        f = haar_frames(generator, c, max(n_out, n_in), nb)[:, :n_out]
        f = f * math.sqrt(cw * max(1.0, n_out / n_in))
    return torch.bmm(f, r)


class TorchProjectedEnsemble(TorchDenseEnsemble):
    """Streams projected networks drawn by PyTorch into a ``MomentAccumulator`` (one
    ``torch.Generator`` seeded with ``seed``; chunk default ``projected_chunk``)."""

    name = "torch-projected"
    algorithm = "projected"
    layer = staticmethod(projected_layer)

    def __init__(self, widths, X, *, chunk=None, **kw):
        n_inputs = len(X)
        super().__init__(widths, X, chunk=chunk or projected_chunk(widths, n_inputs), **kw)
