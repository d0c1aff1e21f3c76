import sys

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.hessian import Hessian, choose_rows, hvp, sharpness

from conftest import random_problem

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu"]
OUTPUTS = ["softmax", "identity", "sigmoid", "exp"]


def gradient_difference(net, X, Y, v, l2=0.0, sample_weight=None, eps=1e-5):
    """The test oracle: (g(θ + εv) − g(θ − εv)) / 2ε."""
    objective, theta = dp.Objective(net, l2=l2), net.params.copy()
    grads = []
    for sign in (1, -1):
        net.params[:] = theta + sign * eps * v
        grads.append(objective.value_and_grad(X, Y, sample_weight)[1].copy())
    net.params[:] = theta
    return (grads[0] - grads[1]) / (2 * eps)


def linear_problem(n=40, d=10, K=7, l2=0.05, seed=0):
    """A single identity layer with squared loss and its Hessian in closed form: per output
    k, the block [XᵀX/n + λI, Xᵀ1/n; 1ᵀX/n, 1] on (W_k, b_k), θ = [all W | all b]."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + rng.uniform(-1, 1, d)
    Y = rng.standard_normal((n, K))
    net = dp.Network([d, K], output="identity", dtype="float64", seed=seed)
    block = np.block(
        [
            [X.T @ X / n + l2 * np.eye(d), X.mean(axis=0)[:, None]],
            [X.mean(axis=0)[None, :], np.ones((1, 1))],
        ]
    )
    H = np.zeros((net.params.size,) * 2)
    for k in range(K):
        index = np.r_[k * d : (k + 1) * d, K * d + k]
        H[np.ix_(index, index)] = block
    return net, X, Y, l2, H


def test_closed_form_hessian_of_an_identity_layer():
    net, X, Y, l2, H = linear_problem()
    v = np.random.default_rng(1).standard_normal(net.params.size)
    np.testing.assert_allclose(hvp(net, X, Y, v, l2=l2), H @ v, rtol=1e-12, atol=1e-12)
    top = np.linalg.eigvalsh(H)[::-1]
    assert net.params.size > 64  # the Lanczos path, not the dense fallback
    values = sharpness(net, X, Y, l2=l2, k=3, seed=0)
    np.testing.assert_allclose(values, top[:3], rtol=1e-8)
    assert sharpness(net, X, Y, l2=l2)[0] == pytest.approx(top[0], rel=1e-8)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_hvp_matches_gradient_differences_and_is_symmetric(activation, output, depth):
    sizes = [3] + [4] * (depth - 1) + [3]
    net, X, Y = random_problem(sizes, activation, output, n=13, seed=depth)
    v = np.random.default_rng(depth).standard_normal(net.params.size)
    exact = hvp(net, X, Y, v, l2=0.1)
    oracle = gradient_difference(net, X, Y, v, l2=0.1)
    scale = np.abs(oracle).max()
    assert np.abs(exact - oracle).max() <= 1e-7 * scale
    H = Hessian(net, X, Y, l2=0.1, chunk_size=5).dense()  # three chunks
    assert np.abs(H - H.T).max() <= 1e-12 * np.abs(H).max()
    np.testing.assert_allclose(H @ v, exact, rtol=1e-10, atol=1e-12 * scale)


def test_a_difference_of_gradients_is_not_symmetric_to_rounding():
    """What the symmetry test above would catch: columns by finite differences."""
    net, X, Y = random_problem([3, 4, 3], "tanh", "softmax", n=13)
    p = net.params.size
    H = np.column_stack([gradient_difference(net, X, Y, np.eye(p)[j]) for j in range(p)])
    assert np.abs(H - H.T).max() > 1e-12 * np.abs(H).max()  # the bound exact hvp meets


def test_sample_weights_scale_each_rows_curvature():
    net, X, Y = random_problem([3, 5, 2], "sigmoid", "softmax", n=12)
    w = np.random.default_rng(3).uniform(0.2, 2.0, len(X))
    v = np.random.default_rng(4).standard_normal(net.params.size)
    exact = hvp(net, X, Y, v, l2=0.01, sample_weight=w)
    oracle = gradient_difference(net, X, Y, v, l2=0.01, sample_weight=w)
    np.testing.assert_allclose(exact, oracle, rtol=1e-6, atol=1e-9)
    counts = np.array([1, 2, 3] * 4)  # integer weights = repeated rows
    repeated = hvp(net, np.repeat(X, counts, axis=0), np.repeat(Y, counts), v)
    np.testing.assert_allclose(hvp(net, X, Y, v, sample_weight=counts), repeated, rtol=1e-12)


def test_hvp_keeps_the_working_dtype_and_agrees_with_float64():
    net64, X, Y = random_problem([4, 8, 3], "tanh", "identity", n=20)
    net32 = net64.astype("float32")
    v = np.random.default_rng(0).standard_normal(net64.params.size)
    product = hvp(net32, X, Y, v)
    assert product.dtype == np.float32
    np.testing.assert_allclose(product, hvp(net64, X, Y, v), rtol=1e-4, atol=1e-5)
    assert Hessian(net32, X, Y).matvec(v).dtype == np.float32


def test_sharpness_agrees_with_the_dense_spectrum():
    net, X, Y = random_problem([5, 12, 12, 3], "tanh", "softmax", n=40)
    spectrum = np.linalg.eigvalsh(Hessian(net, X, Y, l2=1e-3).dense())[::-1]
    values, vectors = sharpness(net, X, Y, l2=1e-3, k=2, seed=1, return_eigenvectors=True)
    np.testing.assert_allclose(values, spectrum[:2], rtol=1e-7)
    residual = hvp(net, X, Y, vectors[:, 0], l2=1e-3) - values[0] * vectors[:, 0]
    assert np.linalg.norm(residual) < 1e-6 * values[0]
    warm = sharpness(net, X, Y, l2=1e-3, v0=vectors[:, 0])
    assert warm[0] == pytest.approx(values[0], rel=1e-8)


def test_sharpness_on_a_tiny_network_uses_the_dense_spectrum():
    net, X, Y = random_problem([1, 1], "tanh", "identity", n=6)
    values = sharpness(net, X, Y, k=2)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(Hessian(net, X, Y).dense())[::-1])


def test_sharpness_on_a_subset_of_rows():
    net, X, Y = random_problem([3, 6, 2], "relu", "softmax", n=30)
    rows = choose_rows(30, 10, seed=5)
    assert len(set(rows)) == 10 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, choose_rows(30, 10, seed=5))
    expected = sharpness(net, X[rows], Y[rows], seed=0)
    np.testing.assert_allclose(sharpness(net, X, Y, subset=10, seed=5), expected, rtol=1e-9)
    mask = np.zeros(30, bool)
    mask[rows] = True
    np.testing.assert_allclose(sharpness(net, X, Y, subset=mask, seed=0), expected, rtol=1e-9)


def test_bad_arguments_name_the_fix():
    net, X, Y = random_problem([3, 4, 2], "tanh", "softmax", n=10)
    with pytest.raises(dp.DataError, match="laid out like network.params"):
        hvp(net, X, Y, np.ones(3))
    with pytest.raises(dp.ConfigError, match="k must be an integer"):
        sharpness(net, X, Y, k=0)
    with pytest.raises(dp.DataError, match="subset indices"):
        sharpness(net, X, Y, subset=[0, 99])
    with pytest.raises(dp.ConfigError, match="l2"):
        hvp(net, X, Y, net.params, l2=-1)


def test_sharpness_without_scipy_names_the_extra(monkeypatch):
    net, X, Y = random_problem([3, 4, 2], "tanh", "softmax", n=10)
    monkeypatch.setitem(sys.modules, "scipy.sparse.linalg", None)
    with pytest.raises(ImportError, match=r"deltaprop\[scipy\]"):
        sharpness(net, X, Y)
    assert hvp(net, X, Y, net.params).shape == net.params.shape  # hvp needs NumPy only


@pytest.mark.parametrize("factor, converges", [(0.98, True), (1.05, False)])
def test_gradient_descent_on_a_quadratic_is_stable_exactly_below_two_over_sharpness(
    factor, converges
):
    net, X, Y, l2, H = linear_problem(n=30, d=4, K=2, l2=0.0)
    top = sharpness(net, X, Y, k=1)[0]
    eta = factor * 2 / top
    if converges:
        history = dp.fit(net, X, Y, optimizer=dp.GradientDescent(eta), epochs=3000)
        assert history["grad_norm"][-1] < 1e-6 * history["grad_norm"][0]
    else:
        with pytest.raises(dp.DivergenceError):
            dp.fit(net, X, Y, optimizer=dp.GradientDescent(eta), epochs=20000)
