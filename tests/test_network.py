"""Network layout, initialisation, forward pass and configuration errors."""

import warnings

import numpy as np
import pytest

import deltaprop as dp


def test_params_layout_is_all_weights_then_all_biases_with_views():
    net = dp.Network([3, 4, 2], activation="tanh", seed=0)
    assert [W.shape for W in net.weights] == [(4, 3), (2, 4)]
    assert [b.shape for b in net.biases] == [(4,), (2,)]
    assert net.params.shape == (3 * 4 + 4 * 2 + 4 + 2,)
    np.testing.assert_array_equal(net.params[:12], net.weights[0].ravel())
    np.testing.assert_array_equal(net.params[12:20], net.weights[1].ravel())
    net.weights[1][0, 0] = 42.0
    assert net.params[12] == 42.0
    net.params[20] = -7.0
    assert net.biases[0][0] == -7.0


def test_same_seed_same_parameters_and_generator_is_accepted():
    a = dp.Network([5, 8, 3], seed=11)
    b = dp.Network([5, 8, 3], seed=11)
    c = dp.Network([5, 8, 3], seed=np.random.default_rng(11))
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.params, c.params)
    assert not np.array_equal(a.params, dp.Network([5, 8, 3], seed=12).params)


def test_initialisation_scales_follow_the_activation():
    he = dp.Network([400, 300, 2], activation="relu", seed=0).weights[0]
    glorot = dp.Network([400, 300, 2], activation="tanh", seed=0).weights[0]
    assert he.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert np.abs(glorot).max() <= np.sqrt(6 / 700)
    assert glorot.std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)


def test_forward_gives_probabilities_and_matches_the_lecture_formula():
    net = dp.Network([2, 3, 4], activation="sigmoid", dtype="float64", seed=1)
    X = np.random.default_rng(0).standard_normal((5, 2))
    f = net.forward(X)
    z1 = 1 / (1 + np.exp(-(X @ net.weights[0].T + net.biases[0])))
    a2 = z1 @ net.weights[1].T + net.biases[1]
    expected = np.exp(a2) / np.exp(a2).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(f, expected, rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), expected.argmax(axis=1))


def test_depth_one_float32_default_and_per_layer_activations():
    assert dp.Network([4, 3]).params.dtype == np.float32
    net = dp.Network([2, 3, 3, 1], activation=["tanh", "logistic"], output="identity")
    assert [a.name for a in net.activations] == ["tanh", "sigmoid"]
    assert net.forward(np.zeros((2, 2))).shape == (2, 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sizes": [3, 0, 2]}, "positive"),
        ({"sizes": [3]}, "at least"),
        ({"sizes": [3, 2.5, 2]}, "positive integer"),
        ({"sizes": [3, 4, 2], "activation": "swish"}, "unknown activation"),
        ({"sizes": [3, 4, 2], "activation": ["tanh", "relu"]}, "2 activations for 1 hidden"),
        ({"sizes": [3, 2], "output": "softplus"}, "unknown output"),
        ({"sizes": [3, 2], "dtype": "float16"}, "dtype"),
    ],
)
def test_bad_configuration_is_refused(kwargs, message):
    with pytest.raises(dp.ConfigError, match=message):
        dp.Network(**kwargs)


def test_copy_and_astype_are_independent():
    net = dp.Network([2, 3, 2], seed=0)
    twin = net.copy()
    twin.weights[0][0, 0] += 1
    assert net.weights[0][0, 0] != twin.weights[0][0, 0]
    wide = net.astype("float64")
    assert wide.params.dtype == np.float64 and np.shares_memory(wide.weights[0], wide.params)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_all_finite_finds_every_nan_and_infinity(dtype, layout):
    from deltaprop.network import all_finite

    base = np.random.default_rng(0).standard_normal((37, 11)).astype(dtype)
    for bad in (np.nan, np.inf, -np.inf):
        for row, col in [(0, 0), (36, 10), (18, 5)]:
            X = base.copy()
            X[row, col] = bad
            X = {"C": X, "F": np.asfortranarray(X), "strided": X[:, ::2]}[layout]
            if layout == "strided" and col % 2:
                assert all_finite(X)
            else:
                assert not all_finite(X), (bad, row, col)
    X = {"C": base, "F": np.asfortranarray(base), "strided": base[:, ::2]}[layout]
    assert all_finite(X)
    assert all_finite(np.arange(12).reshape(3, 4))  # integers are always finite


def test_all_finite_accepts_huge_finite_values_whose_sum_overflows():
    from deltaprop.network import all_finite

    X = np.full((4, 3), np.finfo(np.float32).max, np.float32)
    with np.errstate(over="ignore"):
        assert not np.isfinite(X.sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow is expected: no RuntimeWarning for it
        assert all_finite(X) and all_finite(X.T)
    with pytest.raises(dp.DataError, match=r"row 2, column 1"):
        X[2, 1] = np.nan
        dp.Network([3, 2]).forward(X)


def test_float64_values_beyond_a_float32_network_are_named():
    net = dp.Network([2, 3, 2], dtype="float32", seed=0)
    X = np.array([[0.5, -4e38], [1.0, 2.0]])
    with pytest.raises(dp.DataError, match=r"-4e\+38 \(row 0, column 1\).*float32"):
        net.forward(X)
    with pytest.raises(dp.DataError, match="float64 network"):
        dp.Objective(net).value(X, np.array([0, 1]))
    assert np.isfinite(dp.Network([2, 3, 2], dtype="float64", seed=0).forward(X)).all()
