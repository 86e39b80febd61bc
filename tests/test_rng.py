"""The normal and uniform generator (kernels/cpu/rng.py) on its own: known-answer vectors
from an independent high-precision computation, accuracy of its log and cosine, moments,
Kolmogorov-Smirnov and tails of the kernel's own normals with z-scores, the same numbers
bit for bit from the AVX2 build (the device twins: tests/test_cuda_rng.py)."""

import math
import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest
from numba import njit
from scipy import stats

from nnft_fast.kernels.cpu import rng

from . import reference as ref

EPS = 2.0**-52
# Normals of (seed, network, stream), correctly rounded from mpmath at 120 bits: the
# Box-Muller transform of the Random123-checked Philox words (tests/reference.py); the
# words of (0, 0, 0) begin with Random123's known answer 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
KNOWN_NORMALS = {
    (0, 0, 0): [
        0.9911376799303858,
        -0.924662587665535,
        -0.6176089594591906,
        -0.4820685874871797,
        -0.15363823029788254,
        0.18082589777944114,
        0.8317351045307385,
        0.19743971982570221,
    ],
    (2**64 - 1, 2**63 - 1, 0xFFFFFFFF): [
        2.0088602662995068,
        -0.6716430377688939,
        -2.1971788262913576,
        0.39021758757269837,
        0.49136306177779465,
        0.42029317732323423,
        1.1663877302878911,
        0.9350011216108937,
    ],
}
# Measured: <= 1.5 eps max(1, |g|) for the normals, 0.84 eps for the cosine, 0.74 ulp
# for the log; the bounds leave a factor ~2.
NORMAL_TOLERANCE = 3.0
COS_TOLERANCE = 1.5
LOG_TOLERANCE_ULP = 1.0
N_STAT = 1 << 20  # normals of the statistical tests
Z_LIMIT = 4.5


def kernel_normals(seed, network, stream, m):
    out = np.empty(m)
    rng.fill_normal(out, np.uint64(seed), np.int64(network), np.uint64(stream), 1.0)
    return out


def uniforms(seed, network, stream, m, low, high):
    out = np.empty(m)
    rng.fill_uniform(out, np.uint64(seed), np.int64(network), np.uint64(stream), low, high)
    return out


def exact_normals(seed, network, stream, m):
    """Box-Muller of the reference Philox words in 120-bit arithmetic (mpmath)."""
    mpmath.mp.prec = 120
    values = []
    for block in ref.philox_words(seed, network, stream, (m + 3) // 4):
        u = [(mpmath.mpf(int(w)) + mpmath.mpf(0.5)) * mpmath.mpf(2) ** -32 for w in block]
        for radius_u, turn_u in ((u[0], u[1]), (u[2], u[3])):
            radius = mpmath.sqrt(-2 * mpmath.log(radius_u))
            values += [radius * mpmath.cospi(2 * turn_u), radius * mpmath.sinpi(2 * turn_u)]
    return values[:m]


@pytest.mark.parametrize("key", sorted(KNOWN_NORMALS))
def test_known_answer_vectors(key):
    expected = np.array(KNOWN_NORMALS[key])
    got = kernel_normals(*key, expected.size)
    bound = NORMAL_TOLERANCE * EPS * np.maximum(1.0, np.abs(expected))
    assert np.all(np.abs(got - expected) <= bound), got - expected


@pytest.mark.parametrize(
    "seed,network,stream", [(2024, 1, 0), (7, 123456789012, 9), (2**64 - 1, 2**63 - 1, 5)]
)
def test_normals_are_box_muller_to_a_few_ulp(seed, network, stream):
    """Every normal within 3 eps max(1, |g|) of the exact transform of its words."""
    m = 1003
    got = kernel_normals(seed, network, stream, m)
    exact = exact_normals(seed, network, stream, m)
    err = max(abs(mpmath.mpf(float(g)) - e) / max(1, abs(e)) for g, e in zip(got, exact))
    assert float(err) <= NORMAL_TOLERANCE * EPS


@njit
def _cos_turns(turns, out):
    for i in range(turns.size):
        out[i] = rng.cos_turns(turns[i])


@njit
def _log_positive(x, out):
    for i in range(x.size):
        out[i] = rng.log_positive(x[i])


def test_cosine_is_accurate_in_every_quadrant():
    quarter = np.arange(-12, 13) / 4.0
    turns = np.concatenate(
        [
            quarter,
            np.nextafter(quarter, np.inf),
            np.nextafter(quarter, -np.inf),
            np.linspace(-3.0, 3.0, 4001),
            np.random.default_rng(1).uniform(-1e3, 1e3, 2000),
        ]
    )
    got = np.empty_like(turns)
    _cos_turns(turns, got)
    mpmath.mp.prec = 120
    err = max(
        abs(mpmath.mpf(float(c)) - mpmath.cospi(2 * mpmath.mpf(float(t))))
        for c, t in zip(got, turns)
    )
    assert float(err) <= COS_TOLERANCE * EPS


def test_log_is_within_one_ulp():
    """On the uniforms' range, its ends (the smallest and largest uniform) and far outside."""
    gen = np.random.default_rng(2)
    x = np.concatenate(
        [
            gen.uniform(0.0, 1.0, 4000),
            (np.arange(1000) + 0.5) * 2.0**-32,
            1.0 - (np.arange(1000) + 0.5) * 2.0**-32,
            2.0 ** gen.uniform(-1000, 1000, 1000),
        ]
    )
    got = np.empty_like(x)
    _log_positive(x, got)
    mpmath.mp.prec = 120
    for g, v in zip(got, x):
        exact = mpmath.log(mpmath.mpf(float(v)))
        ulp = np.spacing(abs(float(exact))) if exact != 0 else 2.0**-1074
        assert abs(mpmath.mpf(float(g)) - exact) <= LOG_TOLERANCE_ULP * ulp, v


@pytest.fixture(scope="module")
def many_normals():
    """N_STAT normals from four streams of two networks (lane m % 4 kept apart)."""
    parts = [kernel_normals(11, e, s, N_STAT // 4) for e in (0, 2**40 + 1) for s in (0, 13)]
    return np.concatenate(parts)


def test_moments_have_standard_normal_values(many_normals):
    """Mean 0, variance 1, skewness 0, kurtosis 3: z from the exact sampling variances
    (1, 2, 15 and 96 per normal), also per lane."""
    g = many_normals
    for sample in [g] + [g[lane::4] for lane in range(4)]:
        n = sample.size
        z = [
            sample.mean() / math.sqrt(1 / n),
            (np.mean(sample**2) - 1) / math.sqrt(2 / n),
            np.mean(sample**3) / math.sqrt(15 / n),
            (np.mean(sample**4) - 3) / math.sqrt(96 / n),
        ]
        assert max(abs(v) for v in z) < Z_LIMIT, z


def test_lanes_are_uncorrelated(many_normals):
    """The two normals of one Box-Muller pair, of one Philox block and of neighbouring
    blocks are independent: E[g g'] = 0 and E[g^2 g'^2] = 1 (z with variances 1 and 8)."""
    blocks = many_normals.reshape(-1, 4)
    n = blocks.shape[0]
    pairs = [(0, 1), (2, 3), (0, 2), (1, 3), (0, 3)]
    for a, b in pairs:
        x, y = blocks[:, a], blocks[:, b]
        assert abs(np.mean(x * y)) / math.sqrt(1 / n) < Z_LIMIT, (a, b)
        assert abs(np.mean(x**2 * y**2) - 1) / math.sqrt(8 / n) < Z_LIMIT, (a, b)
    x, y = blocks[:-1, 3], blocks[1:, 0]
    assert abs(np.mean(x * y)) / math.sqrt(1 / (n - 1)) < Z_LIMIT


def test_kolmogorov_smirnov(many_normals):
    """The kernel's normals pass KS against N(0, 1); the same normals scaled by 1.01 fail
    (the test has the power to see a 1% normalisation error)."""
    assert stats.kstest(many_normals, "norm").pvalue > 1e-4
    assert stats.kstest(1.01 * many_normals, "norm").pvalue < 1e-4


def test_tails_and_the_largest_normal(many_normals):
    """Counts beyond 3, 4, 5 sigma against 2 Phi(-k) (Poisson z); no |g| beyond
    sqrt(-2 log(2^-33)) = 6.75, the bound set by 32-bit uniforms."""
    n = many_normals.size
    for k in (3.0, 4.0, 5.0):
        count = np.count_nonzero(np.abs(many_normals) > k)
        expected = n * math.erfc(k / math.sqrt(2))
        assert abs(count - expected) / math.sqrt(expected) < Z_LIMIT, k
    assert np.max(np.abs(many_normals)) <= math.sqrt(-2 * math.log(2.0**-33))


def test_uniforms_pass_kolmogorov_smirnov():
    u = uniforms(11, 3, 1, N_STAT // 4, 0.0, 1.0)
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    assert 0.0 < u.min() and u.max() < 1.0


_AVX2_FEATURES = (
    "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+lzcnt,+mmx,+movbe,+popcnt,+sse,"
    "+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,-avx512f,-avx512dq,-avx512vl,-avx512bw,-avx512cd"
)
DRAW_ARGS = ((5, 2**33 + 7, 9, 4099), (5, 3, 2, 4099))  # (seed, network, stream, m)
_DRAW = (
    "import sys, numpy as np; from nnft_fast.kernels.cpu import rng; "
    f"(s, e, t, m), (s2, e2, t2, m2) = {DRAW_ARGS}; "
    "g = np.empty(m); rng.fill_normal(g, np.uint64(s), np.int64(e), np.uint64(t), 1.0); "
    "u = np.empty(m2); rng.fill_uniform(u, np.uint64(s2), np.int64(e2), np.uint64(t2), -1.0, 2.0); "
    "sys.stdout.buffer.write(np.concatenate([g, u]).tobytes())"
)


def _cpu_has_avx2():
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return False


@pytest.mark.skipif(not _cpu_has_avx2(), reason="needs an x86-64 CPU with AVX2")
def test_avx2_build_draws_the_same_bits(tmp_path):
    """The generator compiled for AVX2 without AVX-512 (other vector code for the bit
    tricks and the FMAs) gives this process's numbers bit for bit."""
    (s, e, t, m), (s2, e2, t2, m2) = DRAW_ARGS
    here = np.concatenate(
        [
            kernel_normals(s, e, t, m),
            uniforms(s2, e2, t2, m2, -1.0, 2.0),
        ]
    )
    env = {
        "NUMBA_CACHE_DIR": str(tmp_path),
        "NUMBA_CPU_NAME": "haswell",
        "NUMBA_CPU_FEATURES": _AVX2_FEATURES,
    }
    done = subprocess.run(
        [sys.executable, "-c", _DRAW], env=dict(os.environ, **env), capture_output=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    avx2 = np.frombuffer(done.stdout, dtype=np.float64)
    assert avx2.size == here.size
    assert np.array_equal(here.view(np.int64), avx2.view(np.int64))
