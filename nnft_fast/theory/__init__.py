"""Theory: predictions to set beside measured ensembles (docs/exact-results.md).

- ``infinite_width``: the infinite-width kernel and mean-NTK recursions;
- ``criticality``: susceptibilities chi_par, chi_perp and the critical (C_b, C_W) finder;
- ``vertex``: the 1/n four-point vertex recursion, Gaussian and Haar-orthogonal weights;
- ``ntk_fluctuations``: the 1/n NTK fluctuations A, B, D, F (Roberts-Yaida ch. 8),
  Gaussian and Haar-orthogonal weights;
- ``exact_finite_width``: exact finite-width K, E[z^4], E[z_i^2 z_j^2] and V/K^2 of one
  input through deep linear and (leaky) ReLU networks with Gaussian weights;
- ``single_layer``: exact one-hidden-layer results (Halverson-Maiti-Stoner) with samplers;
- ``couplings``: the quartic coupling and corrected quadratic term (first-order Edgeworth);
- ``gaussian_integrals``: the Gaussian integrals behind them;
- ``cosnet``: exact two-, four- and six-point functions of cos-net fields at finite width;
- ``phi4``: lambda phi^4 at first order (tadpole, tree level, the exact finite-width
  first-order two-point function);
- ``locality``: the first-order couplings of a deformed field on the quadrature nodes
  (local: lambda w_a delta_abcd) and how local a coupling is.
"""

from .cosnet import (
    cosnet_four_point,
    cosnet_h,
    cosnet_h3,
    cosnet_propagator,
    cosnet_six_point,
    cosnet_two_point,
)
from .couplings import layer_coupling, measured_coupling, quartic_coupling
from .criticality import CriticalPoint, find_critical, susceptibilities
from .exact_finite_width import (
    ExactMoments,
    deep_linear_normalised_vertex,
    deep_relu_normalised_vertex,
    exact_network_moments,
    exact_single_input_moments,
)
from .infinite_width import kernel_recursion, ntk_recursion
from .ntk_fluctuations import (
    NTKTheory,
    PredictedNTKFluctuations,
    ntk_fluctuation_recursion,
)
from .locality import (
    Locality,
    coupling_locality,
    local_quartic_coupling,
    node_sextuples,
    quartic_coupling_on_nodes,
    sextic_coupling_on_nodes,
)
from .phi4 import phi4_first_order_two_point, phi4_tadpole, phi4_tree_level
from .single_layer import SingleLayerNet, erf_net, gauss_net, relu_net
from .vertex import same_neuron_connected, vertex_recursion

__all__ = [
    "CriticalPoint",
    "ExactMoments",
    "Locality",
    "NTKTheory",
    "PredictedNTKFluctuations",
    "SingleLayerNet",
    "cosnet_four_point",
    "cosnet_h",
    "cosnet_h3",
    "cosnet_propagator",
    "cosnet_six_point",
    "cosnet_two_point",
    "coupling_locality",
    "deep_linear_normalised_vertex",
    "deep_relu_normalised_vertex",
    "erf_net",
    "exact_network_moments",
    "exact_single_input_moments",
    "find_critical",
    "gauss_net",
    "kernel_recursion",
    "layer_coupling",
    "local_quartic_coupling",
    "measured_coupling",
    "node_sextuples",
    "ntk_fluctuation_recursion",
    "ntk_recursion",
    "phi4_first_order_two_point",
    "phi4_tadpole",
    "phi4_tree_level",
    "quartic_coupling",
    "quartic_coupling_on_nodes",
    "relu_net",
    "same_neuron_connected",
    "sextic_coupling_on_nodes",
    "susceptibilities",
    "vertex_recursion",
]
