import re
import warnings

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.diagnostics import SharpnessTracker, StepSizeWarning


def regression(seed=0, n=30):
    """A linear least-squares model (J is a quadratic) and a small tanh network."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    Y = X @ rng.standard_normal((3, 2)) + 0.1 * rng.standard_normal((n, 2))
    linear = dp.Network([3, 2], output="identity", dtype="float64", seed=seed)
    deep = dp.Network([3, 8, 8, 2], activation="tanh", output="identity", dtype="float64", seed=0)
    return linear, deep, X, Y


def test_records_sharpness_every_n_epochs_at_the_records_parameters():
    _, net, X, Y = regression()
    start = net.copy()
    tracker = SharpnessTracker(every=2, data=(X, Y))
    history = dp.fit(
        net, X, Y, l2=1e-3, optimizer=dp.GradientDescent(0.05), epochs=5, callbacks=[tracker]
    )
    measured = history["sharpness"]
    assert np.isnan(measured[[1, 3]]).all() and np.isfinite(measured[[0, 2, 4]]).all()
    assert measured[0] == pytest.approx(dp.sharpness(start, X, Y, l2=1e-3)[0], rel=1e-8)
    dp.fit(start, X, Y, l2=1e-3, optimizer=dp.GradientDescent(0.05), epochs=2)
    assert measured[2] == pytest.approx(dp.sharpness(start, X, Y, l2=1e-3)[0], rel=1e-8)
    np.testing.assert_allclose(history["stability_threshold"][[0, 2, 4]], 2 / 0.05)


def test_top_k_and_a_fixed_subset_of_rows():
    _, net, X, Y = regression()
    rows = np.arange(0, 30, 3)
    tracker = SharpnessTracker(every=1, data=(X, Y), subset=rows, k=2)
    history = dp.fit(
        net.copy(), X, Y, optimizer=dp.GradientDescent(0.05), epochs=2, callbacks=[tracker]
    )
    expected = dp.sharpness(net, X[rows], Y[rows], k=2)
    np.testing.assert_allclose(
        [history["sharpness"][0], history["sharpness_2"][0]], expected, rtol=1e-8
    )
    assert history["sharpness"][0] > history["sharpness_2"][0]


def test_warns_when_gradient_descent_starts_above_two_over_sharpness():
    net, _, X, Y = regression()
    top = dp.sharpness(net, X, Y)[0]
    with pytest.warns(StepSizeWarning) as caught:
        dp.fit(
            net.copy(),
            X,
            Y,
            optimizer=dp.GradientDescent(1.1 * 2 / top),
            epochs=1,
            callbacks=[SharpnessTracker(data=(X, Y))],
        )
    message = str(caught[0].message)
    assert f"{1.1 * 2 / top:.4g}" in message and f"{2 / top:.4g}" in message
    assert f"λ_max = {top:.4g}" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error", StepSizeWarning)
        dp.fit(
            net.copy(),
            X,
            Y,
            optimizer=dp.GradientDescent(0.9 * 2 / top),
            epochs=1,
            callbacks=[SharpnessTracker(data=(X, Y))],
        )


def test_divergence_reports_the_last_sharpness_and_the_largest_stable_step():
    net, _, X, Y = regression()
    top = dp.sharpness(net, X, Y)[0]
    tracker = SharpnessTracker(every=10, data=(X, Y), warn=False)
    with pytest.raises(dp.DivergenceError) as caught:
        dp.fit(
            net,
            X,
            Y,
            optimizer=dp.GradientDescent(1.5 * 2 / top),
            epochs=10_000,
            callbacks=[tracker],
        )
    message = str(caught.value)
    match = re.search(r"λ_max = ([\d.e+-]*\d), .* η = 2/λ_max = ([\d.e+-]*\d)", message)
    assert match, message
    assert float(match[1]) == pytest.approx(top, rel=1e-3)  # a quadratic: constant Hessian
    assert float(match[2]) == pytest.approx(2 / top, rel=1e-3)
    assert caught.value.history.stop_reason == message


def test_divergence_message_without_a_tracker_is_unchanged():
    net, _, X, Y = regression()
    with pytest.raises(dp.DivergenceError) as caught:
        dp.fit(net, X, Y, optimizer=dp.GradientDescent(50.0), epochs=10_000)
    assert "λ_max" not in str(caught.value)


def test_bad_configuration_names_the_fix():
    _, net, X, Y = regression()
    with pytest.raises(dp.ConfigError, match="needs the training data"):
        dp.fit(net, X, Y, epochs=1, callbacks=[SharpnessTracker(every=1)])
    with pytest.raises(dp.ConfigError, match="every"):
        SharpnessTracker(every=0)
    with pytest.raises(dp.DataError):
        dp.fit(net, X, Y, epochs=1, callbacks=[SharpnessTracker(data=(X[:, :2], Y))])


def test_mlp_classifier_history_records_sharpness():
    from sklearn.exceptions import ConvergenceWarning

    X = np.random.default_rng(0).standard_normal((60, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)

    def classifier(max_iter, callbacks=None):
        clf = dp.MLPClassifier(
            hidden_layer_sizes=(8,), activation="tanh", solver="gd", learning_rate_init=0.2,
            max_iter=max_iter, alpha=0.5, callbacks=callbacks, random_state=0,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return clf.fit(X, y)

    clf = classifier(11, [SharpnessTracker(every=5, data=(X, y))])
    measured = clf.history_["sharpness"]
    assert np.isfinite(measured[[0, 5, 10]]).all() and np.isnan(measured[[1, 4, 9]]).all()
    np.testing.assert_allclose(clf.history_["stability_threshold"][[0, 5, 10]], 2 / 0.2)
    # record 10 describes θ_10, which a 10-step fit from the same seed ends at; λ = α/n
    after_ten = classifier(10).network_
    expected = dp.sharpness(after_ten, X, y, l2=0.5 / len(X))[0]
    assert measured[10] == pytest.approx(expected, rel=1e-7)
