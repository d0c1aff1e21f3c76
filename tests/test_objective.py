"""J = L_S + λ/2‖w‖², its chunked accumulation, and its input checks."""

import tracemalloc

import numpy as np
import pytest

import deltaprop as dp

from conftest import random_problem


@pytest.mark.parametrize("output", ["softmax", "identity"])
def test_every_chunk_size_gives_the_same_objective_and_gradient(output):
    net, X, Y = random_problem([4, 7, 5, 3], "tanh", output, n=23, seed=3)
    reference = dp.Objective(net, l2=0.2, chunk_size=len(X))
    J_ref, g_ref = reference.value_and_grad(X, Y)
    g_ref = g_ref.copy()
    for chunk in (1, 7, 23):
        J, g = dp.Objective(net, l2=0.2, chunk_size=chunk).value_and_grad(X, Y)
        assert J == pytest.approx(J_ref, rel=1e-13)
        np.testing.assert_allclose(g, g_ref, rtol=1e-11, atol=1e-14)


def test_objective_is_mean_loss_plus_half_l2_of_weights_only():
    net, X, Y = random_problem([2, 3, 2], "sigmoid", "identity", n=10, seed=1)
    f = net.forward(X)
    data_loss = 0.5 * np.sum((f - Y) ** 2) / len(X)
    w2 = sum(np.sum(W**2) for W in net.weights)
    assert dp.Objective(net, l2=0.7).value(X, Y) == pytest.approx(data_loss + 0.35 * w2)
    g = dp.Objective(net, l2=0.7).value_and_grad(X, Y)[1]
    g0 = dp.Objective(net, l2=0.0).value_and_grad(X, Y)[1].copy()
    np.testing.assert_allclose(g[net.n_weights :], g0[net.n_weights :])  # biases unpenalised


def test_one_hot_and_integer_labels_agree():
    net, X, y = random_problem([3, 4, 3], "relu", "softmax", n=12, seed=2)
    J1, g1 = dp.Objective(net).value_and_grad(X, y)
    g1 = g1.copy()
    J2, g2 = dp.Objective(net).value_and_grad(X, np.eye(3)[y])
    assert J1 == pytest.approx(J2)
    np.testing.assert_allclose(g1, g2)


def _step_peak_bytes(n):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 20)).astype(np.float32)
    y = rng.integers(0, 5, n)
    net = dp.Network([20, 32, 32, 5], seed=0)
    objective = dp.Objective(net, chunk_size=256)
    optimizer = dp.GradientDescent(0.1)
    for _ in range(2):  # warm up: workspaces and optimizer buffers are made here
        optimizer.step(net.params, objective.value_and_grad(X, y)[1])
    tracemalloc.start()
    optimizer.step(net.params, objective.value_and_grad(X, y)[1])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_steady_state_step_allocation_does_not_grow_with_n():
    small, large = _step_peak_bytes(2_000), _step_peak_bytes(64_000)
    # the data grows by 4.9 MB; the step's allocations stay small and constant
    assert large < small + 16_000, (small, large)
    assert large < 200_000


@pytest.mark.parametrize(
    "X, Y, message",
    [
        (np.ones((4, 3)), np.zeros(5, int), "rows"),
        (np.ones((4, 2)), np.zeros(4, int), "features"),
        (np.array([[np.nan, 1, 1]] * 4), np.zeros(4, int), "NaN"),
        (np.ones((4, 3)), np.array([0, 1, 2, 3]), "0..2"),
        (np.ones((4, 3)), np.array([0, -1, 2, 1]), "0..2"),
        (np.ones((4, 3)), np.array([0.5, 1, 2, 1]), "integers"),
        (np.ones(3), np.zeros(1, int), "2-D"),
        (np.ones((0, 3)), np.zeros(0, int), "no rows"),
    ],
)
def test_bad_data_is_refused_with_a_message(X, Y, message):
    net = dp.Network([3, 4, 3])
    with pytest.raises(dp.DataError, match=message):
        dp.Objective(net).value_and_grad(X, Y)


def test_non_finite_targets_and_bad_l2_are_refused():
    net = dp.Network([2, 1], output="identity")
    with pytest.raises(dp.DataError, match="NaN"):
        dp.Objective(net).value(np.ones((2, 2)), np.array([1.0, np.inf]))
    with pytest.raises(dp.ConfigError, match="l2"):
        dp.Objective(net, l2=-1.0)


@pytest.mark.parametrize("output", ["softmax", "identity", "sigmoid", "exp"])
def test_integer_sample_weights_equal_repeating_rows(output):
    net, X, Y = random_problem([3, 5, 2], "tanh", output, n=8, seed=4)
    w = np.array([1, 2, 0, 1, 3, 1, 1, 2])
    J, g = dp.Objective(net, l2=0.1).value_and_grad(X, Y, sample_weight=w)
    g = g.copy()
    J_rep, g_rep = dp.Objective(net, l2=0.1).value_and_grad(np.repeat(X, w, 0), np.repeat(Y, w, 0))
    assert J == pytest.approx(J_rep, rel=1e-12)
    np.testing.assert_allclose(g, g_rep, rtol=1e-10, atol=1e-14)
    assert dp.gradcheck(net, X, Y, l2=0.1, sample_weight=w).worst < 1e-5


def test_bad_sample_weights_are_refused():
    net, X, y = random_problem([3, 4, 3], n=5)
    for bad in ([1, 1, 1], [1, 1, -1, 1, 1], [0, 0, 0, 0, 0], [1, np.nan, 1, 1, 1]):
        with pytest.raises(dp.DataError, match="sample_weight"):
            dp.Objective(net).value(X, y, sample_weight=np.array(bad, float))


def _split_problem(n=600, weights=False):
    net, X, y = random_problem([6, 16, 8, 4], "tanh", "softmax", n=n, seed=5)
    w = np.random.default_rng(1).uniform(0.5, 2.0, n) if weights else None
    return net, X, y, w


@pytest.mark.parametrize("weights", [False, True])
@pytest.mark.parametrize("threads", [2, 3])
def test_rows_split_over_threads_give_the_in_turn_sums_to_rounding(threads, weights):
    net, X, y, w = _split_problem(weights=weights)
    reference = dp.Objective(net, l2=0.1, chunk_size=64, backend=dp.LocalBackend(threads=1))
    J_ref, g_ref = reference.value_and_grad(X, y, w)
    objective = dp.Objective(net, l2=0.1, chunk_size=64, backend=dp.LocalBackend(threads))
    J, g = objective.value_and_grad(X, y, w)
    assert objective._prepared.threads == threads
    assert J == pytest.approx(J_ref, rel=1e-13)
    np.testing.assert_allclose(g, g_ref, rtol=1e-11, atol=1e-14)
    assert objective.last.correct == reference.last.correct
    g = g.copy()
    J2, g2 = dp.Objective(
        net, l2=0.1, chunk_size=64, backend=dp.LocalBackend(threads)
    ).value_and_grad(X, y, w)
    assert J2 == J and np.array_equal(g2, g)  # the same thread count: the same bits
    assert objective.value(X, y, w) == J  # J alone: no gradient buffers to add


def test_explicit_partitions_are_never_split():
    net, X, y, _ = _split_problem()
    source = dp.sources.ArraySource(X, y, partitions=(200, 400))
    backend = dp.LocalBackend(threads=4)
    assert backend.threads_for(net, source) == 1
    J, g = dp.Objective(net, chunk_size=64, backend=backend).value_and_grad(source)
    J_ref, g_ref = dp.Objective(net, chunk_size=64).value_and_grad(source)
    assert J == J_ref and np.array_equal(g, g_ref)


def test_rows_are_split_only_when_each_thread_gets_enough_work():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    net = dp.Network([100, 100, 10], seed=0)  # 11,000 weights: 1,525 rows per thread
    source = dp.sources.ArraySource(np.zeros((10, 100)), np.zeros(10, int))
    auto = dp.LocalBackend()
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert [auto.threads_for(net, source, rows) for rows in (10, 3049, 3050)] == [1, 1, 2]
        assert auto.threads_for(net, source, 10**6) == 2  # never more than BLAS has
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert auto.threads_for(net, source, 10**6) == 1  # a BLAS limit of 1 keeps one thread
    assert dp.LocalBackend(threads=3).threads_for(net, source) == 3
    with pytest.raises(dp.ConfigError, match="threads"):
        dp.LocalBackend(threads=0)


def test_split_steps_allocate_nothing_proportional_to_n():
    def peak(n):
        rng = np.random.default_rng(0)
        X, y = rng.standard_normal((n, 20)).astype(np.float32), rng.integers(0, 5, n)
        net = dp.Network([20, 32, 32, 5], seed=0)
        objective = dp.Objective(net, chunk_size=256, backend=dp.LocalBackend(threads=2))
        source = objective.open(X, y)
        for _ in range(2):
            objective.evaluate(source)
        tracemalloc.start()
        objective.evaluate(source)
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    small, large = peak(2_000), peak(64_000)
    # two threads' interpreter frames and futures peak together or not (tens of kB); anything
    # per row of a thread's 32,000 would be ≥ 128 kB
    assert large < small + 64_000, (small, large)


def test_npy_files_are_read_through_their_own_blocks_not_split(tmp_path):
    net, X, Y = random_problem([6, 16, 1], "tanh", "identity", n=1500, seed=4)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", Y.ravel())  # 1-D targets: the source shapes them per block
    source = dp.sources.NpySource(tmp_path / "X.npy", tmp_path / "y.npy")
    backend = dp.LocalBackend(threads=2)
    assert backend.threads_for(net, source) == 1
    J, g = dp.Objective(net, chunk_size=256, backend=backend).value_and_grad(source)
    J_ref, g_ref = dp.Objective(net, chunk_size=256).value_and_grad(X, Y)
    assert J == pytest.approx(J_ref, rel=1e-13)
    np.testing.assert_allclose(g, g_ref, rtol=1e-11, atol=1e-14)


def test_a_backend_reused_on_data_of_other_sizes_grows_every_workspace():
    net, X, y, _ = _split_problem(n=4000)
    objective = dp.Objective(net, chunk_size=4096, backend=dp.LocalBackend(threads=2))
    one_partition = dp.sources.ArraySource(X, y, partitions=(4000,))
    sources = [one_partition, objective.open(X[:200], y[:200]), objective.open(X, y)]
    for source in sources:  # 1 workspace of 4,000 rows, then 2 of 100, then 2 of 2,000
        J, g = objective.value_and_grad(source)
        J_ref, g_ref = dp.Objective(net, chunk_size=4096).value_and_grad(source)
        assert J == pytest.approx(J_ref, rel=1e-13)
        np.testing.assert_allclose(g, g_ref, rtol=1e-11, atol=1e-14)


def test_a_whole_float_thread_count_is_taken_as_an_integer():
    net, X, y, _ = _split_problem()
    backend = dp.LocalBackend(threads=2.0)
    assert backend.threads == 2
    dp.Objective(net, backend=backend).value(X, y)
    with pytest.raises(dp.ConfigError, match="threads"):
        dp.LocalBackend(threads=1.5)


def test_the_poisson_pair_is_zero_at_a_perfect_fit_and_refuses_negative_targets():
    net = dp.Network([2, 1], output="exp", dtype="float64")
    net.weights[0][...] = [[0.5, -1.0]]
    net.biases[0][...] = 0.2
    X = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    counts = net.forward(X)[:, 0]  # the deviance is 0 where f = Ỹ, so J is too
    assert dp.Objective(net).value(X, counts) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(dp.DataError, match="counts or rates ≥ 0"):
        dp.Objective(net).value(X, -counts)
