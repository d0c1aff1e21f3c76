"""The optional Numba kernels give the NumPy path's bits, and are used only where they should."""

import sys

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import fused
from deltaprop.backprop import _count_correct

pytest.importorskip("numba")


@pytest.fixture(autouse=True)
def kernels_on(monkeypatch):
    """The kernels on, whatever DELTAPROP_NUMBA the suite runs under: these tests compare
    them with the NumPy path (read once, so the cache is cleared on the way in and out)."""
    monkeypatch.delenv("DELTAPROP_NUMBA", raising=False)
    compiled = fused._compiled  # a test may replace it
    compiled.cache_clear()
    yield
    compiled.cache_clear()


@pytest.fixture
def numpy_only(monkeypatch):
    """A function that runs its argument with the kernels switched off (DELTAPROP_NUMBA=0,
    which is read once: the cache is cleared on the way in and out)."""

    def run(f):
        with monkeypatch.context() as patch:
            patch.setenv("DELTAPROP_NUMBA", "0")
            fused._compiled.cache_clear()
            try:
                return f()
            finally:
                fused._compiled.cache_clear()

    return run


def test_switched_off_by_the_environment(numpy_only):
    assert fused.kernels() is not None
    assert numpy_only(fused.kernels) is None
    assert fused.kernels() is not None


def test_without_numba_everything_stays_in_numpy(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    fused._compiled.cache_clear()
    try:
        assert fused.kernels() is None
    finally:
        fused._compiled.cache_clear()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_steps_give_the_numpy_bits(dtype, numpy_only):
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(1001).astype(dtype)
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


def test_adam_on_mixed_dtypes_or_shapes_stays_in_numpy(numpy_only):
    theta0 = np.linspace(-1, 1, 12, dtype=np.float32)
    grad = np.linspace(0.5, -0.5, 12)  # float64

    def run(theta):
        adam = dp.Adam(1e-2)
        adam.step(theta, grad.astype(np.float64) if theta.ndim == 1 else grad.reshape(3, 4))
        return theta

    np.testing.assert_array_equal(run(theta0.copy()), numpy_only(lambda: run(theta0.copy())))
    square = run(theta0.reshape(3, 4).copy())
    np.testing.assert_array_equal(square, numpy_only(lambda: run(theta0.reshape(3, 4).copy())))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_scale_and_decay_gives_the_numpy_gradient(dtype, numpy_only):
    net = dp.Network([30, 22, 10], "relu", "softmax", dtype, seed=0)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((50, 30)), rng.integers(0, 10, 50)
    weights = rng.uniform(0.5, 2.0, 50)

    def gradient():
        J, g = dp.Objective(net, l2=0.03).value_and_grad(X, y, sample_weight=weights)
        return J, g.copy()

    J, g = gradient()
    reference_J, reference_g = numpy_only(gradient)
    assert J == reference_J
    np.testing.assert_array_equal(g, reference_g)


OPTIMIZERS = {
    "adam": lambda: dp.Adam(1e-2),
    "gd": lambda: dp.GradientDescent(0.3),
    "momentum": lambda: dp.Momentum(0.1),  # the base class's finish, then step
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("l2", [0.0, 0.03])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_finishing_the_gradient_in_the_optimizers_pass_gives_the_numpy_bits(
    dtype, l2, optimizer, numpy_only
):
    net = dp.Network([30, 22, 10], "relu", "softmax", dtype, seed=0)
    theta0 = net.params.copy()
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((50, 30)), rng.integers(0, 10, 50)
    weights = rng.uniform(0.5, 2.0, 50)

    def steps(fused_finish):
        np.copyto(net.params, theta0)
        objective, opt = dp.Objective(net, l2=l2), OPTIMIZERS[optimizer]()
        for _ in range(3):
            _, g = objective.evaluate(X, y, sample_weight=weights, finish=not fused_finish)
            if fused_finish:
                opt.finish_and_step(net.params, g, objective.finish)
            else:
                opt.step(net.params, g)
        state = opt.state_dict()["arrays"]
        return [
            net.params.copy(),
            g.copy(),
            *(state[k] for k in ("second", "velocity") if k in state),
        ]

    reference = numpy_only(lambda: steps(False))
    for got in (steps(True), steps(False), numpy_only(lambda: steps(True))):
        for array, want in zip(got, reference, strict=True):
            np.testing.assert_array_equal(array, want)  # θ, the finished g, v or velocity
    assert not np.array_equal(reference[0], theta0)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", [None, 64])
@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_fused_training_is_the_numpy_training(activation, dtype, batch_size, optimizer, numpy_only):
    net = dp.Network([12, 16, 8, 3], activation, "softmax", dtype, seed=0)
    theta0 = net.params.copy()
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((300, 12)), rng.integers(0, 3, 300)

    def train():
        np.copyto(net.params, theta0)
        opt = OPTIMIZERS[optimizer]()
        history = dp.fit(
            net, X, y, l2=1e-3, optimizer=opt, epochs=3, batch_size=batch_size, seed=0,
            chunk_size=100,  # several blocks, the last one short
        )  # fmt: skip
        return net.params.copy(), history["objective"], history["grad_norm"]

    theta, objective, grad_norm = train()
    reference_theta, reference_objective, reference_grad_norm = numpy_only(train)
    assert not np.array_equal(theta, theta0)
    np.testing.assert_array_equal(theta, reference_theta)
    np.testing.assert_array_equal(objective, reference_objective)
    np.testing.assert_array_equal(grad_norm, reference_grad_norm)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("feature_major", [False, True])
def test_bias_activation_and_derivative_kernels_keep_nan_inf_and_signed_zeros(
    name, feature_major, numpy_only
):
    activation = dp.activations.get_activation(name)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3.0], np.float32)
    rng = np.random.default_rng(4)
    a = np.concatenate([special, rng.standard_normal(48).astype(np.float32)]).reshape(7, 8)
    b = np.array([0.0, -0.0, 1.0, -1.0, np.nan, 0.5, -0.0, 2.0], np.float32)
    delta = rng.standard_normal((7, 8)).astype(np.float32)
    delta[0] = [np.nan, np.inf, -0.0, 0.0, -1.0, 2.0, np.inf, -np.inf]
    layout = (lambda x: np.ascontiguousarray(x.T).T) if feature_major else np.copy

    def run(layout):
        out, d = layout(a), layout(delta)
        with np.errstate(invalid="ignore", over="ignore"):  # ∞ · 0 on purpose
            fused.add_bias(out, b, activation)
            fused.times_derivative(d, out, activation, layout(np.empty_like(d)))
        return out, d

    kernels, numpy_row_major = run(layout), numpy_only(lambda: run(np.copy))
    assert kernels[0].flags.c_contiguous != feature_major
    for got, want in zip(kernels, numpy_row_major):
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))  # the bits


@pytest.mark.parametrize("feature_major", [False, True])
def test_outer_product_kernel_gives_the_numpy_bits(feature_major, numpy_only):
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -3.0, 1e30]
    column = np.array(special + [0.5, -2.0], np.float32)[:, None]  # δ^(h), m × 1
    row = np.array([[np.inf, -0.0, 2.0, 1e-30, np.nan, -1.0]], np.float32)  # W^(h), 1 × n
    layout = (lambda x: np.ascontiguousarray(x.T).T) if feature_major else np.copy

    def run(layout):
        out = layout(np.zeros((len(column), row.shape[1]), np.float32))
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):  # ∞ · 0 on purpose
            fused.outer(column, row, out)
        return out

    got, want = run(layout), numpy_only(lambda: run(np.copy))
    assert got.flags.c_contiguous != feature_major
    np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))  # the bits


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("threads", [1, 2])  # one thread: feature-major layers; two: row-major
def test_one_output_gradient_through_the_kernels_is_the_numpy_gradient(
    activation, threads, numpy_only
):
    net = dp.Network([6, 9, 7, 1], activation, "identity", seed=0)
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((250, 6)), rng.standard_normal((250, 1))
    weights = rng.uniform(0.5, 2.0, 250)

    def gradient():
        backend = dp.objective.LocalBackend(threads)
        objective = dp.Objective(net, l2=1e-3, chunk_size=60, backend=backend)  # short last block
        J, g = objective.value_and_grad(X, Y, sample_weight=weights)
        return J, g.copy()

    (J, g), (want_J, want_g) = gradient(), numpy_only(gradient)
    assert J == want_J
    np.testing.assert_array_equal(g, want_g)
    assert np.count_nonzero(g[: net.sizes[1] * net.sizes[0]]) > 0


@pytest.mark.parametrize("label_dtype", [np.int64, np.uint8])
def test_softmax_label_kernels_keep_ties_nan_and_infinities(label_dtype, numpy_only):
    net = dp.Network([3, 4], "relu", "softmax", seed=0)
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((40, 4)).astype(np.float32)
    logits[0] = [1.0, 1.0, 0.5, 1.0]  # a tie: the first maximum wins
    logits[1] = [0.0, np.nan, 2.0, np.nan]  # NaN: argmax is the first NaN, max is NaN
    logits[2] = [np.nan, 3.0, 0.0, 0.0]
    logits[3] = [-np.inf, np.inf, 0.0, 1.0]
    logits[4] = [-0.0, 0.0, -1.0, -0.0]
    labels = (np.arange(40) % 4).astype(label_dtype)
    labels[:5] = [0, 1, 0, 1, 1]
    rows = np.arange(40)

    def run():
        a = np.empty((4, 40), np.float32).T  # the kernel's transposed logits
        a[...] = logits
        with np.errstate(invalid="ignore"):
            correct = _count_correct(net, a, labels, rows)
            loss = net.output.loss_and_delta(a, labels, rows)
        return correct, loss, a.copy()

    (correct, loss, delta), (want_correct, want_loss, want_delta) = run(), numpy_only(run)
    assert correct == want_correct and correct > 2
    assert np.isnan(loss) and np.isnan(want_loss)
    np.testing.assert_array_equal(delta.view(np.int32), want_delta.view(np.int32))
    finite = slice(5, None)  # without the special rows the loss is a number, equal in both
    a, b = np.empty((4, 35), np.float32).T, np.empty((4, 35), np.float32).T
    a[...] = b[...] = logits[finite]
    loss_fused = net.output.loss_and_delta(a, labels[finite], rows[:35])
    loss_numpy = numpy_only(lambda: net.output.loss_and_delta(b, labels[finite], rows[:35]))
    assert loss_fused == loss_numpy
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("classes", [2, 3, 10, 37, 200])
def test_softmax_kernels_give_the_numpy_bits_for_any_class_count(classes, numpy_only):
    """The class sum norm_i = Σ_k e_ik is added in NumPy's order for the transposed layout."""
    net = dp.Network([3, classes], "relu", "softmax", seed=0)
    rng = np.random.default_rng(classes)
    rows = np.arange(1001)
    logits = (rng.standard_normal((len(rows), classes)) * 20).astype(np.float32)
    labels = rng.integers(0, classes, len(rows))

    def run():
        a = np.empty((classes, len(rows)), np.float32).T
        a[...] = logits
        correct = _count_correct(net, a, labels, rows)
        return correct, net.output.loss_and_delta(a, labels, rows), a.copy()

    (correct, loss, delta), (want_correct, want_loss, want_delta) = run(), numpy_only(run)
    assert correct == want_correct and loss == want_loss
    np.testing.assert_array_equal(delta, want_delta)


def test_a_training_step_runs_through_the_kernels(monkeypatch):
    compiled, calls = fused._compiled(), []

    def spy(name):
        def call(*args):
            calls.append(name)
            return getattr(compiled, name)(*args)

        return call

    spies = type(compiled)(**{name: spy(name) for name in vars(compiled)})
    monkeypatch.setattr(fused, "_compiled", lambda: spies)
    X, y = np.random.default_rng(3).standard_normal((20, 5)), np.arange(20) % 3
    for activation, optimizer in (("relu", dp.Adam()), ("tanh", dp.GradientDescent(0.1))):
        net = dp.Network([5, 4, 4, 3], activation, "softmax", seed=0)
        calls.clear()
        dp.fit(net, X, y, l2=1e-3, optimizer=optimizer, epochs=1)
        forward = ["add_bias_relu"] * 2 if activation == "relu" else ["add_bias"] * 2
        backward = [f"times_{activation}_prime"] * 2
        labels = ["count_argmax_hits", "shift_and_pick", "normalize_and_subtract_labels"]
        # Adam's one pass over θ also finishes g (1/n, λw); gradient descent finishes it
        # first (one kernel), then takes NumPy's step
        step = ["adam"] if isinstance(optimizer, dp.Adam) else ["scale_and_decay"]
        assert calls == [*forward, "add_bias", *labels, *backward, *step]
