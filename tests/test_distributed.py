"""DaskBackend on a LocalCluster (2 single-threaded worker processes): the same bits as the
in-process engine with the same partitions, training that survives a killed worker, and
clear errors for bad inputs."""

import os
import signal
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import deltaprop as dp
from deltaprop.sources import ArraySource, NpySource, ShardSource

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

PARTS = (60, 60, 30, 50)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    w = rng.uniform(0, 2, 200).astype(np.float32)
    return X, y, w


@pytest.fixture(autouse=True)
def one_blas_thread():
    """The workers run BLAS on one thread; so does the in-process reference (OpenBLAS's sums
    depend on its thread count)."""
    with threadpool_limits(1):
        yield


def _net():
    return dp.Network([6, 10, 3], activation="relu", seed=2)


def _dask(X, y, w=None):
    Xd, yd = da.from_array(X, chunks=(PARTS, 6)), da.from_array(y, chunks=PARTS)
    return Xd, yd, None if w is None else da.from_array(w, chunks=PARTS)


def _value_and_grad(net, *data, **kw):
    J, g = dp.Objective(net, l2=0.01, chunk_size=16, **kw).value_and_grad(*data)
    return J, g.copy()


def test_dask_gradient_is_the_in_process_gradient_bit_for_bit(client, data):
    X, y, w = data
    net = _net()
    backend = dp.DaskBackend(client)
    for weights in (None, w):
        J_ref, g_ref = _value_and_grad(net, ArraySource(X, y, weights, partitions=PARTS))
        J, g = _value_and_grad(net, *_dask(X, y, weights), backend=backend)
        assert J == J_ref and np.array_equal(g, g_ref)
    # no backend given: the current client
    J, g = _value_and_grad(net, *_dask(X, y, w))
    assert J == J_ref and np.array_equal(g, g_ref)
    # arrays without partitions are split in one per worker: equal to rounding
    objective = dp.Objective(net, l2=0.01, chunk_size=16, backend=backend)
    J_split = objective.value(X, y, sample_weight=w)
    assert len(objective.prepare(objective._prepared.source).state) == 2
    assert J_split == pytest.approx(J_ref, rel=1e-6)
    # a tree reduce adds in another order: equal to rounding, and deterministic
    tree = dp.DaskBackend(client, reduce="tree")
    J1, g1 = _value_and_grad(net, *_dask(X, y, w), backend=tree)
    J2, g2 = _value_and_grad(net, *_dask(X, y, w), backend=tree)
    assert J1 == J2 and np.array_equal(g1, g2)
    assert J1 == pytest.approx(J_ref, rel=1e-6)
    np.testing.assert_allclose(g1, g_ref, rtol=1e-4, atol=1e-6)


def test_files_are_loaded_on_the_workers_with_the_same_result(client, data, tmp_path):
    X, y, _ = data
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    edges = np.cumsum((0, *PARTS))
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        np.save(tmp_path / f"shard-{i}.npy", np.column_stack([X[a:b], y[a:b]]))
    net, backend = _net(), dp.DaskBackend(client)
    J_ref, g_ref = _value_and_grad(net, ArraySource(X, y, partitions=PARTS))
    for source in (
        NpySource(tmp_path / "X.npy", tmp_path / "y.npy", partitions=PARTS),
        ShardSource(tmp_path / "shard-*.npy"),
        ArraySource(X, y, partitions=PARTS),
    ):
        J, g = _value_and_grad(net, source, backend=backend)
        assert J == J_ref and np.array_equal(g, g_ref), type(source).__name__


def _train(X, y, epochs=20, **kw):
    net = _net()
    history = dp.fit(
        net, X, y, l2=0.01, optimizer=dp.Momentum(0.2), epochs=epochs, chunk_size=16, **kw
    )
    return net, history


def test_twenty_steps_on_dask_are_the_in_process_steps(client, data):
    X, y, _ = data
    reference, ref_history = _train(ArraySource(X, y, partitions=PARTS), None)
    Xd, yd, _ = _dask(X, y)
    with dp.DaskBackend(client) as backend:
        net, history = _train(Xd, yd, backend=backend, validation=(Xd, yd))
    assert np.array_equal(net.params, reference.params)
    assert np.array_equal(history["objective"], ref_history["objective"])
    assert history["val_loss"][-1] < history["val_loss"][0]


class KillAWorker(dp.Callback):
    """SIGKILL one worker process after ``epoch``; its nanny starts a fresh, empty one."""

    def __init__(self, client, epoch):
        self.client, self.epoch, self.killed = client, epoch, None

    def on_epoch_end(self, state, record):
        if state.epoch == self.epoch:
            address, pid = sorted(self.client.run(os.getpid).items())[0]
            os.kill(pid, signal.SIGKILL)
            self.killed = pid


def test_a_worker_killed_mid_training_changes_nothing(client, data):
    X, y, _ = data
    Xd, yd, _ = _dask(X, y)
    undisturbed, history = _train(Xd, yd, backend=dp.DaskBackend(client))
    killer = KillAWorker(client, epoch=5)
    net, disturbed = _train(Xd, yd, backend=dp.DaskBackend(client), callbacks=[killer])
    assert killer.killed is not None
    assert np.array_equal(net.params, undisturbed.params)
    assert np.array_equal(disturbed["objective"], history["objective"])
    client.wait_for_workers(2, timeout=30)
    deadline = time.monotonic() + 30
    while killer.killed in client.run(os.getpid).values() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert killer.killed not in client.run(os.getpid).values()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_estimator_trains_full_batch_on_the_cluster(client, data):
    from sklearn.base import clone

    from deltaprop.estimators import MLPClassifier

    X, y, _ = data
    settings = dict(hidden_layer_sizes=(8,), solver="gd", max_iter=10, random_state=0)
    local = MLPClassifier(**settings).fit(X, y)
    backend = dp.DaskBackend(client)
    remote = clone(MLPClassifier(**settings, backend=backend)).fit(X, y)
    assert remote.backend is backend
    np.testing.assert_allclose(remote.loss_curve_, local.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(remote.coefs_[0], local.coefs_[0], rtol=1e-4, atol=1e-6)


def test_bad_inputs_are_refused_with_clear_errors(client, data):
    X, y, w = data
    net = _net()
    Xd = da.from_array(X, chunks=(PARTS, 6))
    with pytest.raises(dp.DataError, match="rechunk"):
        dp.fit(net, Xd, da.from_array(y, chunks=100), backend=dp.DaskBackend(client))
    bad = X.copy()
    bad[123, 4] = np.inf
    with pytest.raises(dp.DataError, match=r"NaN or infinity \(first at row 123, column 4\)"):
        dp.fit(net, da.from_array(bad, chunks=(PARTS, 6)), y, backend=dp.DaskBackend(client))
    unknown = da.from_array(X, chunks=(PARTS, 6))[da.from_array(y, chunks=PARTS) >= 0]
    with pytest.raises(dp.DataError, match="compute_chunk_sizes"):
        dp.Objective(net).value(unknown, y)
    with pytest.raises(dp.DataError, match="Y is missing"):
        dp.Objective(net).value(Xd)
    with pytest.raises(dp.DataError, match="0..2"):
        dp.Objective(net).value(Xd, da.from_array(y + 1, chunks=PARTS))
    with pytest.raises(dp.DataError, match="expects 6"):
        dp.Objective(net).value(Xd[:, :5], da.from_array(y, chunks=PARTS))
    with pytest.raises(dp.ConfigError, match="cannot reach the Dask scheduler"):
        dp.DaskBackend("tcp://127.0.0.1:9", timeout=0.5)
    with pytest.raises(dp.ConfigError, match="reduce"):
        dp.DaskBackend(client, reduce="ring")
