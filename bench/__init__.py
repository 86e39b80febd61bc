"""nnft_fast's benchmark suite (bench/README.md). Run the scripts from the repository root.

Shared pieces, each defined once:
    configs      R1, NARROW_DEEP, WIDE, NNFT_1HL (and tiny --smoke configs), the seeds
    harness      Method / CallMethod, interleaved round_robin repeats, medians and best-of,
                 the common command-line options (--smoke, --json) and JSON layout
    machine      the machine block (CPU, cores, threads, load, versions, date), BLAS threads
    agreement    the z-score check of two methods' statistics
    methods      the timed workloads: nf.sample, the dense baselines, the RNG floor
    dense        what the NumPy / PyTorch / JAX baselines share (their Ensemble, chunks)
    probes       Numba probe kernels: RNG only, forward only, moments only

Baselines: numpy_baseline, torch_baseline, jax_baseline (and neural-tangents).
Scripts (python -m bench.<name>): compare, matrix, readme, scaling, store_overhead, gpu,
distributed_scaling, ntk_compare. pytest-benchmark: conftest.py, test_bench_kernels.py.
"""
