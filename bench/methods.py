"""The timed workloads the scripts compare (``bench.harness.Method`` subclasses).

    NnftMethod    nf.sample(backend="cpu") on a config: one unit = one network, or with
                  ``per_call`` one call of that many networks (bench.scaling's N sweep)
    DenseMethod   a baseline with bench.dense's interface: dense (NumPy, PyTorch, JAX,
                  neural-tangents) or projected (bench.projected)
    FloorMethod   the random-number floor: kernels.cpu.rng.fill_normal on one array, one
                  thread; one unit = one call, rates in normals/s

Kept networks (repeats, top-ups) are numbered consecutively, so every method's
``ensemble`` holds distinct networks for the agreement check (bench.agreement); pilots
and warm-ups draw networks that are never kept.
"""

import numpy as np

import nnft_fast as nf
from nnft_fast.kernels.cpu.rng import fill_normal

from .configs import SAMPLE_SEED, TWO_FOUR
from .harness import Method, timed
from .machine import blas_threads

# Floor array: cache-resident (2^16 doubles = 512 KiB: call overhead is negligible); a
# 2^21-double (16 MiB) array is reported beside it by bench.compare for reference.
FLOOR_ARRAY = 1 << 16
FLOOR_ARRAY_BIG = 1 << 21


class NnftMethod(Method):
    """``nf.sample(backend="cpu")`` of ``cfg`` with weight law ``init`` and ``method``.
    With ``keep_ensemble`` the kept calls' ensembles are merged into ``ensemble`` (when it
    is read: merging is never timed)."""

    def __init__(
        self,
        cfg,
        init,
        method,
        observables=TWO_FOUR,
        *,
        key=None,
        label=None,
        x=None,
        per_call=None,
        blas=None,
        keep_ensemble=True,
    ):
        super().__init__(
            key or f"nnft_{method}_{init}",
            label or f"nnft_fast {method} {init}",
            per_unit=per_call or 1,
            blas=blas,
            init=init,
        )
        self.cfg = cfg
        self.network = cfg.network(init)
        self.x = cfg.inputs() if x is None else x
        self.method = method
        self.observables = observables
        self.per_call = per_call
        self.keep_ensemble = keep_ensemble
        self._parts = []

    def _sample(self, n, seed, first):
        return nf.sample(
            self.network,
            self.x,
            n,
            seed=seed,
            method=self.method,
            observables=self.observables,
            first_network=first,
            backend="cpu",
        )

    def warmup(self):
        with blas_threads(self.blas):
            self.first_call_s = timed(self._sample, self.warmup_n, SAMPLE_SEED + 1, 0)[0]

    def work(self, n, keep):
        calls, size = (n, self.per_call) if self.per_call else (1, n)
        for _ in range(calls):
            if not keep:
                self._sample(size, SAMPLE_SEED + 1, 0)
                continue
            ens = self._sample(size, SAMPLE_SEED, self.next_network)
            self.next_network += size
            if self.keep_ensemble:
                self._parts.append(ens)

    @property
    def ensemble(self):
        if len(self._parts) > 1:
            merged = self._parts[0]
            for part in self._parts[1:]:
                merged = merged.merge(part)
            self._parts = [merged]
        return self._parts[0] if self._parts else None


class DenseMethod(Method):
    """A dense baseline ``runner`` (bench.dense interface); the repeats are sized to what
    one call of the runner draws (whole chunks for PyTorch and JAX)."""

    kind = "baseline"
    warmup_n = 1

    def __init__(self, key, label, runner, *, blas=None):
        super().__init__(key, label, blas=blas, init=runner.init)
        self.runner = runner

    def calibrate(self, target_s, n_start, n_min, n_max):
        n = super().calibrate(target_s, n_start, n_min, n_max)
        self.n_per_repeat = self.runner.whole(n)
        return self.n_per_repeat

    def work(self, n, keep):
        self.runner.run(n, keep)
        self.next_network = self.runner.next_network

    @property
    def ensemble(self):
        return self.runner.as_ensemble() if self.runner.next_network else None

    def to_json(self):
        return {**super().to_json(), "algorithm": self.runner.algorithm}


class FloorMethod(Method):
    """fill_normal on an array of ``size`` doubles, one thread; units = calls, rates =
    normals/s. Every call draws a new stream (never refills the same numbers)."""

    unit = "normals"
    kind = "floor"

    def __init__(self, key, label, size=FLOOR_ARRAY):
        super().__init__(key, label, per_unit=size)
        self.buf = np.empty(size)
        self.calls = 0

    def warmup(self):
        self.first_call_s = timed(
            fill_normal, self.buf[:16], np.uint64(1), np.int64(0), np.uint64(0), 1.0
        )[0]

    def work(self, n_calls, keep):
        first = self.calls
        self.calls += n_calls
        for c in range(first, first + n_calls):
            fill_normal(self.buf, np.uint64(SAMPLE_SEED), np.int64(c), np.uint64(0), 1.0)

    def networks_per_s(self, cfg, threads, best=False, algorithm="projected"):
        """The floor in networks/s: normals/s (one thread) x threads / the normals a
        network of ``cfg`` draws by ``algorithm`` ("projected" or "dense")."""
        rate = self.best if best else self.rate
        return rate * threads / cfg.normals_per_network(algorithm)
