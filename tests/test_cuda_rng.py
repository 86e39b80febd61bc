"""The generator's device twins (kernels/cuda/rng.py) against the CPU kernels, bit for
bit: on the CUDA simulator, or on the GPU with NNFT_CUDA_REAL_GPU=1 (bench/gpu_check.sh).
The statistical and accuracy tests of the generator itself: tests/test_rng.py."""

from ._cuda_env import run_target


def test_device_twins_draw_the_same_bits():
    """CUDA (simulator, or the GPU with NNFT_CUDA_REAL_GPU=1) against the CPU: normals,
    uniforms and the fields' cosine, every bit (the count of differing values is 0)."""
    differing = run_target("_cuda_sim_rng.py")
    assert len(differing) == 7
    assert all(count == 0 for count in differing.values()), differing
