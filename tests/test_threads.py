"""Row-parallel work: task order, errors and Ctrl-C wait for every task; BLAS thread limits."""

import threading
import time

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import threads

from conftest import random_problem


def test_results_come_back_in_task_order():
    tasks = [lambda i=i: (time.sleep(0.01 * (3 - i)), i)[1] for i in range(4)]
    assert threads.run_parallel(tasks) == [0, 1, 2, 3]


def test_an_error_is_raised_after_every_task_has_finished():
    done = threading.Event()

    def slow():
        time.sleep(0.1)
        done.set()

    def failing():
        raise ValueError("bad block")

    with pytest.raises(ValueError, match="bad block"):
        threads.run_parallel([failing, slow])
    assert done.is_set()


def test_ctrl_c_in_the_calling_thread_waits_for_the_workers():
    done = threading.Event()

    def slow():
        time.sleep(0.1)
        done.set()

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        threads.run_parallel([interrupted, slow])
    assert done.is_set()


def test_blas_is_single_threaded_inside_and_restored_after():
    pytest.importorskip("threadpoolctl")
    before = threads.blas_threads()
    seen = threads.run_parallel([threads.blas_threads, threads.blas_threads])
    assert seen == [1, 1]
    with threads.single_threaded_blas():
        with threads.single_threaded_blas():
            assert threads.blas_threads() == 1
        assert threads.blas_threads() == 1
    assert threads.blas_threads() == before


class _Probe(dp.Callback):
    def __init__(self, interrupt_at=None):
        self.blas, self.interrupt_at = [], interrupt_at

    def on_epoch_end(self, state, record):
        self.blas.append(threads.blas_threads())
        if len(self.blas) == self.interrupt_at:
            raise KeyboardInterrupt


def test_a_split_fit_keeps_blas_single_threaded_and_matches_one_thread():
    pytest.importorskip("threadpoolctl")
    net, X, y = random_problem([5, 12, 3], "relu", "softmax", n=500, seed=2)
    before = threads.blas_threads()
    runs = []
    for backend in (dp.LocalBackend(threads=1), dp.LocalBackend(threads=2)):
        model, probe = net.copy(), _Probe()
        history = dp.fit(model, X, y, l2=0.01, optimizer=dp.GradientDescent(0.2), epochs=15,
                         backend=backend, callbacks=[probe])  # fmt: skip
        runs.append((model.params, history["objective"], probe.blas))
    (p1, J1, blas1), (p2, J2, blas2) = runs
    np.testing.assert_allclose(p2, p1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(J2, J1, rtol=1e-12)
    assert set(blas1) == {before} and set(blas2) == {1}
    assert threads.blas_threads() == before


def test_ctrl_c_during_a_split_fit_keeps_the_best_parameters_and_restores_blas():
    pytest.importorskip("threadpoolctl")
    net, X, y = random_problem([5, 12, 3], "relu", "softmax", n=500, seed=2)
    before = threads.blas_threads()
    with pytest.raises(dp.TrainingInterrupted) as caught:
        dp.fit(net, X, y, optimizer=dp.GradientDescent(0.2), epochs=50,
               backend=dp.LocalBackend(threads=2), callbacks=[_Probe(interrupt_at=5)])  # fmt: skip
    assert len(caught.value.history) == 5
    assert np.isfinite(net.params).all()
    assert threads.blas_threads() == before


def test_inside_its_own_single_threaded_section_the_callers_thread_count_still_counts():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        with threads.single_threaded_blas():
            assert threads.blas_threads() == 1 and threads.available_threads() == 2
        assert threads.available_threads() == 2


class _Threads(dp.Callback):
    def __init__(self):
        self.seen = []

    def on_epoch_end(self, state, record):
        self.seen.append(state.objective._prepared.threads)


@pytest.mark.parametrize("batch_size", [None, 1600])
def test_fit_splits_big_steps_by_itself_when_blas_has_two_threads(batch_size):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    net, X, y = random_problem([100, 200, 10], "relu", "softmax", n=3200, seed=0)
    probe = _Threads()  # 22,000 weights: a thread takes at least 763 rows
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        dp.fit(net, X, y, epochs=2, batch_size=batch_size, callbacks=[probe])
    assert probe.seen == [2, 2]


def test_one_thread_owns_the_limit_and_others_never_lift_it():
    pytest.importorskip("threadpoolctl")
    before = threads.blas_threads()
    if before < 2:
        pytest.skip("BLAS has one thread here: no limit to own")
    net, X, y = random_problem([5, 12, 3], "relu", "softmax", n=500, seed=2)
    J_ref, g_ref = dp.Objective(net, backend=dp.LocalBackend(threads=2)).value_and_grad(X, y)
    g_ref = g_ref.copy()
    owner_in, owner_leave, owner_out = threading.Event(), threading.Event(), threading.Event()

    def owner():
        with threads.single_threaded_blas():
            owner_in.set()
            owner_leave.wait(5)
        owner_out.set()

    thread = threading.Thread(target=owner)
    thread.start()
    owner_in.wait(5)
    with threads.single_threaded_blas():  # entered while the owner limits BLAS
        assert threads.blas_threads() == 1
        owner_leave.set()
        owner_out.wait(5)
        assert threads.blas_threads() == before  # the owner lifted its limit on leaving
        assert set(threads.run_parallel([threading.current_thread] * 2)) == {
            threading.current_thread()
        }  # no limit in force: the tasks ran in turn here
        J, g = dp.Objective(net, backend=dp.LocalBackend(threads=2)).value_and_grad(X, y)
    thread.join(5)
    assert J == pytest.approx(J_ref, rel=1e-13)
    np.testing.assert_allclose(g, g_ref, rtol=1e-11, atol=1e-14)
    assert threads.blas_threads() == before


def test_ctrl_c_while_waiting_for_the_workers_is_raised_once_they_are_done():
    import _thread

    pytest.importorskip("threadpoolctl")
    done = threading.Event()

    def worker():
        time.sleep(0.05)
        _thread.interrupt_main()  # the calling thread is waiting for this task now
        time.sleep(0.1)
        done.set()

    with pytest.raises(KeyboardInterrupt):
        threads.run_parallel([lambda: None, worker])
    assert done.is_set()


def test_without_a_blas_to_limit_the_tasks_run_in_turn(monkeypatch):
    monkeypatch.setattr(threads, "_blas", lambda: None)
    ran_in = threads.run_parallel([threading.current_thread] * 3)
    assert set(ran_in) == {threading.current_thread()}
