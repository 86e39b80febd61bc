"""Input validation: every bad input gives a ValueError/TypeError whose message names
the problem; and a user activation (nf.Activation) works end to end."""

import warnings

import numpy as np
import pytest
from numba import njit, types
from numba.extending import overload

import nnft_fast as nf
from nnft_fast.ensemble import TooFewNetworksWarning
from nnft_fast.run import EnsembleRun

Z_PASS = 4.5
Z_REJECT = 8.0

X = np.array([[0.5, -0.2, 0.9], [1.0, 0.3, -0.4]])


@pytest.fixture(scope="module")
def net():
    return nf.Network((3, 4, 5), activation="tanh")


@pytest.fixture(scope="module")
def ens(net):
    return nf.sample(net, X, 64, seed=1)


@pytest.fixture(scope="module")
def ens_two_point(net):
    return nf.sample(net, X, 64, seed=1, observables=("two_point",))


# ------------------------------------------------------------------------- Network


@pytest.mark.parametrize(
    "widths,exc,match",
    [
        ((3, 0, 2), ValueError, "width must be >= 1"),
        ((3, -4), ValueError, "width must be >= 1"),
        ((0, 4), ValueError, "width must be >= 1"),
        ((3,), ValueError, "at least one layer"),
        ((), ValueError, "at least one layer"),
        ((3, 2.0), TypeError, "widths must be integers"),
        ((3, 2.5), TypeError, "widths must be integers"),
        ((3, True), TypeError, "widths must be integers"),
        ((3, "4"), TypeError, "widths must be integers"),
        (np.array([3.0, 4.0]), TypeError, "widths must be integers"),
        ("34", TypeError, "widths must be a sequence"),
        (5, TypeError, "widths must be a sequence"),
        (None, TypeError, "widths must be a sequence"),
    ],
)
def test_bad_widths(widths, exc, match):
    with pytest.raises(exc, match=match):
        nf.Network(widths)


def test_good_widths_are_normalised():
    net = nf.Network(np.array([3, 4, 2]))
    assert net.widths == (3, 4, 2) and all(type(w) is int for w in net.widths)
    assert nf.Network([3, 4]).n_layers == 1


@pytest.mark.parametrize(
    "activation,exc,match",
    [
        ("foo", ValueError, "unknown activation 'foo'"),
        ("ReLU", ValueError, "unknown activation"),
        (3, TypeError, "activation must be a name or an nf.Activation"),
        (np.tanh, TypeError, "activation must be a name or an nf.Activation"),
        (None, TypeError, "activation must be a name"),
    ],
)
def test_bad_activation(activation, exc, match):
    with pytest.raises(exc, match=match):
        nf.Network((3, 4), activation=activation)


def test_unknown_activation_lists_known_names():
    with pytest.raises(ValueError, match="relu") as info:
        nf.Network((3, 4), activation="foo")
    assert "tanh" in str(info.value)


def _cube(x):
    return x * x * x


def _dcube(x):
    return 3.0 * x * x


@pytest.mark.parametrize(
    "fn,dfn,exc,match",
    [
        (3.0, _dcube, TypeError, "fn must be callable"),
        (_cube, "x", TypeError, "dfn must be callable"),
        (None, _dcube, TypeError, "fn must be callable"),
        (lambda x: np.random.default_rng().normal(), _dcube, TypeError, "not Numba-compilable"),
        (lambda x: "a", _dcube, TypeError, "must return a float"),
        (_cube, lambda x: 1, TypeError, "must return a float"),
    ],
)
def test_bad_user_activation(fn, dfn, exc, match):
    with pytest.raises(exc, match=match):
        nf.Activation("mine", fn, dfn)


def test_user_activation_that_raises_is_named():
    with pytest.raises(
        ValueError,
        match=r"Activation 'bad': fn\(0\.5\) raised "
        "ZeroDivisionError",
    ):
        nf.Activation("bad", lambda x: 1 / 0, _dcube)
    with pytest.raises(ValueError, match=r"Activation 'bad': dfn\(0\.5\) raised"):
        nf.Activation("bad", _cube, lambda x: 1 / 0)


def _refuse_large(x):
    if x > 1.0:
        raise ValueError("argument above 1")
    return x


def test_user_activation_raising_inside_the_kernels_is_named():
    """It passes the probe at 0.5 and raises on the network's preactivations: Numba
    reports a SystemError; the sampler names the activation and the exception."""
    act = nf.Activation("refuses-large", _refuse_large, _dcube)
    net = nf.Network((3, 4, 4), activation=act)
    with pytest.raises(
        ValueError,
        match="activation 'refuses-large' raised ValueError inside the kernels: argument above 1",
    ):
        nf.preactivations(net, 3.0 * np.ones((1, 3)), 2)


def _float64_only(x):
    pass


@overload(_float64_only)
def _float64_only_impl(x):
    if x == types.float64:
        return lambda x: x
    return None


def _float64_activation(x):
    return _float64_only(x)


def test_user_activation_not_compiling_into_the_kernels_is_named():
    """Compiles for the float64 probe, not for float32 arithmetic."""
    act = nf.Activation("float64-only", _float64_activation, _dcube)
    net = nf.Network((3, 4), activation=act)
    with pytest.raises(
        TypeError,
        match=r"activation 'float64-only' does not compile into "
        r"the kernels \(float32 arithmetic\)",
    ):
        nf.preactivations(net, X, 2, dtype=np.float32)


@pytest.mark.parametrize("name", ["", None, 3])
def test_bad_activation_name(name):
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        nf.Activation(name, _cube, _dcube)


@pytest.mark.parametrize(
    "init,exc,match",
    [
        ("he", ValueError, "unknown init 'he'"),
        ("Gaussian", ValueError, "unknown init"),
        (None, TypeError, "init must be a string"),
        (1, TypeError, "init must be a string"),
    ],
)
def test_bad_init(init, exc, match):
    with pytest.raises(exc, match=match):
        nf.Network((3, 4), init=init)


@pytest.mark.parametrize("param", ["cw", "cb"])
@pytest.mark.parametrize(
    "value,exc,match",
    [
        (-1.0, ValueError, "be non-negative"),
        ([1.0, -0.5], ValueError, "be non-negative"),
        (float("nan"), ValueError, "be finite"),
        (float("inf"), ValueError, "be finite"),
        ([1.0, float("inf")], ValueError, "be finite"),
        ([1.0, 2.0, 3.0], ValueError, r"one value per layer \(2\)"),
        ([1.0], ValueError, r"one value per layer \(2\)"),
        ([[1.0, 2.0]], ValueError, "one value per layer"),
        ("1.0", TypeError, "be a number"),
        (["a", "b"], TypeError, "be a number"),
        (True, TypeError, "be a number"),
        (np.array(True), TypeError, "got bool"),
        ([True, False], TypeError, "sequence with bools"),
        ([1.0, True], TypeError, "sequence with bools"),
        (np.array([True, False]), TypeError, "sequence with bools"),
        (None, (TypeError, ValueError), ""),
    ],
)
def test_bad_variances(param, value, exc, match):
    with pytest.raises(exc, match=f"{param} must.*{match}"):
        nf.Network((3, 4, 5), **{param: value})


def test_per_layer_variances_accepted():
    net = nf.Network((3, 4, 5), cw=[1.0, 2], cb=np.array([0.0, 0.5]))
    np.testing.assert_array_equal(net.cw_array, [1.0, 2.0])
    np.testing.assert_array_equal(net.cb_array, [0.0, 0.5])
    net = nf.Network((3, 4, 5), cw=np.float32(1.5), cb=0)
    np.testing.assert_array_equal(net.cw_array, [1.5, 1.5])


# --------------------------------------------------------------------------- sample


@pytest.mark.parametrize(
    "x,exc,match",
    [
        (np.array([[0.5, np.nan, 0.9]]), ValueError, "non-finite"),
        (np.array([[0.5, np.inf, 0.9]]), ValueError, "non-finite"),
        (np.array([[0.5, 0.2, 0.9, 1.0]]), ValueError, "dimension 4 but the network's n_0 is 3"),
        (np.ones((2, 2)), ValueError, "dimension 2 but the network's n_0 is 3"),
        (np.ones(4), ValueError, "dimension 4"),
        (np.ones((2, 3, 1)), ValueError, r"shape \(B, n_0\)"),
        (np.ones((0, 3)), ValueError, "B >= 1"),
        (np.float64(1.0), ValueError, r"shape \(B, n_0\)"),
        (np.ones((2, 3)) * (1 + 1j), TypeError, "must be real, got complex128"),
        ([[1.0, 2.0, 3j]], TypeError, "must be real"),
        (np.ones((2, 3), np.complex64), TypeError, "must be real, got complex64"),
        ("abc", TypeError, "numeric array"),
        ([[1.0, 2.0, 3.0], [1.0, 2.0]], TypeError, "numeric array"),
        (None, (TypeError, ValueError), "inputs X"),
    ],
)
def test_bad_inputs(net, x, exc, match):
    with pytest.raises(exc, match=match):
        nf.sample(net, x, 10)


def test_one_dimensional_input_is_one_input(net):
    ens = nf.sample(net, np.array([0.5, -0.2, 0.9]), 8, seed=2)
    assert ens.two_point(1).value.shape == (1, 1)


def test_network_must_be_a_network():
    with pytest.raises(TypeError, match="network must be an nf.Network"):
        nf.sample((3, 4), X, 10)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(n_networks=1), ValueError, "n_networks must be >= 2"),
        (dict(n_networks=0), ValueError, "n_networks must be >= 2"),
        (dict(n_networks=-5), ValueError, "n_networks must be >= 2"),
        (dict(n_networks=2.5), TypeError, "n_networks must be an integer"),
        (dict(n_networks="10"), TypeError, "n_networks must be an integer"),
        (dict(n_networks=True), TypeError, "n_networks must be an integer"),
        (dict(seed=-1), ValueError, "seed must be in"),
        (dict(seed=2**64), ValueError, "seed must be in"),
        (dict(seed=1.5), TypeError, "seed must be an integer"),
        (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
        (dict(batch_size=-3), ValueError, "batch_size must be >= 1"),
        (dict(batch_size=2.0), TypeError, "batch_size must be an integer"),
        (dict(first_network=-1), ValueError, "first_network must be in"),
        (dict(method="fast"), ValueError, "method must be one of"),
        (dict(method=None), ValueError, "method must be one of"),
        (dict(dtype=np.float16), ValueError, "dtype must be float64 or float32"),
        (dict(dtype=np.int64), ValueError, "dtype must be float64 or float32"),
        (dict(dtype=np.complex128), ValueError, "dtype must be float64 or float32"),
        (dict(dtype="double-ish"), TypeError, "dtype must be float64 or float32"),
        (dict(observables=("two_point", "six_point")), ValueError, "unknown observables"),
        (dict(observables=("four_point",)), ValueError, "must include 'two_point'"),
        (dict(observables=()), ValueError, "must include 'two_point'"),
        (dict(observables="ntk"), ValueError, "must include 'two_point'"),
        (dict(observables=3), TypeError, "observables must be a string or a sequence"),
        # the NTK options are checked even without "ntk" among the observables
        (dict(lambda_b=-1), ValueError, "lambda_b must be finite and >= 0"),
        (dict(lambda_w=float("nan")), ValueError, "lambda_w must be finite and >= 0"),
        (dict(lambda_b="1"), TypeError, "lambda_b must be a real number"),
        (dict(ntk_readouts=1), ValueError, "ntk_readouts must be >= 2"),
        (dict(ntk_readouts=2.0), TypeError, "ntk_readouts must be an integer"),
        (dict(threads=0), ValueError, "threads must be in"),
        (dict(threads=10**6), ValueError, "threads must be in"),
        (dict(threads=1.5), TypeError, "threads must be an integer"),
    ],
)
def test_bad_sample_arguments(net, kwargs, exc, match):
    args = dict(n_networks=10)
    args.update(kwargs)
    n = args.pop("n_networks")
    with pytest.raises(exc, match=match):
        nf.sample(net, X, n, **args)


def test_observables_none_is_the_default(net):
    """observables=None (the signature's default) means ("two_point", "four_point")."""
    none = nf.sample(net, X, 10, observables=None)
    default = nf.sample(net, X, 10, observables=("two_point", "four_point"))
    assert none.has_four_point
    np.testing.assert_array_equal(none.accumulator.block_sums, default.accumulator.block_sums)


def test_numpy_integers_accepted_everywhere(net):
    """Integer arguments accept numpy integers (as n_networks, seed, batch_size do)."""
    e = nf.sample(
        net,
        X,
        np.int64(4),
        seed=np.uint64(3),
        batch_size=np.int32(2),
        first_network=np.int64(8),
        threads=np.int64(1),
    )
    assert e.n_networks == 4


def test_zero_dimensional_array_variance_is_a_scalar():
    net = nf.Network((3, 4, 5), cw=np.array(1.5), cb=np.array(0.0))
    np.testing.assert_array_equal(net.cw_array, [1.5, 1.5])


def test_projected_rejects_uniform_init():
    net = nf.Network((3, 4), init="uniform")
    with pytest.raises(ValueError, match="exact only for .*not init='uniform'"):
        nf.sample(net, X, 10, method="projected")
    with pytest.raises(ValueError, match="exact only for"):
        nf.preactivations(net, X, 10, method="projected")
    assert nf.sample(net, X, 10, method="auto").method == "dense"
    assert nf.sample(nf.Network((3, 4), init="orthogonal"), X, 10).method == "projected"


def test_observables_as_string_and_valid_dtypes(net):
    e = nf.sample(net, X, 8, observables="two_point", dtype="float32")
    assert not e.has_four_point and e.dtype == np.float32


# ------------------------------------------------------------------------- Ensemble


@pytest.mark.parametrize(
    "layer,exc,match",
    [
        (0, ValueError, r"layer must be in 1\.\.2, got 0"),
        (3, ValueError, r"layer must be in 1\.\.2, got 3"),
        (-1, ValueError, r"layer must be in 1\.\.2"),
        (1.0, TypeError, "layer must be an integer"),
        (True, TypeError, "layer must be an integer"),
        ("1", TypeError, "layer must be an integer"),
    ],
)
def test_layer_out_of_range(ens, layer, exc, match):
    for call in (
        ens.two_point,
        ens.four_point,
        ens.vertex,
        lambda l: ens.estimate(l, lambda m: m.two_point),
    ):
        with pytest.raises(exc, match=match):
            call(layer)


def test_numpy_integer_layer_accepted(ens):
    assert ens.two_point(np.int64(2)).value.shape == (2, 2)


def test_four_point_needs_four_point_observable(ens_two_point):
    assert ens_two_point.two_point(1).value.shape == (2, 2)
    for call in (
        lambda: ens_two_point.four_point(1),
        lambda: ens_two_point.four_point(2, neurons="same"),
        lambda: ens_two_point.vertex(1),
    ):
        with pytest.raises(ValueError, match="without 'four_point'"):
            call()


def test_statistics_of_missing_four_point_fields_say_so(ens_two_point):
    """estimate() on a two-point-only ensemble: a statistic that reads a four-point field
    gets a ValueError naming it (not a TypeError on None); two_point still works."""
    for field in ("same_raw", "distinct_raw", "same_connected", "distinct_connected", "vertex"):
        with pytest.raises(ValueError, match=f"without 'four_point'.*{field} was not accumulated"):
            ens_two_point.estimate(1, lambda m, f=field: getattr(m, f)[..., 0, 0, 0, 0])
    k = ens_two_point.estimate(1, lambda m: m.two_point[..., 0, 0])
    assert np.isfinite(k.value) and np.isfinite(k.error) and k.note is None
    with pytest.raises(AttributeError, match="no attribute 'kurtosis'"):
        ens_two_point.estimate(1, lambda m: m.kurtosis)


def test_too_few_networks_for_error_bars_warn_and_say_why(net):
    """Two networks: the four-point value exists (unbiased products over N (N - 1)) but
    every delete-one-block replica holds one network, so its error is NaN: a
    TooFewNetworksWarning and the Estimate's note say so. Three networks are enough."""
    ens2 = nf.sample(net, X, 2, seed=4)
    with pytest.warns(TooFewNetworksWarning, match="sample at least 3 networks") as record:
        c = ens2.four_point(2)
    assert record[0].filename == __file__  # points at the caller, not at nnft_fast
    assert np.all(np.isfinite(c.value)) and np.all(np.isnan(c.error))
    assert "at least 3 networks" in c.note and "note=" in repr(c)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        k = ens2.two_point(2)  # the two-point jackknife works with 2 networks
        assert np.all(np.isfinite(k.error)) and k.note is None
        c3 = nf.sample(net, X, 3, seed=4).four_point(2)
        assert np.all(np.isfinite(c3.error)) and c3.note is None


def test_networks_in_one_jackknife_block_have_no_error_bars(net):
    """Networks 0 and 64 share block 0 of 64: no jackknife is possible at all."""
    run = EnsembleRun(net, X, 5, observables="two_point")
    first, _ = run.accumulate(0, 1)
    second, _ = run.accumulate(64, 1)
    merged = run.ensemble(first, 0, 1).merge(run.ensemble(second, 64, 1))
    with pytest.warns(TooFewNetworksWarning, match="at least 2 of its 64 blocks"):
        k = merged.two_point(1)
    assert np.all(np.isfinite(k.value)) and np.all(np.isnan(k.error)) and "64 blocks" in k.note


def test_bad_four_point_options(ens):
    with pytest.raises(ValueError, match="neurons must be one of"):
        ens.four_point(1, neurons="different")
    with pytest.raises(TypeError, match="connected must be True or False"):
        ens.four_point(1, connected="yes")


def test_distinct_neurons_need_two_neurons():
    e = nf.sample(nf.Network((3, 1, 4), activation="tanh"), X, 16, seed=3)
    with pytest.raises(ValueError, match="one neuron"):
        e.four_point(1, neurons="distinct")
    assert np.all(np.isfinite(e.four_point(1, neurons="same").value))
    assert np.all(np.isfinite(e.four_point(2, neurons="distinct").value))


def test_merge_validation(net, ens):
    with pytest.raises(TypeError, match="merge with another Ensemble"):
        ens.merge("not an ensemble")
    other = nf.sample(net, X, 64, seed=2, first_network=64)
    with pytest.raises(ValueError, match="different networks, inputs, seeds"):
        ens.merge(other)
    overlapping = nf.sample(net, X, 64, seed=1, first_network=32)
    with pytest.raises(ValueError, match="share networks"):
        ens.merge(overlapping)
    single = nf.sample(net, X, 64, seed=1, first_network=64, dtype=np.float32)
    with pytest.raises(ValueError, match="dtypes"):
        ens.merge(single)
    merged = ens.merge(nf.sample(net, X, 64, seed=1, first_network=64))
    assert merged.n_networks == 128


def test_network_indices_must_stay_below_2_63(net):
    with pytest.raises(ValueError, match="below 2\\^63"):
        nf.sample(net, X, 10, first_network=2**63 - 5)
    assert nf.sample(net, X, 5, first_network=2**63 - 5).n_networks == 5


# ------------------------------------------------------------- other entry points


@pytest.mark.parametrize(
    "args,kwargs,exc,match",
    [
        ((0, 3, 5), {}, ValueError, "n_rows must be >= 1"),
        ((3, 0, 5), {}, ValueError, "n_cols must be >= 1"),
        ((3, 3, 0), {}, ValueError, "size must be >= 1"),
        ((3.0, 3, 5), {}, TypeError, "n_rows must be an integer"),
        ((1e5, 1e5, 1), {}, TypeError, "n_rows must be an integer"),
        ((3, 3, 2.0), {}, TypeError, "size must be an integer"),
        ((3, 3, 5), {"seed": -2}, ValueError, "seed must be in"),
        ((3, 3, 5), {"first": -1}, ValueError, "first must be in"),
    ],
)
def test_bad_haar_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nf.haar_orthogonal(*args, **kwargs)


def test_bad_preactivations_arguments(net):
    with pytest.raises(ValueError, match="n_networks must be >= 1"):
        nf.preactivations(net, X, 0)
    with pytest.raises(ValueError, match="non-finite"):
        nf.preactivations(net, [[np.nan, 0, 0]], 3)
    with pytest.raises(ValueError, match="method must be one of"):
        nf.preactivations(net, X, 3, method="sparse")


# --------------------------------------------------------- user activation end to end


def cubic_kernel(k):
    """<u^3 v^3> for (u, v) ~ N(0, k): 9 K_uu K_vv K_uv + 6 K_uv^3 (Wick)."""
    d = np.diag(k)
    return 9.0 * np.outer(d, d) * k + 6.0 * k**3


def test_plain_python_activation_is_compiled():
    """A plain Python function is compiled by nf.Activation; an @njit one is kept."""
    plain = nf.Activation("cubic-plain", _cube, _dcube)
    jitted_fn = njit(_cube)
    jitted = nf.Activation("cubic-jit", jitted_fn, njit(_dcube))
    assert plain.fn(2.0) == 8.0 and plain.dfn(2.0) == 12.0
    assert jitted.fn is jitted_fn
    assert not plain.is_builtin and nf.ACTIVATIONS["relu"].is_builtin


# One user activation for the end-to-end test: each one specialises (compiles) the
# kernels once per process, which takes tens of seconds.
CUBIC = nf.Activation("cubic", _cube, _dcube)


@pytest.mark.parametrize("method,seed", [("projected", 7), ("dense", 8)])
def test_user_activation_end_to_end(method, seed):
    """nf.Activation with a cubic, dense and projected. z^(1) is exactly Gaussian, so
    at any width
        K^(2) = C_b + C_W (9 K_aa K_bb K_ab + 6 K_ab^3),  K = K^(1) = C_b + C_W X X^T/n0."""
    cw, cb = 0.9, 0.15
    x = np.array([[0.6, -0.3, 0.4], [0.1, 0.7, -0.5]])
    net = nf.Network((3, 7, 5), activation=CUBIC, cw=cw, cb=cb)
    assert net.activation.name == "cubic" and net.config()["activation"] == "cubic"
    ens = nf.sample(net, x, 300_000, seed=seed, method=method)
    k1 = cb + cw * x @ x.T / 3
    k2 = cb + cw * cubic_kernel(k1)
    for layer, exact in ((1, k1), (2, k2)):
        z = np.abs(ens.two_point(layer).zscore(exact))
        assert np.max(z) < Z_PASS, f"K^({layer}) z-scores {z}"
    # negative controls: Wick term 6 K_ab^3 missing; the linear activation's kernel
    wrong = cb + cw * 9.0 * np.outer(np.diag(k1), np.diag(k1)) * k1
    assert np.max(np.abs(ens.two_point(2).zscore(wrong))) > Z_REJECT
    assert np.max(np.abs(ens.two_point(2).zscore(cb + cw * k1))) > Z_REJECT
    # nf.preactivations runs the same specialised kernels: the empirical kernel of its
    # first three networks is the two-point estimate of a 3-network ensemble
    z1, z2 = nf.preactivations(net, x, 3, seed=seed, method=method)
    assert z1.shape == (3, 7, 2) and z2.shape == (3, 5, 2)
    e3 = nf.sample(net, x, 3, seed=seed, method=method)
    g2 = np.einsum("tia,tib->ab", z2, z2) / (3 * 5)
    np.testing.assert_allclose(e3.two_point(2).value, g2, rtol=1e-12)


# ------------------------------------------- found by the API fuzz (tests/test_fuzz_api.py)


@pytest.mark.parametrize("param", ["cw", "cb"])
@pytest.mark.parametrize(
    "value,exc,match",
    [
        (10**400, ValueError, "finite, got an integer of 1329 bits"),  # was OverflowError
        ([10**400, 1.0], ValueError, "finite, got an integer of 1329 bits"),
        (["1", "2"], TypeError, "be a number.*<U1 values"),  # strings were parsed as numbers
        ([None, 1.0], TypeError, "be a number.*got NoneType"),  # None became NaN
        ([1j, 1.0], TypeError, "be a number.*complex128 values"),
        (np.timedelta64(1, "s"), TypeError, "be a number.*timedelta64"),  # was accepted as 1.0
        ({1: 2}, TypeError, "be a number.*got dict"),
    ],
)
def test_variances_beyond_floats_or_not_numbers(param, value, exc, match):
    with pytest.raises(exc, match=f"{param} must.*{match}"):
        nf.Network((3, 4, 5), **{param: value})


def test_huge_integer_variances_that_fit_a_float_are_accepted():
    net = nf.Network((3, 4, 5), cw=2**70, cb=[2**64, np.uint64(3)])
    assert net.cw_array[0] == 2.0**70 and net.cb_array.tolist() == [2.0**64, 3.0]


@pytest.mark.parametrize("widths", [{3: None, 4: None}, {3, 4}, (3, np.timedelta64(4, "s"))])
def test_unordered_widths_are_refused(widths):
    """A mapping's keys or a set's members have no layer order (they were accepted)."""
    with pytest.raises(TypeError, match="widths must be"):
        nf.Network(widths)


CONFIG_HEAD = "[network]\nwidths = [3, 4]\n[run]\nn_networks = 4\n"


@pytest.mark.parametrize(
    "text,match",
    [
        (
            CONFIG_HEAD + f"[inputs]\nvalues = [[{10**400}, 1, 1]]\n",
            "'inputs.values' must be finite numbers",
        ),  # was OverflowError
        (CONFIG_HEAD + "[inputs]\nvalues = [[inf, 1, 1]]\n", "'inputs.values' must be finite"),
        (
            CONFIG_HEAD + '[inputs]\nvalues = [["1", "2", "3"]]\n',
            "'inputs.values' must be a list of numeric rows, got str values",
        ),  # was parsed
        (
            CONFIG_HEAD + "[inputs]\nvalues = [[true, false, true]]\n",
            "'inputs.values' must be a list of numeric rows, got bool values",
        ),
        (CONFIG_HEAD + f"[inputs]\nn = {10**400}\n", "'inputs.n' = 1000"),  # OverflowError
        (CONFIG_HEAD + f"[inputs]\nscale = {10**400}\n", "'inputs.scale' must be finite"),
        (CONFIG_HEAD + "[inputs]\nscale = nan\n", "'inputs.scale' must be finite, got nan"),
        (CONFIG_HEAD.replace("[3, 4]", "[3, 4]\ncw = " + "9" * 400), "cw must be finite"),
        (CONFIG_HEAD + "x = " + "1" * 5000 + "\n", "malformed TOML: Exceeds the limit"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "malformed TOML: .*nested too deeply"),
        (CONFIG_HEAD.replace("[3, 4]", f"[{2**40}, 4]"), "n_0 = 1099511627776, network.widths"),
    ],
)
def test_config_values_beyond_floats_are_config_errors(text, match):
    from nnft_fast.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=match):
        parse_config(text)


@pytest.mark.parametrize(
    "statistic,exc,match",
    [
        (3, TypeError, "statistic must be a function of the layer's moments.*got int"),
        (
            lambda m: None,
            TypeError,
            "statistic must return real numbers.*got NoneType",
        ),  # IndexError
        (lambda m: "abc", TypeError, "statistic must return real numbers.*str"),
        (lambda m: m.two_point * 1j, TypeError, "complex128 values"),  # imaginary part dropped
        (lambda m: [m.two_point, 1.0], TypeError, "statistic must return real numbers.*list"),
        (lambda m: 1.0, ValueError, "replica axis.*shape \\(\\) for the ensemble but \\(\\)"),
        (lambda m: m.two_point[0], ValueError, "replica axis"),
    ],
)
def test_statistics_that_are_not_estimable_are_named(ens, statistic, exc, match):
    with pytest.raises(exc, match=match):
        ens.estimate(1, statistic)


@pytest.mark.parametrize("neurons", [np.array(["same", "distinct"]), ["same"], None])
def test_neurons_that_are_not_a_name_are_named(ens, neurons):
    """An array used to fail in 'neurons not in (...)' with numpy's ambiguous truth value."""
    with pytest.raises(ValueError, match="neurons must be one of"):
        ens.four_point(1, neurons=neurons)


@pytest.mark.parametrize(
    "call",
    [
        lambda net: nf.preactivations(net, X, 2**63),
        lambda net: nf.ntk_samples(net, X, 2**63),
        lambda net: nf.sample(net, X, 2**63, batch_size=2**63),
        lambda net: nf.sample(net, X, 2**63 - 1, batch_size=2**63 - 1),
    ],
)
def test_network_counts_up_to_2_63_are_refused_by_the_memory_estimate(net, call):
    """Indices 0 .. 2^63 - 1 are valid, but the estimate's chunk count (an int64 kernel)
    overflowed: OverflowError for 2^63, a wrapped negative count for 2^63 - 1."""
    with pytest.raises(ValueError, match="of memory"):
        call(net)
