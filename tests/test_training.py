"""The fit loop: the lecture's update by hand, parity with scikit-learn, determinism,
mini-batches, callbacks, divergence and Ctrl-C."""

import math

import numpy as np
import pytest

import deltaprop as dp

from conftest import AdamStoppedByCtrlC, random_problem


def sig(a):
    return 1 / (1 + math.exp(-a))


def test_one_regression_step_by_hand():
    """2-2-1 sigmoid network, one sample x = (1, 2), y = 1, η = 0.5, λ = 0."""
    net = dp.Network([2, 2, 1], activation="sigmoid", output="identity", dtype="float64")
    net.weights[0][...] = [[0.1, 0.2], [0.3, -0.1]]
    net.biases[0][...] = [0.0, 0.1]
    net.weights[1][...] = [[0.5, -0.4]]
    net.biases[1][...] = [0.2]
    x, y, eta = (1.0, 2.0), 1.0, 0.5
    a1 = [0.1 * 1 + 0.2 * 2 + 0.0, 0.3 * 1 - 0.1 * 2 + 0.1]  # = 0.5, 0.2
    z1 = [sig(a1[0]), sig(a1[1])]
    f = 0.5 * z1[0] - 0.4 * z1[1] + 0.2
    d2 = f - y  # δ^(2) = f − Y
    gW2 = [d2 * z1[0], d2 * z1[1]]
    gb2 = d2
    d1 = [z1[m] * (1 - z1[m]) * [0.5, -0.4][m] * d2 for m in range(2)]  # σ′(a) ∘ W^(2)ᵀ δ^(2)
    gW1 = [[d1[m] * x[j] for j in range(2)] for m in range(2)]
    history = dp.fit(net, np.array([x]), np.array([y]), optimizer=dp.GradientDescent(eta), epochs=1)
    assert history["objective"][0] == pytest.approx(0.5 * (f - y) ** 2)
    W1 = [[0.1, 0.2], [0.3, -0.1]]
    expected_W1 = [[W1[m][j] - eta * gW1[m][j] for j in range(2)] for m in range(2)]
    np.testing.assert_allclose(net.weights[0], expected_W1, rtol=1e-14)
    np.testing.assert_allclose(net.biases[0], [0.0 - eta * d1[0], 0.1 - eta * d1[1]], rtol=1e-14)
    np.testing.assert_allclose(
        net.weights[1], [[0.5 - eta * gW2[0], -0.4 - eta * gW2[1]]], rtol=1e-14
    )
    np.testing.assert_allclose(net.biases[1], [0.2 - eta * gb2], rtol=1e-14)


def test_one_classification_step_by_hand_with_penalty_and_two_samples():
    """1-2-3 tanh network, softmax, samples x = 1 (class 0) and x = −2 (class 2), λ = 0.1."""
    net = dp.Network([1, 2, 3], activation="tanh", output="softmax", dtype="float64")
    W1, b1 = [0.5, -1.0], [0.0, 0.5]
    W2, b2 = [[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]], [0.0, 0.1, -0.1]
    net.weights[0][:, 0] = W1
    net.biases[0][...] = b1
    net.weights[1][...] = W2
    net.biases[1][...] = b2
    samples, eta, lam = [(1.0, 0), (-2.0, 2)], 0.3, 0.1
    gW1, gb1 = [0.0, 0.0], [0.0, 0.0]
    gW2, gb2 = [[0.0] * 2 for _ in range(3)], [0.0] * 3
    loss = 0.0
    for x, label in samples:
        z1 = [math.tanh(W1[m] * x + b1[m]) for m in range(2)]
        a2 = [W2[k][0] * z1[0] + W2[k][1] * z1[1] + b2[k] for k in range(3)]
        total = sum(math.exp(a) for a in a2)
        f = [math.exp(a) / total for a in a2]
        loss += -math.log(f[label])
        d2 = [f[k] - (k == label) for k in range(3)]
        d1 = [(1 - z1[m] ** 2) * sum(W2[k][m] * d2[k] for k in range(3)) for m in range(2)]
        for k in range(3):
            gb2[k] += d2[k] / 2
            for m in range(2):
                gW2[k][m] += d2[k] * z1[m] / 2
        for m in range(2):
            gW1[m] += d1[m] * x / 2
            gb1[m] += d1[m] / 2
    squares = sum(w * w for w in W1) + sum(w * w for row in W2 for w in row)
    X = np.array([[1.0], [-2.0]])
    history = dp.fit(net, X, np.array([0, 2]), l2=lam, optimizer=dp.GradientDescent(eta), epochs=1)
    assert history["objective"][0] == pytest.approx(loss / 2 + lam / 2 * squares, rel=1e-14)
    np.testing.assert_allclose(
        net.weights[0][:, 0], [W1[m] - eta * (gW1[m] + lam * W1[m]) for m in range(2)]
    )
    np.testing.assert_allclose(net.biases[0], [b1[m] - eta * gb1[m] for m in range(2)])
    np.testing.assert_allclose(
        net.weights[1],
        [[W2[k][m] - eta * (gW2[k][m] + lam * W2[k][m]) for m in range(2)] for k in range(3)],
    )
    np.testing.assert_allclose(net.biases[1], [b2[k] - eta * gb2[k] for k in range(3)])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_forty_steps_equal_scikit_learn_full_batch_sgd(task):
    nn = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(0)
    n, lam, eta = 60, 0.01, 0.2
    X = rng.standard_normal((n, 4))
    if task == "classification":
        y = rng.integers(0, 3, n)
        net = dp.Network([4, 8, 6, 3], activation="tanh", dtype="float64", seed=1)
        model = nn.MLPClassifier
    else:
        y = rng.standard_normal((n, 2))
        net = dp.Network(
            [4, 8, 6, 2], activation="relu", output="identity", dtype="float64", seed=1
        )
        model = nn.MLPRegressor
    sk = model(
        hidden_layer_sizes=(8, 6),
        activation=net.activations[0].name.replace("sigmoid", "logistic"),
        solver="sgd",
        batch_size=n,
        momentum=0,
        learning_rate="constant",
        learning_rate_init=eta,
        alpha=lam * n,
        shuffle=False,
        random_state=0,
    )
    extra = {"classes": np.arange(3)} if task == "classification" else {}
    sk.partial_fit(X, y, **extra)  # builds the model; its weights are then replaced with ours
    sk.coefs_ = [W.T.copy() for W in net.weights]
    sk.intercepts_ = [b.copy() for b in net.biases]
    for _ in range(40):
        sk.partial_fit(X, y)
    dp.fit(net, X, y, l2=lam, optimizer=dp.GradientDescent(eta), epochs=40)
    for W, coef in zip(net.weights, sk.coefs_):
        np.testing.assert_allclose(W, coef.T, atol=1e-9, rtol=0)
    for b, intercept in zip(net.biases, sk.intercepts_):
        np.testing.assert_allclose(b, intercept, atol=1e-9, rtol=0)


def test_user_loop_equals_fit():
    net, X, y = random_problem([3, 6, 3], "tanh", n=40, seed=4)
    twin = net.copy()
    dp.fit(net, X, y, l2=0.01, optimizer=dp.GradientDescent(0.3), epochs=15)
    objective, optimizer = dp.Objective(twin, l2=0.01), dp.GradientDescent(0.3)
    for _ in range(15):
        J, g = objective.value_and_grad(X, y)
        optimizer.step(twin.params, g)
    np.testing.assert_array_equal(net.params, twin.params)


def test_full_batch_gd_learns_and_history_has_the_columns():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    net = dp.Network([2, 16, 16, 2], activation="tanh", seed=0)
    history = dp.fit(
        net, X, y, optimizer=dp.GradientDescent(0.5), epochs=300, validation=(X[:50], y[:50])
    )
    assert len(history) == 300
    assert history["objective"][-1] < 0.5 * history["objective"][0]
    assert history["accuracy"][-1] > 0.9
    for key in ("objective", "loss", "grad_norm", "accuracy", "val_loss", "val_accuracy", "time"):
        assert np.isfinite(history[key]).all(), key
    assert np.all(np.diff(history["time"]) >= 0)


def test_same_seed_same_result_for_mini_batches():
    def run():
        net, X, y = random_problem([3, 8, 3], "relu", n=100, seed=5, dtype="float32")
        dp.fit(net, X, y, optimizer=dp.Adam(0.01), epochs=5, batch_size=16, seed=7)
        return net.params

    np.testing.assert_array_equal(run(), run())


def test_mini_batch_penalty_does_not_depend_on_batch_size():
    net, X, y = random_problem([3, 4, 3], "tanh", n=32, seed=6)
    nets = [net.copy() for _ in range(2)]
    dp.fit(nets[0], X, y, l2=0.5, optimizer=dp.GradientDescent(0.1), epochs=1, batch_size=32)
    dp.fit(nets[1], X, y, l2=0.5, optimizer=dp.GradientDescent(0.1), epochs=1)
    np.testing.assert_allclose(nets[0].params, nets[1].params)


def test_divergence_restores_last_finite_parameters_and_suggests_smaller_eta():
    net, X, y = random_problem([3, 8, 1], "identity", "identity", n=50, seed=2)
    y = y * 1e3
    with pytest.raises(dp.DivergenceError, match="smaller learning rate") as info:
        dp.fit(net, X, y, optimizer=dp.GradientDescent(50.0), epochs=500)
    assert np.isfinite(net.params).all()
    assert np.isfinite(dp.Objective(net).value(X, y))
    assert "diverged" in info.value.history.stop_reason
    with pytest.warns(RuntimeWarning, match="diverged"):
        dp.fit(net, X, y, optimizer=dp.GradientDescent(50.0), epochs=500, on_divergence="warn")
    assert np.isfinite(net.params).all()


def test_early_stopping_restores_the_best_parameters():
    net, X, y = random_problem([3, 32, 3], "relu", n=40, seed=1)
    Xv, yv = random_problem([3, 32, 3], "relu", n=40, seed=99)[1:]
    stopper = dp.EarlyStopping(patience=5)
    history = dp.fit(
        net,
        X,
        y,
        optimizer=dp.GradientDescent(0.5),
        epochs=2000,
        validation=(Xv, yv),
        callbacks=[stopper],
    )
    assert len(history) < 2000 and "early stopping" in history.stop_reason
    best = history["val_loss"].min()
    assert dp.Objective(net).value(Xv, yv) == pytest.approx(best, rel=1e-12)


def test_budget_stops_by_epochs():
    net, X, y = random_problem([3, 4, 3], n=10)
    history = dp.fit(net, X, y, epochs=100, callbacks=[dp.Budget(epochs=7)])
    assert len(history) == 7 and "budget" in history.stop_reason


def test_ctrl_c_keeps_best_parameters_and_the_history():
    class Interrupt(dp.Callback):
        def on_epoch_end(self, state, record):
            if state.epoch == 9:
                raise KeyboardInterrupt

    net, X, y = random_problem([3, 6, 3], "tanh", n=30, seed=3)
    with pytest.raises(dp.TrainingInterrupted) as info:
        dp.fit(net, X, y, optimizer=dp.GradientDescent(0.2), epochs=50, callbacks=[Interrupt()])
    history = info.value.history
    assert len(history) == 10 and "interrupted" in history.stop_reason
    assert dp.Objective(net).value(X, y) == pytest.approx(history["objective"].min(), rel=1e-12)


def test_ctrl_c_in_the_first_epoch_leaves_the_starting_parameters():
    net, X, y = random_problem([3, 6, 3], "tanh", n=30, seed=3)
    start = net.params.copy()
    optimizer = AdamStoppedByCtrlC(0.1, at=2)  # the third of three mini-batches
    with pytest.raises(dp.TrainingInterrupted) as info:
        dp.fit(net, X, y, optimizer=optimizer, epochs=5, batch_size=10)
    assert len(info.value.history) == 0 and optimizer.steps == 2
    assert net.params.tobytes() == start.tobytes()


def test_a_continued_history_forgets_how_its_last_run_ended():
    net, X, y = random_problem([3, 6, 3], "tanh", n=30, seed=3)
    history = dp.fit(net, X, y, epochs=2)
    history.stop_reason = "interrupted (Ctrl-C); the best parameters so far were kept"
    assert dp.fit(net, X, y, epochs=2, history=history).stop_reason == ""


def test_resuming_with_history_continues_bit_identically():
    net, X, y = random_problem([3, 6, 3], "tanh", n=30, seed=3)
    twin = net.copy()
    dp.fit(net, X, y, optimizer=dp.GradientDescent(0.2), epochs=20)
    optimizer = dp.GradientDescent(0.2)
    history = dp.fit(twin, X, y, optimizer=optimizer, epochs=8)
    history = dp.fit(twin, X, y, optimizer=optimizer, epochs=12, history=history)
    assert len(history) == 20
    np.testing.assert_array_equal(net.params, twin.params)


def test_bad_fit_arguments_are_refused():
    net, X, y = random_problem([3, 4, 3], n=10)
    with pytest.raises(dp.ConfigError, match="batch_size"):
        dp.fit(net, X, y, batch_size=0)
    with pytest.raises(dp.ConfigError, match="epochs"):
        dp.fit(net, X, y, epochs=-1)
    with pytest.raises(dp.ConfigError, match="l2"):
        dp.fit(net, X, y, l2=-0.1)
