"""L-BFGS on the full-batch objective J(θ) = L_S(θ) + (λ/2)‖w‖², through SciPy's L-BFGS-B.

SciPy works on a float64 copy of θ; every evaluation copies it into the network (in the
network's dtype) and returns (J, g) from the core ``Objective``, so the function and the
gradient L-BFGS follows are exactly the ones ``fit`` uses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from .errors import ConfigError
from .network import Network
from .objective import Objective, check_data
from .sources import ArraySource
from .training import Callback, History, TrainingState, end_interrupted


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def fit_lbfgs(
    network: Network,
    X,
    Y,
    *,
    l2: float = 0.0,
    max_iter: int = 200,
    tol: float = 1e-4,
    max_fun: int = 15000,
    sample_weight=None,
    callbacks: Sequence[Callback] = (),
    history: History | None = None,
) -> History:
    """Minimise J over θ in place with L-BFGS-B (``jac=True``), at most ``max_iter`` iterations
    and ``max_fun`` evaluations; it stops when the projected gradient's largest entry is
    ≤ ``tol`` (SciPy's ``gtol``, as scikit-learn passes it).

    One History record per iteration, with ``fit``'s columns (objective, loss, grad_norm,
    accuracy for classifiers, time) describing the iterate reached by that iteration.
    Callbacks see a ``TrainingState`` whose ``optimizer`` is None and may stop the run with
    ``state.request_stop``. The SciPy ``OptimizeResult`` is kept as
    ``history.optimize_result`` (``status`` 0: converged, 1: a limit was reached).
    Ctrl-C raises ``TrainingInterrupted`` with the best iterate so far restored.
    """
    try:
        from scipy.optimize import minimize
    except ImportError:
        raise ConfigError('L-BFGS needs SciPy: pip install "deltaprop[scipy]"') from None

    X, Y, weights = check_data(network, X, Y, sample_weight)
    max_iter, max_fun = _positive_int("max_iter", max_iter), _positive_int("max_fun", max_fun)
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ConfigError(f"tol must be a finite number ≥ 0, got {tol!r}")
    objective = Objective(network, l2=l2)
    source = ArraySource(X, Y, weights, checked=True)  # prepared once, not every evaluation
    state = TrainingState(
        network,
        None,
        objective,
        history if history is not None else History(),
        np.random.default_rng(0),
        max_iter,
    )
    state.history.stop_reason = ""  # a continued history's last ending is history
    params = network.params
    state.extra["params_before_step"] = params  # records describe the current iterate
    best = params.copy()
    cache: dict = {}

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        np.copyto(params, theta, casting="unsafe")
        with np.errstate(over="ignore", invalid="ignore"):
            J, g = objective.evaluate(source)
        last = objective.last
        cache["theta"] = theta.copy()
        cache["record"] = {"objective": J, "loss": last.loss, "grad_norm": float(np.linalg.norm(g))}
        if network.output.classification:
            cache["record"]["accuracy"] = last.accuracy
        return J, g.astype(np.float64)

    start = time.perf_counter()
    elapsed_before = state.history.records[-1]["time"] if len(state.history) else 0.0

    def on_iteration(intermediate_result) -> None:
        theta = intermediate_result.x
        if not np.array_equal(cache.get("theta"), theta):
            value_and_grad(theta)  # the last evaluation was a rejected trial point
        np.copyto(params, theta, casting="unsafe")
        record = dict(cache["record"])
        record["time"] = elapsed_before + time.perf_counter() - start
        state.history.append(record)
        state.epoch = len(state.history) - 1
        if record["objective"] < state.best_score:
            state.best_score = record["objective"]
            np.copyto(best, params)
        for callback in callbacks:
            callback.on_epoch_end(state, record)
        if state.stop:
            raise StopIteration

    for callback in callbacks:
        callback.on_train_begin(state)
    try:
        with objective.blas_for_run(source):
            result = minimize(
                value_and_grad,
                params.astype(np.float64),
                method="L-BFGS-B",
                jac=True,
                callback=on_iteration,
                options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol},
            )
    except KeyboardInterrupt:
        end_interrupted(state, best, callbacks)
    np.copyto(params, result.x, casting="unsafe")
    if not state.stop:
        state.history.stop_reason = f"L-BFGS-B: {result.message}"
    state.history.optimize_result = result
    for callback in callbacks:
        callback.on_train_end(state)
    return state.history
