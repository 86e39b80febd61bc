"""The benchmark configurations, each defined once, and the seeds of the timed runs.

    R1           n_0 = 64, 8 layers of width 512, B = 4, ReLU, C_W = 2, C_b = 0
                 (docs/performance.md#r1): every script's reference
    NARROW_DEEP  n_0 = 32, 64 layers of width 32, B = 4, ReLU, C_W = 2, C_b = 0
    WIDE         n_0 = 64, 4 layers of width 2048, B = 4, ReLU, C_W = 2, C_b = 0
    NNFT_1HL     single hidden layer (the Halverson-Maiti-Stoner ReLU-net): widths
                 (1, 1000, 1), six scalar inputs x = linspace(-1, 1, 6), C_W = C_b = 1; the
                 output layer's K and same-neuron connected four-point function are the NNFT
                 correlators (Gaussian weights only)

``MATRIX`` is bench.matrix's list. The tiny configs (``TINY``, ``TINY_1HL``, ``GPU_SMOKE``)
only check the scripts' wiring (``--smoke``); their figures mean nothing.

A config's own inputs are N(0, 1) draws of ``np.random.default_rng(X_SEED)``, shape
(B, n_0) (NNFT_1HL: a grid); ``inputs(seed)`` draws them from another seed instead
(bench.gpu, bench.store_overhead and bench.distributed_scaling have always used seeds 1,
0 and 0; the values of the inputs do not change a speed).
"""

from dataclasses import dataclass, replace

import numpy as np

import nnft_fast as nf

X_SEED = 20240601  # the inputs
SAMPLE_SEED = 7  # the networks of the timed runs
TWO_FOUR = ("two_point", "four_point")


@dataclass(frozen=True, eq=False)
class Config:
    """One network shape and its inputs.

    orthogonal: whether bench.matrix runs the orthogonal methods too; check_layers: the
    layers of bench.matrix's agreement check; grid_inputs: inputs linspace(-1, 1, B) of a
    scalar input (n_0 = 1) instead of random ones; x_skip: shapes drawn (and dropped) from
    the input generator first (WIDE's inputs are the second draw of one generator, after
    NARROW_DEEP's, as they always were).
    """

    key: str
    title: str
    widths: tuple
    n_inputs: int
    cw: float = 2.0
    cb: float = 0.0
    activation: str = "relu"
    orthogonal: bool = True
    check_layers: tuple = ()
    grid_inputs: bool = False
    x_skip: tuple = ()

    @property
    def n_layers(self):
        return len(self.widths) - 1

    @property
    def inits(self):
        """The weight laws bench.matrix runs on this config."""
        return ("gaussian", "orthogonal") if self.orthogonal else ("gaussian",)

    def network(self, init="gaussian"):
        return nf.Network(self.widths, self.activation, init, cw=self.cw, cb=self.cb)

    def inputs(self, seed=None):
        """The inputs X, (B, n_0) float64: the config's own (seed None), or N(0, 1) draws
        of a fresh ``default_rng(seed)``."""
        if seed is not None:
            return np.random.default_rng(seed).standard_normal((self.n_inputs, self.widths[0]))
        if self.grid_inputs:
            return np.linspace(-1.0, 1.0, self.n_inputs)[:, None]
        rng = np.random.default_rng(X_SEED)
        for shape in self.x_skip:
            rng.standard_normal(shape)
        return rng.standard_normal((self.n_inputs, self.widths[0]))

    def resized(self, depth=None, width=None, n_inputs=None, key=None):
        """This config with ``depth`` hidden layers of ``width`` and/or B = ``n_inputs``."""
        depth = self.n_layers if depth is None else depth
        width = self.widths[1] if width is None else width
        return replace(
            self,
            key=key or self.key,
            widths=(self.widths[0],) + (width,) * depth,
            n_inputs=self.n_inputs if n_inputs is None else n_inputs,
        )

    def normals_per_network(self, method="projected"):
        """Random normals one network draws: projected sum_l n_l min(n_{l-1}, B), dense
        sum_l n_l n_{l-1}, plus n_l per layer for the biases when C_b > 0."""
        total = 0
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:]):
            total += n_out * (min(n_in, self.n_inputs) if method == "projected" else n_in)
            total += n_out if self.cb > 0 else 0
        return total

    def normals_per_layer(self, method="projected"):
        """(L,) int64: the weight normals of each layer (no biases), as the probes take it."""
        return np.array(
            [
                n_out * (min(n_in, self.n_inputs) if method == "projected" else n_in)
                for n_in, n_out in zip(self.widths[:-1], self.widths[1:])
            ],
            np.int64,
        )

    def describe(self):
        w = self.widths
        hidden = ", ".join(str(n) for n in w[1:])
        if len(w) > 6 and len(set(w[1:])) == 1:
            hidden = f"{len(w) - 1} x {w[1]}"
        return (
            f"{self.title}: n_0 = {w[0]}, layers {hidden}, B = {self.n_inputs}, "
            f"{self.activation}, C_W = {self.cw}, C_b = {self.cb}"
        )


R1 = Config("R1", "R1 (docs/performance.md#r1)", (64,) + (512,) * 8, 4, check_layers=(1, 4, 8))
# Checked up to layer 16 only: with Gaussian weights E[z^4]/3K^2 grows like (1 + 5/32)^(l-1)
# (docs/exact-results.md#deep-relu), ~10^4 at l = 64, so there the four-point (and even K)
# estimates of 10^4 networks are dominated by rare networks and their jackknife errors are
# not trustworthy (a quick run gave |z_pt| ~ 14 at l >= 32 for nnft_fast dense vs
# projected, |z| <= 2.3 with own errors).
NARROW_DEEP = Config(
    "narrow_deep", "narrow-deep", (32,) + (32,) * 64, 4, check_layers=(1, 4, 8, 16)
)
WIDE = Config("wide", "wide", (64,) + (2048,) * 4, 4, check_layers=(1, 2, 4), x_skip=((4, 32),))
NNFT_1HL = Config(
    "nnft_1hl",
    "single-hidden-layer NNFT (ReLU-net, N = 1000)",
    (1, 1000, 1),
    6,
    cw=1.0,
    cb=1.0,
    orthogonal=False,
    check_layers=(1, 2),
    grid_inputs=True,
)
MATRIX = (R1, NARROW_DEEP, WIDE, NNFT_1HL)

# --smoke: tiny shapes of the same kinds, for checking the scripts' wiring only
TINY = Config("tiny", "tiny (wiring check)", (8,) + (16,) * 3, 4, check_layers=(1, 3))
TINY_1HL = Config(
    "tiny_1hl",
    "tiny single-hidden-layer (wiring check)",
    (1, 16, 1),
    6,
    cw=1.0,
    cb=1.0,
    orthogonal=False,
    check_layers=(1, 2),
    grid_inputs=True,
)
GPU_SMOKE = Config(
    "smoke", "GPU smoke test", (5,) + (12,) * 3, 3, cw=1.5, cb=0.1, activation="tanh"
)
