"""Memory estimates (nnft_fast.memory): requests too big for the machine are refused with a
ValueError naming the quantity and its size, before anything is allocated.

Tests that need a machine of a given size patch ``available_memory`` to a fixed value;
the others use sizes that are absurd on any machine (and would overflow int64)."""

import resource

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast import memory
from nnft_fast.accumulators import MomentLayout
from nnft_fast.config import ConfigError, parse_config
from nnft_fast.run import EnsembleRun

GB = 10**9
X1 = np.array([[0.5, -0.2, 0.9, 0.1]])


@pytest.fixture
def machine(monkeypatch):
    """Set the available memory to ``bytes``."""

    def set_available(nbytes):
        monkeypatch.setattr(memory, "available_memory", lambda: nbytes)

    return set_available


# ---------------------------------------------------------------- the module itself


def test_available_memory_is_a_positive_number_of_bytes():
    available = memory.available_memory()
    assert isinstance(available, int) and available > 0


def test_available_memory_respects_an_address_space_limit(monkeypatch):
    used = memory._proc_kb("/proc/self/status", "VmSize")
    if used is None:
        pytest.skip("no /proc/self/status")
    monkeypatch.setattr(resource, "getrlimit", lambda which: (used + GB, resource.RLIM_INFINITY))
    assert memory.available_memory() <= GB


@pytest.mark.parametrize(
    "nbytes,text",
    [
        (512, "512 bytes"),
        (8 * 10**12, "8.0 TB"),
        (24.3e9, "24.3 GB"),
        (2.0**70, "1.2 ZB"),
    ],
)
def test_format_bytes(nbytes, text):
    assert memory.format_bytes(nbytes) == text


@pytest.mark.parametrize("n_inputs", range(1, 7))
@pytest.mark.parametrize("four_point", [False, True])
def test_statistics_size_matches_the_layout(n_inputs, four_point):
    assert (
        memory.moment_statistics_size(n_inputs, four_point)
        == MomentLayout(n_inputs, four_point).n_stat
    )


def test_check_memory_names_the_total_and_the_largest_need(machine):
    machine(10 * GB)
    needs = [memory.Need("the small thing", 1 * GB), memory.Need("the big thing", 12 * GB)]
    with pytest.raises(
        ValueError,
        match=r"this run needs ~13\.0 GB of memory, ~12\.0 GB of "
        r"it for the big thing; available ~10\.0 GB",
    ):
        memory.check_memory(needs)
    memory.check_memory(needs[:1])


def test_nothing_of_2_63_bytes_or_more_is_accepted(machine):
    machine(2**80)  # even where the machine's memory is unknown or vast: int64 indices
    with pytest.raises(ValueError, match="needs"):
        memory.check_memory([memory.Need("x", 2.0**63)])


def test_a_realistic_run_is_estimated_sensibly():
    """Dense 512 x 512 weights dominate: one network needs a few MB, not 0, not GBs."""
    run = EnsembleRun(nf.Network((4, 512, 512)), X1, 0, method="dense")
    total = memory.total_bytes(memory.run_needs(run, 1, "statistics", threads=1))
    assert 512 * 512 * 8 < total < 4 * 512 * 512 * 8
    two = memory.total_bytes(memory.run_needs(run, 64, "statistics", threads=2))
    assert two > 2 * 512 * 512 * 8  # two chunks in flight, each with its own weights


# ------------------------------------------------------- widths (issue 13 point 6)


@pytest.mark.parametrize("width", [2**62, 2**70])
@pytest.mark.parametrize("call", ["sample", "preactivations", "ntk_samples"])
def test_absurd_widths_are_refused_on_any_machine(width, call):
    net = nf.Network((4, width))
    with pytest.raises(
        ValueError,
        match=r"this run needs ~.* of memory, .* per network "
        r"in flight.*; available ~",
    ):
        getattr(nf, call)(net, X1, 2)


@pytest.mark.parametrize(
    "method,init,needle",
    [
        ("dense", "gaussian", r"dense weights of layer 1 \(1000000000 x 4\)"),
        ("dense", "orthogonal", r"dense weights of layer 1 \(1000000000 x 4, with float64 Haar"),
        (
            "projected",
            "gaussian",
            r"projected sampler's factors and layer buffers \(up to "
            r"1000000000 x 1\)",
        ),
    ],
)
def test_a_billion_wide_layer_is_refused_naming_the_weights(machine, method, init, needle):
    machine(16 * GB)
    net = nf.Network((4, 10**9), init=init)
    with pytest.raises(ValueError, match=needle + r".*available ~16\.0 GB"):
        nf.sample(net, X1, 2, method=method)
    with pytest.raises(ValueError, match=r"needs ~.*available ~16\.0 GB"):
        nf.preactivations(net, X1, 2, method=method)
    with pytest.raises(ValueError, match=r"NTK workspace"):
        nf.ntk_samples(net, X1, 2, method=method)


def test_preactivations_output_is_checked(machine):
    """One network fits, but 10^5 networks' preactivations (and their copy) do not."""
    machine(1 * GB)
    net = nf.Network((4, 1000))
    assert nf.preactivations(net, X1, 2)[0].shape == (2, 1000, 1)
    with pytest.raises(ValueError, match=r"the preactivations of 100000 networks"):
        nf.preactivations(net, X1, 100_000)
    with pytest.raises(ValueError, match=r"the NTKs of 100000000 networks"):
        nf.ntk_samples(net, X1, 10**8)


# ---------------------------------------------- many inputs: the B^4 four-point layout


def test_hundred_inputs_refused_naming_the_accumulators(machine):
    machine(4 * GB)
    x = np.random.default_rng(0).standard_normal((100, 4))
    with pytest.raises(
        ValueError,
        match=r"~8\.8 GB of it for the accumulators \(64 blocks x "
        r"1 layers x 17,180,100 statistics",
    ):
        nf.sample(nf.Network((4, 8)), x, 2)
    # two-point only, the same inputs are cheap
    assert nf.sample(nf.Network((4, 8)), x, 2, observables="two_point").n_networks == 2


def test_thousands_of_inputs_refused_on_any_machine():
    x = np.random.default_rng(0).standard_normal((3000, 4))
    with pytest.raises(
        ValueError,
        match=r"for the accumulators \(64 blocks x 1 layers x "
        r"[\d,]+ statistics",
    ):
        nf.sample(nf.Network((4, 8)), x, 2)


def test_estimates_too_big_for_memory_are_refused(machine):
    x = np.random.default_rng(0).standard_normal((10, 4))
    ens = nf.sample(nf.Network((4, 8)), x, 8)
    machine(10**6)
    with pytest.raises(
        ValueError,
        match=r"this estimate needs .* the \(B, B, B, B\) "
        r"estimates of layer 1 at B = 10 inputs",
    ):
        ens.four_point(1)
    with pytest.raises(ValueError, match="this estimate needs"):
        ens.two_point(1)  # the four-point layout's estimates form every field
    two_point = nf.sample(nf.Network((4, 8)), x, 8, observables="two_point")
    assert two_point.two_point(1).value.shape == (10, 10)  # B x B tensors only


# --------------------------------------------------------------------- batch sizes


def _run():
    x = np.random.default_rng(1).standard_normal((4, 3))
    return EnsembleRun(nf.Network((3, 64)), x, 0, backend="cpu")


def test_default_batch_size_keeps_a_batch_within_memory(machine):
    run = _run()
    machine(10**12)
    plenty = run.default_batch_size(5000)
    assert plenty == 5000  # unchanged where memory is plentiful: the statistics budget
    machine(10**6)
    small = run.default_batch_size(5000)
    assert 1 <= small < plenty
    assert memory.fits(memory.run_needs(run, small, "statistics"))


def test_a_user_batch_size_beyond_memory_is_refused(machine):
    machine(10**6)
    x = np.random.default_rng(1).standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"the statistics of a batch of 5000 networks"):
        nf.sample(nf.Network((3, 64)), x, 5000, batch_size=5000, backend="cpu")
    assert nf.sample(nf.Network((3, 64)), x, 5000, backend="cpu").n_networks == 5000


# ------------------------------------------------------------------- haar_orthogonal


def test_haar_orthogonal_too_big_is_refused(machine):
    machine(24 * GB)
    with pytest.raises(
        ValueError,
        match=r"haar_orthogonal needs ~240\.0 GB of memory, "
        r"~160\.0 GB of it for the QR buffers",
    ):
        nf.haar_orthogonal(100000, 100000, 1)
    with pytest.raises(ValueError, match=r"for the output \(10000000 x 100 x 100 float64\)"):
        nf.haar_orthogonal(100, 100, 10**7)
    with pytest.raises(TypeError, match="n_rows must be an integer"):
        nf.haar_orthogonal(1e5, 1e5, 1)


def test_haar_orthogonal_absurd_on_any_machine():
    with pytest.raises(ValueError, match="haar_orthogonal needs"):
        nf.haar_orthogonal(10**7, 10**7, 1)


# ------------------------------------------------------------------- configurations

CONFIG = """
[network]
widths = [4, 8]

[inputs]
n = {n}

[run]
n_networks = 10
"""


def test_config_with_too_many_random_inputs_is_refused():
    with pytest.raises(
        ConfigError,
        match=r"'inputs.n' = 1000000000000000 needs ~32\.0 PB of "
        r"memory, .* the random inputs",
    ):
        parse_config(CONFIG.format(n=10**15))
    with pytest.raises(ConfigError, match="'inputs.n' must be an integer, got a float"):
        parse_config(CONFIG.format(n="1e11"))
    assert parse_config(CONFIG.format(n=3)).inputs.shape == (3, 4)
