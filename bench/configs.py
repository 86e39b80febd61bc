"""The benchmark configurations, each defined once, and the seeds of the timed runs.

    R1           n_0 = 64, 8 layers of width 512, B = 4, ReLU, C_W = 2, C_b = 0
                 (docs/performance.md#r1): every script's reference
    NARROW_DEEP  n_0 = 32, 64 layers of width 32, B = 4, ReLU, C_W = 2, C_b = 0
    WIDE         n_0 = 64, 4 layers of width 2048, B = 4, ReLU, C_W = 2, C_b = 0
    NNFT_1HL     single hidden layer (the Halverson-Maiti-Stoner ReLU-net): widths
                 (1, 1000, 1), six scalar inputs x = linspace(-1, 1, 6), C_W = C_b = 1; the
                 output layer's K and same-neuron connected four-point function are the NNFT
                 correlators (Gaussian weights only)
    F1, F2       cos-net fields (bench.fields, ``FieldConfig``): d = 3, N = 1000, m = 1,
                 Lambda = 10, alpha = 0, Gaussian amplitudes, points uniform in a box of
                 side 4/m; F1 B = 256, two-point only; F2 B = 16, two- and four-point

``MATRIX`` is bench.matrix's list, ``FIELDS`` bench.fields'. The tiny configs (``TINY``,
``TINY_1HL``, ``GPU_SMOKE``, ``TINY_F1``, ``TINY_F2``)
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


# --------------------------------------------------------------------------------------
# Cos-net fields (bench.fields)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FieldConfig:
    """A cos-net field config: ``nf.CosNet(dim, width, mass, cutoff, alpha, amplitude)`` on
    B points uniform in the box [-box/2m, box/2m)^d (draws of ``default_rng(X_SEED)``)."""

    key: str
    title: str
    dim: int
    width: int
    n_points: int
    observables: tuple = ("two_point",)
    mass: float = 1.0
    cutoff: float = 10.0
    alpha: float = 0.0
    amplitude: str = "gaussian"
    box: float = 4.0

    def network(self):
        return nf.CosNet(
            self.dim, self.width, self.mass, self.cutoff, alpha=self.alpha, amplitude=self.amplitude
        )

    def inputs(self):
        """The points X, (B, d) float64."""
        half = 0.5 * self.box / self.mass
        return np.random.default_rng(X_SEED).uniform(-half, half, (self.n_points, self.dim))

    @property
    def cosines_per_network(self):
        return self.width * self.n_points

    def resized(self, n_points, key=None):
        return replace(self, key=key or f"{self.key}_B{n_points}", n_points=n_points)

    def describe(self):
        return (
            f"{self.title}: d = {self.dim}, N = {self.width}, B = {self.n_points} points in a "
            f"box of side {self.box / self.mass:g}, m = {self.mass:g}, Lambda = {self.cutoff:g}, "
            f"alpha = {self.alpha:g}, {self.amplitude} amplitudes, {' + '.join(self.observables)}"
        )


F1 = FieldConfig("F1", "F1 cos-net field, many points", 3, 1000, 256)
F2 = FieldConfig("F2", "F2 cos-net field, four-point", 3, 1000, 16, TWO_FOUR)
FIELDS = (F1, F2)
TINY_F1 = FieldConfig("tiny_F1", "tiny F1 (wiring check)", 3, 64, 16)
TINY_F2 = FieldConfig("tiny_F2", "tiny F2 (wiring check)", 3, 64, 4, TWO_FOUR)
