"""CPU (@njit / prange) kernels, one module per job: rng, haar, forward, moments."""
