"""Update rules on the flat parameter vector."""

import numpy as np
import pytest

import deltaprop as dp


def test_gradient_descent_is_theta_minus_eta_g():
    theta = np.array([1.0, -2.0, 3.0])
    dp.GradientDescent(0.5).step(theta, np.array([2.0, 2.0, -4.0]))
    np.testing.assert_array_equal(theta, [0.0, -3.0, 5.0])


def test_momentum_and_nesterov_follow_their_recurrences():
    theta, v = np.array([1.0]), np.array([0.0])
    opt = dp.Momentum(0.1, momentum=0.9)
    for g in (1.0, 2.0, -1.0):
        v = 0.9 * v - 0.1 * g
        expected = theta + v
        opt.step(theta, np.array([g]))
        np.testing.assert_allclose(theta, expected)
    theta, v = np.array([1.0]), np.array([0.0])
    opt = dp.Momentum(0.1, momentum=0.9, nesterov=True)
    for g in (1.0, 2.0, -1.0):
        v = 0.9 * v - 0.1 * g
        expected = theta + 0.9 * v - 0.1 * g
        opt.step(theta, np.array([g]))
        np.testing.assert_allclose(theta, expected)


def test_adam_matches_its_definition():
    # scikit-learn's form: ε is added to √v, not to the bias-corrected √v̂ (PyTorch's form);
    # a large ε tells the two apart
    theta = np.array([0.5, -0.5])
    m = v = np.zeros(2)
    opt = dp.Adam(0.01, eps=1e-3)
    reference = theta.copy()
    for t, g in enumerate([np.array([1.0, -2.0]), np.array([0.5, 0.1])], start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        rate = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        reference = reference - rate * m / (np.sqrt(v) + 1e-3)
        opt.step(theta, g)
    np.testing.assert_allclose(theta, reference, rtol=1e-14)


def test_state_dict_round_trip_continues_identically():
    a, b = dp.Adam(0.01), dp.Adam(0.01)
    ta, tb = np.ones(3), np.ones(3)
    g = np.array([0.3, -0.2, 0.1])
    a.step(ta, g)
    b.load_state_dict(a.state_dict())
    tb[...] = ta
    a.step(ta, g)
    b.step(tb, g)
    np.testing.assert_array_equal(ta, tb)


@pytest.mark.parametrize("rate", [0, -0.1, float("nan"), float("inf")])
def test_non_positive_learning_rate_is_refused(rate):
    for cls in (dp.GradientDescent, dp.Momentum, dp.Adam):
        with pytest.raises(dp.ConfigError, match="learning_rate"):
            cls(rate)


def test_bad_momentum_and_betas_are_refused():
    with pytest.raises(dp.ConfigError, match="momentum"):
        dp.Momentum(0.1, momentum=1.0)
    with pytest.raises(dp.ConfigError, match="beta2"):
        dp.Adam(beta2=1.5)


class PlainStep(dp.Optimizer):
    """An optimizer written against the base class: only ``step``."""

    def step(self, params, grad):
        params -= self.learning_rate * grad


@pytest.mark.parametrize("make", [lambda: dp.GradientDescent(0.1), lambda: PlainStep(0.1), dp.Adam])
def test_mini_batch_fit_is_evaluate_then_step_on_the_finished_gradient(make):
    net = dp.Network([4, 6, 3], "tanh", seed=0)
    theta0 = net.params.copy()
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    dp.fit(net, X, y, l2=0.05, optimizer=make(), epochs=2, batch_size=16, shuffle=False)
    trained = net.params.copy()
    np.copyto(net.params, theta0)
    objective, optimizer = dp.Objective(net, l2=0.05), make()
    for _ in range(2):
        for begin in range(0, 40, 16):
            rows = slice(begin, begin + 16)
            optimizer.step(net.params, objective.value_and_grad(X[rows], y[rows])[1])
    np.testing.assert_array_equal(trained, net.params)
    assert not np.array_equal(trained, theta0)
