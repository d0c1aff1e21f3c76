"""The loss and the backpropagated gradient agree (finite differences, float64)."""

import math
import warnings

import numpy as np
import pytest

import deltaprop as dp

from conftest import random_problem

DEPTH_SIZES = {1: [3, 3], 2: [3, 5, 3], 3: [3, 5, 4, 3], 4: [3, 4, 5, 4, 3]}


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("output", ["softmax", "identity", "sigmoid", "exp"])
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_gradient_matches_finite_differences(depth, activation, output, l2):
    net, X, Y = random_problem(DEPTH_SIZES[depth], activation, output, seed=depth)
    report = dp.gradcheck(net, X, Y, l2=l2)
    assert report.worst < 1e-5, str(report)
    assert len(report.weights) == depth


def test_multi_output_regression_k3_penalised():
    net, X, Y = random_problem([4, 6, 3], "tanh", "identity", n=25, seed=9)
    assert Y.shape[1] == 3
    assert dp.gradcheck(net, X, Y, l2=0.1).worst < 1e-6


def test_relu_derivative_is_zero_at_exact_zero():
    relu = dp.get_activation("relu")
    z = np.array([-1.0, 0.0, 2.0])
    out = np.empty(3)
    relu.derivative(z, out)
    np.testing.assert_array_equal(out, [0.0, 0.0, 1.0])
    # a hidden unit with pre-activation exactly 0 passes no gradient to its weights
    net = dp.Network([1, 1, 1], activation="relu", output="identity", dtype="float64")
    net.weights[0][...] = 1.0
    net.biases[0][...] = 0.0
    net.weights[1][...] = 2.0
    g = dp.Objective(net).value_and_grad(np.array([[0.0]]), np.array([1.0]))[1]
    W1_grad, b1_grad = g[0], g[net.n_weights]
    assert W1_grad == 0.0 and b1_grad == 0.0


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "identity"])
def test_second_derivative_matches_difference_of_first(name):
    act = dp.get_activation(name)
    a = np.linspace(-3, 3, 41) + 0.013  # avoid ReLU's kink
    eps = 1e-6
    z, zp, zm = (np.empty_like(a) for _ in range(3))
    act.function(a, z)
    act.function(a + eps, zp)
    act.function(a - eps, zm)
    d_plus, d_minus, second = (np.empty_like(a) for _ in range(3))
    act.derivative(zp, d_plus)
    act.derivative(zm, d_minus)
    act.second_derivative(z, second)
    np.testing.assert_allclose(second, (d_plus - d_minus) / (2 * eps), atol=1e-6)


def test_sigmoid_and_softmax_stay_finite_for_huge_inputs():
    a = np.array([[-1000.0, 0.0, 1000.0]])
    out = np.empty_like(a)
    dp.get_activation("sigmoid").function(a, out)
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.0]])
    net = dp.Network([1, 3], output="softmax", dtype="float64")
    net.weights[0][:, 0] = [-1000.0, 0.0, 1000.0]
    J = dp.Objective(net).value(np.array([[1.0]]), np.array([0]))
    assert J == pytest.approx(2000.0)  # −log f_0 computed from the logits, not log(0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_keeps_relative_precision_far_below_zero(dtype):
    a = np.array([-80.0, -40.0, -25.0, -17.5, -12.0, -3.0, 0.0, 3.0, 30.0], dtype=dtype)
    exact = [1 / (1 + math.exp(-float(x))) for x in a]  # float64 reference at the same a
    out = np.empty_like(a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e^(−a) may overflow for tiny σ; no warning for that
        dp.get_activation("sigmoid").function(a, out)
    np.testing.assert_allclose(out, exact, rtol=4 * np.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("output", ["softmax", "identity", "sigmoid", "exp"])
@pytest.mark.parametrize("sizes", [[3, 5, 4, 3], [6, 7, 1]])
def test_either_buffer_layout_gives_the_same_loss_and_gradient(output, sizes):
    from deltaprop.backprop import Workspace, loss_and_grad_sum

    if output == "softmax" and sizes[-1] == 1:
        pytest.skip("softmax needs two classes")
    net, X, Y = random_problem(sizes, "tanh", output, n=23, seed=5)
    results = []
    for feature_major in (True, False):
        workspace = Workspace(net, 40, feature_major)  # taller than the block: short views
        grad = np.zeros_like(net.params)
        loss, _ = loss_and_grad_sum(net, X, Y, grad, workspace)
        results.append((loss, grad))
    (loss_f, grad_f), (loss_r, grad_r) = results
    assert loss_f == pytest.approx(loss_r, rel=1e-13)
    np.testing.assert_allclose(grad_f, grad_r, rtol=1e-12, atol=1e-14)


def test_first_rows_of_a_feature_major_buffer_is_a_contiguous_view_of_its_start():
    from deltaprop.network import first_rows, layer_buffer, product_into

    buffer = layer_buffer(10, 3, np.float64)
    assert buffer.shape == (10, 3) and buffer.T.flags.c_contiguous
    view = first_rows(buffer, 4)
    assert view.shape == (4, 3) and view.T.flags.c_contiguous
    assert np.shares_memory(view, buffer.T.reshape(-1)[:12])
    A, B = np.arange(12.0).reshape(4, 3), np.arange(6.0).reshape(3, 2)
    for out in (np.empty((4, 2)), first_rows(layer_buffer(9, 2, np.float64), 4)):
        product_into(A, B, out)
        np.testing.assert_array_equal(out, A @ B)
    assert first_rows(layer_buffer(10, 3, np.float64, feature_major=False), 4).flags.c_contiguous
