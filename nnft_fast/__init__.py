"""nnft_fast: neural network field theory at scale.

Thin public re-exports; the implementation lives in the submodules and, for the
compiled kernels, in ``nnft_fast.kernels``.

Logging: every module logs on ``logging.getLogger(__name__)``, under the package logger
``"nnft_fast"``, which has a ``NullHandler`` and nothing else; the library configures no
handler (``logging.basicConfig(level=logging.INFO)`` shows its INFO lines).
"""

import logging

from .accumulators import NonFiniteWarning
from .activations import ACTIVATIONS, Activation
from .backends import BackendUnavailable, cuda_available
from .compare import Comparison, Prediction, compare, predict
from .cosnet import CosNet
from .covariance import Covariance
from .deformations import LocalInteraction, ParameterInteraction, Phi4
from .deformed_estimates import LowEffectiveSampleWarning
from .ensemble import (
    Ensemble,
    Estimate,
    LayerMoments,
    TooFewNetworksWarning,
    UnreliableErrorWarning,
)
from .field_ensemble import FieldEnsemble
from .extrapolate import Extrapolation, extrapolate
from .h5format import StoreError, open_store as open
from .network import INITS, Network
from .ntk import LayerNTK, NTKFluctuations
from .points import grid_points
from .sampling import haar_orthogonal, ntk_samples, preactivations, sample
from .store import read_raw, reanalyze, resume, store_info
from .threads import thread_limit

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "BackendUnavailable",
    "Comparison",
    "CosNet",
    "Covariance",
    "Ensemble",
    "Estimate",
    "FieldEnsemble",
    "Extrapolation",
    "INITS",
    "LayerMoments",
    "LayerNTK",
    "LocalInteraction",
    "LowEffectiveSampleWarning",
    "NTKFluctuations",
    "Network",
    "NonFiniteWarning",
    "ParameterInteraction",
    "Phi4",
    "Prediction",
    "StoreError",
    "compare",
    "cuda_available",
    "extrapolate",
    "grid_points",
    "haar_orthogonal",
    "ntk_samples",
    "open",
    "predict",
    "preactivations",
    "read_raw",
    "reanalyze",
    "resume",
    "sample",
    "store_info",
    "thread_limit",
    "TooFewNetworksWarning",
    "UnreliableErrorWarning",
    "__version__",
]
