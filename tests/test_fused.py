"""The optional Numba kernels give the NumPy path's bits, and are used only where they should."""

import sys

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import fused

pytest.importorskip("numba")


@pytest.fixture
def numpy_only(monkeypatch):
    """A function that runs its argument with the kernels switched off (DELTAPROP_NUMBA=0)."""

    def run(f):
        with monkeypatch.context() as patch:
            patch.setenv("DELTAPROP_NUMBA", "0")
            return f()

    return run


def test_kernels_only_for_long_vectors_and_when_allowed(monkeypatch):
    assert fused.kernels(np.zeros(fused.MIN_SIZE, np.float32)) is not None
    assert fused.kernels(np.zeros(fused.MIN_SIZE - 1, np.float32)) is None
    assert fused.kernels(np.zeros((2, fused.MIN_SIZE), np.float32)) is None
    monkeypatch.setenv("DELTAPROP_NUMBA", "0")
    assert fused.kernels(np.zeros(fused.MIN_SIZE, np.float32)) is None


def test_without_numba_everything_stays_in_numpy(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    fused._compiled.cache_clear()
    try:
        assert fused.kernels(np.zeros(fused.MIN_SIZE, np.float32)) is None
    finally:
        fused._compiled.cache_clear()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_steps_give_the_numpy_bits(dtype, numpy_only):
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(fused.MIN_SIZE + 3).astype(dtype)
    grads = [rng.standard_normal(len(theta0)).astype(dtype) * 0.01 for _ in range(4)]
    grads[1][:5] = 0.0  # v stays 0 there on the first steps: m / (0 + ε)

    def run():
        theta, opt = theta0.copy(), dp.Adam(3e-3, beta1=0.8, beta2=0.99, eps=1e-7)
        for g in grads:
            opt.step(theta, g)
        return theta, opt.state_dict()["arrays"]

    theta, state = run()
    reference, reference_state = numpy_only(run)
    assert not np.array_equal(theta, theta0)
    np.testing.assert_array_equal(theta, reference)
    for name in ("first", "second"):
        np.testing.assert_array_equal(state[name], reference_state[name])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_scale_and_decay_gives_the_numpy_gradient(dtype, numpy_only):
    net = dp.Network([300, 220, 10], "relu", "softmax", dtype, seed=0)
    assert net.params.size >= fused.MIN_SIZE
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((50, 300)), rng.integers(0, 10, 50)
    weights = rng.uniform(0.5, 2.0, 50)

    def gradient():
        J, g = dp.Objective(net, l2=0.03).value_and_grad(X, y, sample_weight=weights)
        return J, g.copy()

    J, g = gradient()
    reference_J, reference_g = numpy_only(gradient)
    assert J == reference_J
    np.testing.assert_array_equal(g, reference_g)


def test_fused_training_is_the_numpy_training(numpy_only):
    net = dp.Network([300, 220, 10], "relu", "softmax", seed=0)
    theta0 = net.params.copy()
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((400, 300)), rng.integers(0, 10, 400)

    def train():
        np.copyto(net.params, theta0)
        adam = dp.Adam(1e-3)
        history = dp.fit(net, X, y, l2=1e-3, optimizer=adam, epochs=2, batch_size=100, seed=0)
        return net.params.copy(), history["objective"]

    theta, objective = train()
    reference_theta, reference_objective = numpy_only(train)
    np.testing.assert_array_equal(theta, reference_theta)
    np.testing.assert_array_equal(objective, reference_objective)


def test_adam_and_the_objective_call_the_kernels_on_long_vectors(monkeypatch):
    compiled, calls = fused._compiled(), []

    def spy(name):
        def call(*args):
            calls.append(name)
            return getattr(compiled, name)(*args)

        return call

    kernels = type(compiled)(adam=spy("adam"), scale_and_decay=spy("scale_and_decay"))
    monkeypatch.setattr(fused, "_compiled", lambda: kernels)
    net = dp.Network([300, 220, 10], "relu", "softmax", seed=0)
    X, y = np.random.default_rng(3).standard_normal((20, 300)), np.arange(20) % 10
    dp.fit(net, X, y, l2=1e-3, optimizer=dp.Adam(), epochs=1)
    assert calls == ["scale_and_decay", "adam"]
    small = dp.Network([3, 4, 2], "relu", "softmax", seed=0)
    dp.fit(small, X[:, :3], y % 2, l2=1e-3, optimizer=dp.Adam(), epochs=1)
    assert calls == ["scale_and_decay", "adam"]
