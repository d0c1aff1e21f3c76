"""gradcheck reports per-layer errors and catches a wrong gradient."""

import numpy as np

import deltaprop as dp

from conftest import random_problem


def test_report_has_one_entry_per_layer_and_leaves_the_network_alone():
    net, X, y = random_problem([3, 5, 4, 3], "tanh", dtype="float32")
    before = net.params.copy()
    report = dp.gradcheck(net, X, y, l2=0.1)
    assert len(report.weights) == len(report.biases) == 3
    assert report.passed(1e-6) and "worst relative error" in str(report)
    np.testing.assert_array_equal(net.params, before)


def test_a_wrong_derivative_is_caught():
    wrong = dp.Activation(
        "bad-tanh",
        dp.get_activation("tanh").function,
        lambda z, out: np.copyto(out, 1.0),  # claims tanh′ = 1
        dp.get_activation("tanh").second_derivative,
    )
    net, X, y = random_problem([3, 5, 3], wrong)
    report = dp.gradcheck(net, X, y)
    assert report.weights[0] > 1e-2 and report.weights[1] < 1e-6
