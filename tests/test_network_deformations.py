"""Deformed MLP ensembles (nnft_fast.deformations on an nf.Network): the interaction s of
every network -- lambda phi^4 and user potentials on the outputs z^(L) at the quadrature
nodes, drawn jointly with the inputs, and parameter actions of the dense weights --
against the plain-NumPy reference (tests/reference.py); the first-order and reweighted
estimators of every layer against reference values and jackknife errors; lambda phi^4
at large width against the infinite-width theory (z-scores with negative controls);
reproducibility, merging, stores, the empirical quadrature rule and validation."""

import concurrent.futures as cf

import numba
import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.accumulators import MomentLayout
from nnft_fast.deformations import PROBE_NETWORKS, PROBE_SEED
from nnft_fast.run import EnsembleRun
from nnft_fast.theory import phi4_tadpole, phi4_tree_level
from tests import reference as ref
from tests.test_integrity import _Stop, _stop_at

from ._zscores import Z_REJECT, assert_agrees, assert_rejects

WIDTHS = (2, 6, 5, 3)
CW, CB = 1.5, 0.1
X2 = np.array([[0.1, -0.3], [0.5, 0.2], [-0.4, 0.7]])
BOX2 = (-1.0, 1.0)
NODES2 = 3  # a 3 x 3 rule: the reference runs need no accurate integral
X1 = np.array([[-0.5], [0.1], [0.7]])
BOX1 = (-1.0, 1.0)


def _net(init="gaussian", widths=WIDTHS, activation="tanh"):
    return nf.Network(widths, activation, init, cw=CW, cb=CB)


def _reference_layers(net, x, points, method, seed, networks):
    """From tests/reference.py's forward pass of each network on x u points (one joint
    draw, as the deformed run draws it): (list over layers of z at x (M, n_l, B), the
    outputs at the points (M, n_L, Q))."""
    joint = np.concatenate([x, points])
    act = ref.ACTIVATIONS[net.activation.name]
    variances = net.cw_array, net.cb_array
    per_network = []
    for e in networks:
        if method == "dense":
            z = ref.dense_forward(net.widths, act, net.init, *variances, joint, seed, e)
        else:
            z, ambiguous = ref.projected_forward(
                net.widths, act, net.init, *variances, joint, seed, e, return_ambiguous=True
            )
            assert not ambiguous
        per_network.append(z)
    b = x.shape[0]
    layers = [np.stack([z[l][:, :b] for z in per_network]) for l in range(net.n_layers)]
    return layers, np.stack([z[-1][:, b:] for z in per_network])


def _local_s(outputs, weights, potential):
    """s = sum_q W_q sum_i V(z_i(y_q)) of outputs (M, n_L, Q)."""
    return potential(outputs).sum(axis=1) @ weights


def _phi4(phi):
    return phi**4 / 24.0


def _assert_matches(est, expected, what, rtol=1e-10):
    """Value and jackknife error within rtol of the reference, relative to their largest
    entries (single entries may be cancellations)."""
    for got, want, name in ((est.value, expected[0], "value"), (est.error, expected[1], "error")):
        scale = np.max(np.abs(want))
        np.testing.assert_allclose(
            got, want, rtol=rtol, atol=rtol * scale, err_msg=f"{what}: {name}"
        )


def _assert_views_match_reference(ens, layers, s, coupling, first):
    """ens.first_order and ens.reweighted (two_point, four_point same/distinct, vertex) at
    every layer, and the effective sample size, against the reference estimators of the
    per-network z and s."""
    for layer, z in enumerate(layers, start=1):
        g, q = ref.per_network_statistics(z)
        width, fan_in = z.shape[1], ens.network.widths[layer - 1]
        estimators = {
            "first_order": (
                lambda k: ref.first_order_mean(g[k], s[k]),
                lambda k: ref.first_order_layer_four_point(g[k], q[k], s[k], width),
            ),
            "reweighted": (
                lambda k: ref.reweighted_mean(g[k], s[k], coupling),
                lambda k: ref.reweighted_layer_four_point(g[k], q[k], s[k], coupling, width),
            ),
        }
        for name, (two_point, four_point) in estimators.items():
            view, what = getattr(ens, name), f"{name} layer {layer}"
            expected = ref.block_jackknife(two_point, s.size, first=first)
            _assert_matches(view.two_point(layer), expected, f"{what} two_point")
            value, error = ref.block_jackknife(
                lambda k: np.stack(four_point(k)), s.size, first=first
            )
            for index, neurons in enumerate(("same", "distinct")):
                expected = value[index], error[index]
                _assert_matches(view.four_point(layer, neurons), expected, f"{what} {neurons}")
            expected = fan_in * value[1], fan_in * error[1]
            _assert_matches(view.vertex(layer), expected, f"{what} vertex")
    w = np.exp(-coupling * (s - s.min()))
    ess = w.sum() ** 2 / (w * w).sum()
    assert ens.reweighted.effective_sample_size() == pytest.approx(ess, rel=1e-12)


def _interaction(run, first, count):
    """s of networks first, ... as the kernels compute it (the last slot of every layer's
    statistics row: the same s in each)."""
    stats, _, _ = run.compute(first, count)
    s = np.asarray(stats)[:, :, -1]
    np.testing.assert_array_equal(s, s[:, :1].repeat(s.shape[1], axis=1))
    return s[:, 0]


# --------------------------------------------------------------------------- reference
@pytest.mark.parametrize("method", ["dense", "projected"])
@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_phi4_estimators_of_every_layer_match_reference(init, method):
    net, coupling, seed, first, m = _net(init), 2.0, 5, 37, 130
    deformation = nf.Phi4(coupling, BOX2, nodes=NODES2)
    ens = nf.sample(net, X2, m, seed, first_network=first, method=method, deformation=deformation)
    rule = ens.quadrature
    assert ens.method == method and rule.points.shape == (NODES2**2, 2)
    layers, outputs = _reference_layers(net, X2, rule.points, method, seed, range(first, first + m))
    s = _local_s(outputs, rule.weights, _phi4)
    run = EnsembleRun(net, X2, seed, method=method, deformation=deformation)
    np.testing.assert_allclose(_interaction(run, first, m), s, rtol=1e-12)
    _assert_views_match_reference(ens, layers, s, coupling, first)
    # the free statistics are those of the B inputs of the same joint draw
    for layer, z in enumerate(layers, start=1):
        expected = ref.two_point_estimates(z, first=first)
        _assert_matches(ens.two_point(layer), expected, f"free two_point layer {layer}")


@numba.njit
def _layer_action(layer, w, b):
    """A(l, W, b) = l sum_i b_i, plus sum_ij W_ij^2 in layer 2."""
    total = layer * np.sum(b)
    if layer == 2:
        total += np.sum(w * w)
    return total


def _reference_action(net, seed, networks):
    total = []
    for e in networks:
        weights, biases = ref.dense_parameters(
            net.widths, net.init, net.cw_array, net.cb_array, seed, e
        )
        total.append(
            sum(
                (layer * b.sum() + (np.sum(w * w) if layer == 2 else 0.0))
                for layer, (w, b) in enumerate(zip(weights, biases), start=1)
            )
        )
    return np.array(total)


@pytest.mark.parametrize("init", ["gaussian", "orthogonal", "uniform"])
def test_parameter_action_of_the_dense_weights(init):
    net, coupling, seed, first, m = _net(init), 0.3, 4, 11, 80
    action = nf.ParameterInteraction(coupling, _layer_action)
    s = _reference_action(net, seed, range(first, first + m))
    run = EnsembleRun(net, X2, seed, method="dense", deformation=action)
    np.testing.assert_allclose(_interaction(run, first, m), s, rtol=1e-12)
    # "auto" runs dense (a parameter action needs the explicit weights), no quadrature
    ens = nf.sample(net, X2, m, seed, first_network=first, deformation=action)
    assert ens.method == "dense" and ens.quadrature is None
    layers, _ = _reference_layers(net, X2, np.zeros((0, 2)), "dense", seed, range(first, first + m))
    _assert_views_match_reference(ens, layers, s, coupling, first)
    # the API takes one deformation: a local potential and a parameter action together
    # have no constructor, so there is no combined case to test
    if init != "uniform":
        with pytest.raises(ValueError, match="dense"):
            nf.sample(net, X2, 10, deformation=action, method="projected")


@numba.njit
def _half_square(phi):
    return 0.5 * phi * phi


@pytest.mark.parametrize("method", ["dense", "projected"])
def test_user_potential_matches_reference(method):
    net, coupling, seed, first, m = _net("gaussian"), 0.4, 8, 0, 100
    local = nf.LocalInteraction(coupling, _half_square, BOX2, nodes=NODES2)
    ens = nf.sample(net, X2, m, seed, method=method, deformation=local)
    rule = ens.quadrature
    layers, outputs = _reference_layers(net, X2, rule.points, method, seed, range(m))
    s = _local_s(outputs, rule.weights, lambda phi: 0.5 * phi * phi)
    run = EnsembleRun(net, X2, seed, method=method, deformation=local)
    np.testing.assert_allclose(_interaction(run, first, m), s, rtol=1e-12)
    _assert_views_match_reference(ens, layers, s, coupling, first)


# --------------------------------------------------------------------------- physics
WIDE = nf.Network((1, 512, 1), "tanh", "gaussian", cw=CW, cb=CB)
WIDE_NODES = 8  # the theory is evaluated on the same 8-node rule: the same discrete sum
Z_AGREE = 3.5


@pytest.fixture(scope="module")
def wide():
    """80 000 dense networks of width 512 (errors 2.5-4.5 % of the resolved tadpole)."""
    return nf.sample(
        WIDE, X1, 80_000, seed=11, method="dense", deformation=nf.Phi4(1.0, BOX1, nodes=WIDE_NODES)
    )


def test_wide_network_two_point_is_the_tadpole(wide):
    got = wide.first_order.two_point()
    tadpole = phi4_tadpole(WIDE, X1, BOX1, nodes=wide.quadrature.nodes)
    resolved = np.abs(tadpole) > 0.02
    assert resolved.sum() >= 6 and np.all(got.error[resolved] < 0.06 * np.abs(tadpole[resolved]))
    assert_agrees(got, tadpole, "first-order K^(L) at width 512 vs the tadpole", tol=Z_AGREE)
    # negative controls: 1/3! instead of 1/4! (x 4), and the wrong sign
    assert_rejects(got, 4.0 * tadpole, "tadpole with symmetry factor 1/3!")
    assert_rejects(got, -tadpole, "tadpole with the wrong sign")


def test_wide_network_connected_four_point_is_tree_level(wide):
    got = wide.first_order.four_point(neurons="same")
    tree = phi4_tree_level(WIDE, X1, BOX1, nodes=wide.quadrature.nodes)
    assert np.max(np.abs(tree) / got.error) > Z_REJECT  # resolved somewhere
    assert_agrees(got, tree, "first-order G4c at width 512 vs tree level", tol=Z_AGREE)
    assert_rejects(got, 4.0 * tree, "tree level with symmetry factor 1/3!")
    assert_rejects(got, -tree, "tree level with the wrong sign")


def test_reweighted_slope_is_the_first_order_estimate():
    """On the same networks the central difference of the reweighted estimators at
    +-lambda is the first-order estimate, up to O(lambda^2) and the O(1/M) difference of
    plug-in and unbiased products, far below the errors, at both layers (the two-point
    functions resolved; the distinct-neuron ones are 2-4 sigma from zero here)."""
    net = nf.Network((1, 16, 4), "erf", "gaussian", cw=CW, cb=CB)
    coupling, n, nodes = 1e-3, 20_000, 8
    plus, minus = (
        nf.sample(net, X1, n, seed=404, deformation=nf.Phi4(c, BOX1, nodes=nodes))
        for c in (coupling, -coupling)
    )
    np.testing.assert_array_equal(plus.two_point(2).value, minus.two_point(2).value)
    estimators = {
        "two_point": lambda view, layer: view.two_point(layer),
        "same": lambda view, layer: view.four_point(layer, "same"),
        "distinct": lambda view, layer: view.four_point(layer, "distinct"),
    }
    for layer in (1, 2):
        for name, estimator in estimators.items():
            first = estimator(plus.first_order, layer)
            up, down = estimator(plus.reweighted, layer), estimator(minus.reweighted, layer)
            slope = (up.value - down.value) / (2 * coupling)
            # measured: <= 0.003 of the errors (the wrong sign or scale: O(1))
            assert np.max(np.abs(slope - first.value) / first.error) < 0.05, (layer, name)
        resolved = plus.first_order.two_point(layer)
        assert np.max(np.abs(resolved.value / resolved.error)) > Z_REJECT, layer
    np.testing.assert_allclose(
        plus.first_order.two_point().value, minus.first_order.two_point().value, rtol=1e-12
    )


# --------------------------------------------------------------------------- plumbing
PLUMBING = nf.Phi4(2.0, BOX2, nodes=NODES2)


def _all_estimates(ens, views=("first_order", "reweighted")):
    """{(view, layer, estimator): Estimate} over every layer."""
    out = {}
    for name in views:
        view = getattr(ens, name)
        for layer in range(1, ens.n_layers + 1):
            out[name, layer, "two_point"] = view.two_point(layer)
            out[name, layer, "same"] = view.four_point(layer, "same")
            out[name, layer, "distinct"] = view.four_point(layer, "distinct")
            out[name, layer, "vertex"] = view.vertex(layer)
    return out


def _assert_same_estimates(a, b, rtol=1e-12, error_rtol=1e-9):
    ea, eb = _all_estimates(a), _all_estimates(b)
    for key in ea:
        np.testing.assert_allclose(ea[key].value, eb[key].value, rtol=rtol, atol=1e-15, err_msg=key)
        np.testing.assert_allclose(
            ea[key].error, eb[key].error, rtol=error_rtol, atol=1e-15, err_msg=key
        )


def test_dense_free_statistics_are_the_undeformed_run():
    net = _net("gaussian")
    free = nf.sample(net, X2, 150, 3, method="dense")
    deformed = nf.sample(net, X2, 150, 3, method="dense", deformation=PLUMBING)
    n_base = free.accumulator.block_sums.shape[2]
    np.testing.assert_array_equal(
        deformed.accumulator.block_sums[:, :, :n_base], free.accumulator.block_sums
    )
    for layer in range(1, net.n_layers + 1):
        for a, b in (
            (deformed.two_point(layer), free.two_point(layer)),
            (deformed.four_point(layer, neurons="same"), free.four_point(layer, neurons="same")),
            (deformed.four_point(layer), free.four_point(layer)),
            (deformed.vertex(layer), free.vertex(layer)),
        ):
            np.testing.assert_array_equal(a.value, b.value)
            np.testing.assert_array_equal(a.error, b.error)
    assert deformed.is_deformed and not free.is_deformed and deformed.coupling == 2.0
    with pytest.raises(ValueError, match="deformation"):
        free.reweighted  # noqa: B018


def test_batches_threads_and_merge():
    net = _net("orthogonal")
    kwargs = dict(method="projected", deformation=PLUMBING)
    whole = nf.sample(net, X2, 300, 6, **kwargs)
    for other in (
        nf.sample(net, X2, 300, 6, batch_size=7, **kwargs),
        nf.sample(net, X2, 300, 6, threads=1, batch_size=64, **kwargs),
    ):
        np.testing.assert_array_equal(other.accumulator.block_sums, whole.accumulator.block_sums)
        np.testing.assert_array_equal(other.accumulator.block_shift, whole.accumulator.block_shift)
    left = nf.sample(net, X2, 130, 6, **kwargs)
    right = nf.sample(net, X2, 170, 6, first_network=130, **kwargs)
    merged = right.merge(left)
    assert merged.quadrature is not None and merged.n_networks == 300
    _assert_same_estimates(merged, whole)
    with cf.ThreadPoolExecutor(2) as pool:  # shards: rebuilt from the run's description
        sharded = nf.sample(net, X2, 300, 6, executor=pool, shard_size=100, **kwargs)
    np.testing.assert_array_equal(sharded.accumulator.block_counts, whole.accumulator.block_counts)
    assert sharded.quadrature is not None
    _assert_same_estimates(sharded, whole)


def test_store_round_trip_and_resume(tmp_path):
    net = _net("gaussian")
    whole = nf.sample(net, X2, 200, 9, deformation=PLUMBING)
    path = tmp_path / "x.h5"
    stored = nf.sample(net, X2, 200, 9, deformation=PLUMBING, store=path)
    np.testing.assert_array_equal(stored.accumulator.block_sums, whole.accumulator.block_sums)
    config = nf.store_info(path)["config"]["deformation"]
    assert config["kind"] == "phi4" and config["nodes"] == [NODES2, NODES2]
    _assert_same_estimates(nf.open(path), whole)
    partial = tmp_path / "partial.h5"
    with pytest.raises(_Stop):
        nf.sample(
            net,
            X2,
            200,
            9,
            deformation=PLUMBING,
            store=partial,
            batch_size=40,
            progress=_stop_at(80),
        )
    assert nf.open(partial).n_networks == 80
    resumed = nf.resume(partial, batch_size=64)
    np.testing.assert_array_equal(resumed.accumulator.block_sums, whole.accumulator.block_sums)
    _assert_same_estimates(resumed, whole)


def _probe_error(net, box, nodes):
    """err(n) = max_m |Q_n f_m - Q_2n f_m| / Q_2n |f_m| of f_m = sum_i z_i^4 / 4! on the
    outputs of the PROBE_NETWORKS dense networks of PROBE_SEED (tests/reference.py)."""
    lo, hi = box
    integrals = []
    for n in (nodes, 2 * nodes):
        x, w = np.polynomial.legendre.leggauss(n)
        y, w = (0.5 * (lo + hi) + 0.5 * (hi - lo) * x)[:, None], 0.5 * (hi - lo) * w
        _, outputs = _reference_layers(net, y[:0], y, "dense", PROBE_SEED, range(PROBE_NETWORKS))
        f = _phi4(outputs).sum(axis=1)
        integrals.append((f @ w, np.abs(f) @ w))
    (coarse, _), (fine, fine_abs) = integrals
    return np.max(np.abs(coarse - fine) / fine_abs)


def test_empirical_rule_of_a_smooth_network():
    net, box = _net("gaussian", (1, 8, 2)), (-0.5, 0.5)
    rule = nf.sample(net, X1, 10, deformation=nf.Phi4(1.0, box)).quadrature
    assert rule.empirical and rule.bandlimit == np.inf
    assert rule.error_bound < 1e-10 and rule.weights.sum() == pytest.approx(1.0)
    n = int(rule.nodes[0])
    assert rule.points.shape == (n, 1) and n >= 8
    assert rule.error_bound == pytest.approx(_probe_error(net, box, n), rel=1e-3, abs=1e-14)
    if n > 8:  # the first n that reaches the tolerance
        assert _probe_error(net, box, n // 2) > 1e-10


def test_bad_input(tmp_path):
    net = _net("gaussian")
    phi4 = nf.Phi4(1.0, BOX2, nodes=NODES2)
    with pytest.raises(ValueError, match="ntk"):
        nf.sample(net, X2, 10, deformation=phi4, observables=("two_point", "ntk"))
    # deformed runs are CPU only; without a GPU backend="cuda" is BackendUnavailable
    expected = (ValueError, "CPU only") if nf.cuda_available() else (nf.BackendUnavailable, "cuda")
    with pytest.raises(expected[0], match=expected[1]):
        nf.sample(net, X2, 10, deformation=phi4, backend="cuda")
    for box in ([(-1.0, 1.0)] * 3, [(-1.0, 1.0)], (1.0, -1.0)):
        with pytest.raises(ValueError, match="box"):
            nf.sample(net, X2, 10, deformation=nf.Phi4(1.0, box, nodes=NODES2))
    local = nf.LocalInteraction(1.0, _half_square, BOX2, nodes=NODES2)
    action = nf.ParameterInteraction(1.0, _layer_action)
    for deformation in (local, action):
        with pytest.raises(ValueError, match="cannot be stored"):
            nf.sample(net, X2, 10, deformation=deformation, store=tmp_path / "never.h5")
        assert not (tmp_path / "never.h5").exists()
    with pytest.raises(TypeError, match="deformation"):
        nf.sample(net, X2, 10, deformation="phi4")


# --------------------------------------------------------------------------- probe runs
@pytest.fixture
def probe_layouts(monkeypatch):
    """The (n_inputs, four_point) of every MomentLayout whose kernel tables are built; a
    four-point table over more than 8 inputs fails at once (these tests have B = 3: a
    larger one is a probe run's, C(Q + 3, 4) Python tuples for Q probe points, which runs
    the machine out of memory long before a ReLU rule gives up)."""
    built = []
    original = MomentLayout.kernel_tables

    def recorded(layout):
        built.append((layout.n_inputs, layout.four_point))
        assert not (layout.four_point and layout.n_inputs > 8), (
            f"four-point kernel tables built over {layout.n_inputs} inputs (a probe run)"
        )
        return original(layout)

    monkeypatch.setattr(MomentLayout, "kernel_tables", recorded)
    return built


def test_probe_networks_build_no_four_point_tables(probe_layouts):
    """The quadrature probes only need the outputs at the nodes: the probe runs (16 and 32
    points here) must not build the run's four-point tables over their points."""
    EnsembleRun(_net("gaussian", (1, 8, 2)), X1, 0, deformation=nf.Phi4(1.0, BOX1, nodes=16))
    assert (3, True) in probe_layouts  # the run's own layout
    assert all(n == 3 for n, four_point in probe_layouts if four_point), probe_layouts


def test_relu_network_needs_explicit_nodes(probe_layouts):
    """A ReLU output has kinks: the empirical error decays algebraically (1.6e-8 at 8192
    nodes), so nodes=None raises, asking for nodes=; explicit nodes give that rule and
    state its empirical error."""
    net = nf.Network((1, 8, 1), "relu", "gaussian", cw=2.0, cb=CB)
    with pytest.raises(ValueError, match="pass nodes= explicitly"):
        nf.sample(net, X1, 10, deformation=nf.Phi4(1.0, BOX1))
    ens = nf.sample(net, X1, 10, deformation=nf.Phi4(1.0, BOX1, nodes=16))
    rule = ens.quadrature
    assert rule.empirical and rule.nodes.tolist() == [16] and rule.points.shape == (16, 1)
    assert 1e-10 < rule.error_bound < 1.0  # stated, far above the smooth networks' errors
    expected = _probe_error(net, BOX1, 16)
    assert rule.error_bound == pytest.approx(expected, rel=1e-6)
