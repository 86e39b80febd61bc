"""Runs of every kind behind one door: the MLP ensembles of ``run.EnsembleRun`` and the
cos-net fields of ``field_run.FieldRun`` share the store, the sharded runs and the
Ensemble API. This module builds the right run for a network (``make_run``) and
describes and rebuilds either kind (``run_config``, ``run_from_config``), so the store
(``store``, ``h5format``) and the sharded runs (``distributed``) handle both.
"""

from .cosnet import CosNet
from .field_run import FieldRun
from .run import DEFAULT_OBSERVABLES, READER_BACKEND, EnsembleRun
from .run import run_config as network_run_config
from .run import run_from_config as network_run_from_config

RUN_TYPES = (EnsembleRun, FieldRun)


def make_run(network, X, seed, *, quadruples=None, sextuples=None, deformation=None, **options):
    """The run of ``network``: a FieldRun for an ``nf.CosNet`` (``options``: method, dtype,
    observables, save, backend; quadruples, sextuples and deformation), else an
    EnsembleRun (every option of ``EnsembleRun`` and deformation; the tuples are for
    fields only).
    ``observables=None`` is each kind's default."""
    if isinstance(network, CosNet):
        field_options = {
            k: options[k]
            for k in ("method", "dtype", "observables", "save", "backend", "kind")
            if k in options
        }
        return FieldRun(
            network,
            X,
            seed,
            quadruples=quadruples,
            sextuples=sextuples,
            deformation=deformation,
            **field_options,
        )
    if quadruples is not None or sextuples is not None:
        raise ValueError("quadruples= and sextuples= are for cos-net fields (nf.CosNet) only")
    if options.get("observables", DEFAULT_OBSERVABLES) is None:
        options["observables"] = DEFAULT_OBSERVABLES
    return EnsembleRun(network, X, seed, deformation=deformation, **options)


def run_config(run, n_networks, first_network):
    """JSON-able description that fully determines the results of either kind of run."""
    if isinstance(run, FieldRun):
        return run.config(n_networks, first_network)
    return network_run_config(run, n_networks, first_network)


def run_from_config(config, inputs, backend=READER_BACKEND):
    """Rebuild the run a stored config describes (on ``backend``)."""
    if config["network"].get("kind") == "cosnet":
        return FieldRun.from_config(config, inputs, backend)
    return network_run_from_config(config, inputs, backend)


__all__ = ["RUN_TYPES", "make_run", "run_config", "run_from_config"]
