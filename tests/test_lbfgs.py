import numpy as np
import pytest

import deltaprop as dp
from deltaprop.lbfgs import fit_lbfgs

from conftest import random_problem


def test_lbfgs_reaches_a_stationary_point_of_the_objective():
    net, X, y = random_problem([3, 6, 3], n=60, seed=1)
    J0, g0 = dp.Objective(net, l2=1e-2).value_and_grad(X, y)
    history = fit_lbfgs(net, X, y, l2=1e-2, max_iter=500, tol=1e-7)
    J, g = dp.Objective(net, l2=1e-2).value_and_grad(X, y)
    assert J < J0
    assert history.optimize_result.status == 0
    assert history.optimize_result.message.startswith("CONVERGENCE")
    assert history["objective"][-1] == pytest.approx(J, rel=1e-12)
    assert history.stop_reason.startswith("L-BFGS-B")
    # L-BFGS-B stops here on the relative reduction of J (factr·ε), where the gradient left
    # depends on the BLAS's rounding (max |g| from 0.21 to 6.8e-6 with OpenBLAS's SkylakeX
    # kernels, 1.03e-5 with its Haswell ones on an Intel Xeon, 2.4e-5 with them on a Zen 2):
    # over 10³ times smaller; and a second run from there, to a tighter tolerance, finds
    # nothing left to gain (3.9e-9 of J on the Zen 2)
    assert np.abs(g).max() < 1e-3 * np.abs(g0).max()
    fit_lbfgs(net, X, y, l2=1e-2, max_iter=500, tol=1e-9)
    assert dp.Objective(net, l2=1e-2).value(X, y) > J - 1e-7 * J


def test_one_record_per_iteration_with_fit_columns():
    net, X, y = random_problem([2, 5, 2], n=40, seed=2)
    history = fit_lbfgs(net, X, y, max_iter=7, tol=0.0)
    assert len(history) == history.optimize_result.nit == 7
    assert history.optimize_result.status == 1  # the iteration limit was reached
    for column in ("objective", "loss", "grad_norm", "accuracy", "time"):
        assert np.isfinite(history[column]).all()
    # each record describes its iterate: J and L_S at the end agree with the network
    objective = dp.Objective(net)
    assert history["objective"][-1] == pytest.approx(objective.value(X, y), rel=1e-12)
    assert np.all(np.diff(history["objective"]) <= 1e-12)  # L-BFGS-B is a descent method


def test_sample_weights_equal_repeated_samples():
    net, X, y = random_problem([2, 4, 2], n=12, seed=3)
    weights = np.array([0, 1, 2, 3] * 3, dtype=float)
    weighted, repeated = net.copy(), net.copy()
    fit_lbfgs(weighted, X, y, l2=1e-3, max_iter=20, sample_weight=weights)
    rows = np.repeat(np.arange(12), weights.astype(int))
    fit_lbfgs(repeated, X[rows], y[rows], l2=1e-3, max_iter=20)
    np.testing.assert_allclose(weighted.params, repeated.params, rtol=1e-6, atol=1e-8)


def test_float32_network_and_callbacks_that_stop():
    net, X, y = random_problem([2, 4, 1], output="identity", n=30, dtype="float32", seed=4)

    class StopAfterThree(dp.Callback):
        def on_epoch_end(self, state, record):
            if len(state.history) == 3:
                state.request_stop("three iterations")

    history = fit_lbfgs(net, X, y, callbacks=[StopAfterThree()])
    assert len(history) == 3 and history.stop_reason == "three iterations"
    assert net.params.dtype == np.float32
    assert history["objective"][-1] == pytest.approx(dp.Objective(net).value(X, y), rel=1e-5)


def test_continues_a_history_and_validates_arguments():
    net, X, y = random_problem([2, 3, 2], n=20, seed=5)
    first = fit_lbfgs(net, X, y, max_iter=3, tol=0.0)
    both = fit_lbfgs(net, X, y, max_iter=2, tol=0.0, history=first)
    assert len(both) == 5 and both["time"][-1] >= both["time"][2]
    for bad in ({"max_iter": 0}, {"max_fun": 1.5}, {"tol": -1.0}):
        with pytest.raises(dp.ConfigError):
            fit_lbfgs(net, X, y, **bad)
    with pytest.raises(dp.DataError):
        fit_lbfgs(net, X[:, :1], y)
