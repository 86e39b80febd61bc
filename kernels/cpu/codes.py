"""The integer codes the kernels switch on (CPU and CUDA alike), defined once.

Weight law (``init_code``), forward method (``method_code``) and built-in activation
(``act_code``) reach the kernels as small integers; ``nnft_fast`` maps names to them with
the dictionaries below, and the kernels compare against the named constants (Numba
freezes module-level integers at compile time, so a named code costs nothing).
"""

# Weight laws (kernels.cpu.forward: entry variance cw_l / n_{l-1} for all three).
INIT_GAUSSIAN = 0
INIT_ORTHOGONAL = 1
INIT_UNIFORM = 2
INIT_CODES = {"gaussian": INIT_GAUSSIAN, "orthogonal": INIT_ORTHOGONAL, "uniform": INIT_UNIFORM}

# Forward methods: explicit weights, or the exact projected sampler (docs/projected-sampler.md).
METHOD_DENSE = 0
METHOD_PROJECTED = 1
METHOD_CODES = {"dense": METHOD_DENSE, "projected": METHOD_PROJECTED}

# Built-in activations (kernels.cpu.activations.activate): code = position in the names.
ACTIVATION_NAMES = (
    "linear",
    "relu",
    "leaky_relu",
    "tanh",
    "erf",
    "gelu",
    "sigmoid",
    "softplus",
    "swish",
    "sin",
    "cos",
    "exp",
)
(
    ACT_LINEAR,
    ACT_RELU,
    ACT_LEAKY_RELU,
    ACT_TANH,
    ACT_ERF,
    ACT_GELU,
    ACT_SIGMOID,
    ACT_SOFTPLUS,
    ACT_SWISH,
    ACT_SIN,
    ACT_COS,
    ACT_EXP,
) = range(len(ACTIVATION_NAMES))

# Cos-net fields (kernels.cpu.field): how |w| is drawn (nnft_fast.cosnet.RadialSampler) ...
RADIAL_TABLE = 0  # Newton on a table of the CDF with Gauss-Legendre sub-integrals (any d, alpha)
RADIAL_UNIFORM = 1  # alpha = -1: k = Lambda u^(1/d)
RADIAL_D1_ALPHA0 = 2  # d = 1, alpha = 0: k = m tan(u arctan(Lambda / m))
RADIAL_D2 = 3  # d = 2, any alpha: closed-form inverse
RADIAL_D3_ALPHA0 = 4  # d = 3, alpha = 0: Newton on F(k) = k - m arctan(k / m)
RADIAL_GAUSSIAN = 5  # Gaussian momenta w ~ N(0, I / length^2)
# ... and the law of the amplitudes given |w|.
AMPLITUDE_GAUSSIAN = 0
AMPLITUDE_CONSTANT = 1
AMPLITUDE_CODES = {"gaussian": AMPLITUDE_GAUSSIAN, "constant": AMPLITUDE_CONSTANT}

# Deformations of cos-net fields (kernels.cpu.deformation): the local potential V(phi) of
# S_int / coupling = int_V V(phi) d^d x and the parameter action, each built in or a user's.
POTENTIAL_NONE = -1
POTENTIAL_PHI4 = 0  # V = phi^4 / 4!
POTENTIAL_USER = 1
PARAMETER_ACTION_NONE = -1
PARAMETER_ACTION_USER = 1
