"""The fit loop: batch (or mini-batch) gradient descent with history, callbacks,
divergence handling and Ctrl-C that keeps the best parameters."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import numpy as np

from .errors import ConfigError, DivergenceError
from .network import Network, as_generator
from .objective import Backend, Objective
from .optimizers import GradientDescent, Optimizer
from .sources import ArraySource, Source, check_inputs


class History:
    """Per-epoch records: ``objective`` (J at the parameters the step was taken from),
    ``loss`` (L_S), ``grad_norm`` (‖g‖), ``accuracy``, ``val_loss``, ``val_accuracy``,
    ``time`` (seconds since the start), plus whatever callbacks add.

    ``history["objective"]`` is that column as an array; ``history.records`` the raw rows.
    """

    def __init__(self, records: Sequence[dict] | None = None) -> None:
        self.records: list[dict] = [dict(r) for r in records or ()]
        self.stop_reason: str = ""

    def append(self, record: dict) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> np.ndarray:
        if not any(key in r for r in self.records):
            raise KeyError(f"history has no column {key!r}; columns: {', '.join(self.columns)}")
        return np.array([r.get(key, np.nan) for r in self.records], dtype=float)

    def __contains__(self, key: str) -> bool:
        return any(key in r for r in self.records)

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(k for r in self.records for k in r))

    @property
    def epochs(self) -> int:
        return len(self.records)

    def to_dict(self) -> dict:
        return {"records": self.records, "stop_reason": self.stop_reason}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        history = cls(data.get("records", []))
        history.stop_reason = data.get("stop_reason", "")
        return history

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        summary = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, float))
        return f"History(epochs={len(self)}{', ' if summary else ''}{summary})"


@dataclass
class TrainingState:
    """What callbacks see: the network, optimizer, objective, history, epoch and RNG."""

    network: Network
    optimizer: Optimizer
    objective: Objective
    history: History
    rng: np.random.Generator
    epochs: int
    epoch: int = 0
    stop: bool = False
    best_params: np.ndarray | None = None
    best_score: float = math.inf
    interrupted: bool = False
    extra: dict = field(default_factory=dict)

    def request_stop(self, reason: str) -> None:
        self.stop = True
        self.history.stop_reason = reason


class Callback:
    """Hooks into ``fit``; override any. ``on_epoch_end`` may call ``state.request_stop``."""

    def on_train_begin(self, state: TrainingState) -> None:
        pass

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        pass

    def on_train_end(self, state: TrainingState) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` (default ``val_loss``, or ``objective`` without validation data)
    has not improved by ``min_delta`` for ``patience`` epochs; the best parameters are
    restored at the end."""

    def __init__(self, patience: int = 10, min_delta: float = 0.0, monitor: str | None = None):
        if int(patience) < 1:
            raise ConfigError(f"patience must be ≥ 1, got {patience!r}")
        self.patience, self.min_delta, self.monitor = int(patience), float(min_delta), monitor

    def on_train_begin(self, state: TrainingState) -> None:
        self.best, self.waited = math.inf, 0
        self.params = state.network.params.copy()

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        key = self.monitor or ("val_loss" if "val_loss" in record else "objective")
        value = record[key]
        if value < self.best - self.min_delta:
            self.best, self.waited = value, 0
            # the record describes the parameters before this epoch's step
            np.copyto(self.params, state.extra["params_before_step"])
        else:
            self.waited += 1
            if self.waited >= self.patience:
                state.request_stop(
                    f"early stopping: {key} did not improve for {self.patience} epochs"
                )

    def on_train_end(self, state: TrainingState) -> None:
        if math.isfinite(self.best):
            np.copyto(state.network.params, self.params)


class Budget(Callback):
    """Stop after ``seconds`` of wall time or ``epochs`` epochs, whichever comes first."""

    def __init__(self, seconds: float | None = None, epochs: int | None = None):
        self.seconds, self.epochs = seconds, epochs

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        if self.seconds is not None and record["time"] >= self.seconds:
            state.request_stop(f"time budget of {self.seconds:g} s reached")
        if self.epochs is not None and len(state.history) >= self.epochs:
            state.request_stop(f"epoch budget of {self.epochs} reached")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``fit``: the network holds the best parameters so far; ``history`` is kept."""

    def __init__(self, history: History) -> None:
        super().__init__("training interrupted; the best parameters so far were kept")
        self.history = history


def fit(
    network: Network,
    X,
    Y,
    *,
    l2: float = 0.0,
    optimizer: Optimizer | None = None,
    epochs: int = 100,
    batch_size: int | None = None,
    shuffle: bool = True,
    validation: tuple | None = None,
    callbacks: Sequence[Callback] = (),
    seed: int | np.random.Generator | None = None,
    chunk_size: int | None = None,
    history: History | None = None,
    on_divergence: str = "raise",
    sample_weight=None,
    backend: Backend | None = None,
) -> History:
    """Train ``network`` in place by θ ← θ − η g (or ``optimizer``'s rule) for ``epochs`` epochs.

    ``batch_size=None`` is full-batch gradient descent: one epoch is one step of the
    lecture's rule on g = (1/n) Σ_i ∇ℓ_i + λ[w; 0]. An integer gives shuffled mini-batches
    with the same λ. ``sample_weight`` weighs each sample's loss (L_S = Σ w_i ℓ_i / Σ w_i);
    ``validation`` is (X, Y) or (X, Y, w). Passing a previous ``history`` continues it.
    A non-finite objective restores the last finite parameters and raises
    ``DivergenceError`` (or warns, with ``on_divergence="warn"``).
    X may also be a ``.npy`` path or memory map, a shard folder (Y: the target column), a
    Dask array or any ``deltaprop.sources.Source``; ``backend`` computes the sums (e.g.
    ``DaskBackend(client)``; default: in process, or the current Dask client for Dask data).
    """
    X, Y, weights = check_inputs(network, X, Y, sample_weight)
    if int(epochs) != epochs or epochs < 0:
        raise ConfigError(f"epochs must be a non-negative integer, got {epochs!r}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ConfigError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if on_divergence not in ("raise", "warn"):
        raise ConfigError(f"on_divergence must be 'raise' or 'warn', got {on_divergence!r}")
    if validation is not None:
        validation = check_inputs(network, *validation)
    optimizer = optimizer or GradientDescent(0.1)
    if batch_size is not None and isinstance(X, Source):
        raise ConfigError("mini-batches need in-memory arrays; use batch_size=None for these data")
    objective = Objective(network, l2=l2, chunk_size=chunk_size, backend=backend)
    val_objective = Objective(network, l2, chunk_size, backend) if validation else None
    state = TrainingState(
        network,
        optimizer,
        objective,
        history if history is not None else History(),
        as_generator(seed),
        int(epochs),
    )
    state.history.stop_reason = ""  # a continued history's last ending is history
    before, last_finite, best = (network.params.copy() for _ in range(3))
    for callback in callbacks:
        callback.on_train_begin(state)
    full_batch = batch_size is None or batch_size >= len(X)
    source = X if isinstance(X, Source) else ArraySource(X, Y, weights, checked=True)
    if full_batch:
        X = source  # prepared once, not every epoch
    with objective.blas_for_run(source, None if full_batch else batch_size):
        start = time.perf_counter()
        elapsed_before = state.history.records[-1]["time"] if len(state.history) else 0.0
        try:
            first = len(state.history)
            for epoch in range(first, first + int(epochs)):
                state.epoch = epoch
                np.copyto(before, network.params)
                state.extra["params_before_step"] = before
                with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
                    record = _epoch(state, X, Y, weights, batch_size, shuffle)
                if not math.isfinite(record["objective"]) or not np.isfinite(network.params.sum()):
                    # J was non-finite at θ_t (restore θ_{t−1}) or the step left θ non-finite
                    finite_before = math.isfinite(record["objective"])
                    np.copyto(network.params, before if finite_before else last_finite)
                    _diverged(state, record, on_divergence)
                    break
                before, last_finite = last_finite, before
                if validation is not None:
                    record.update(_validate(val_objective, network, last_finite, *validation))
                record["time"] = elapsed_before + time.perf_counter() - start
                state.history.append(record)
                score = record.get("val_loss", record["objective"])
                if score < state.best_score:
                    state.best_score = score
                    np.copyto(best, last_finite)
                for callback in callbacks:
                    callback.on_epoch_end(state, record)
                if state.stop:
                    break
        except KeyboardInterrupt:
            end_interrupted(state, best, callbacks)
    for callback in callbacks:
        callback.on_train_end(state)
    return state.history


def end_interrupted(state: TrainingState, best: np.ndarray, callbacks) -> NoReturn:
    """Ctrl-C: put back the best θ so far (θ as it started if no epoch finished), end the
    callbacks with ``state.interrupted`` set and raise ``TrainingInterrupted``."""
    np.copyto(state.network.params, best)
    state.interrupted = True
    state.history.stop_reason = "interrupted (Ctrl-C); the best parameters so far were kept"
    for callback in callbacks:
        callback.on_train_end(state)
    raise TrainingInterrupted(state.history) from None


def _epoch(state: TrainingState, X, Y, weights, batch_size, shuffle) -> dict:
    """One pass over the data: a single full-batch step, or one step per mini-batch."""
    net, objective, optimizer = state.network, state.objective, state.optimizer
    n = len(X)
    if batch_size is None or batch_size >= n:
        # the optimizer finishes g (scale, λw) in its own pass over θ, as for mini-batches
        J, g = objective.evaluate(X, Y, sample_weight=weights, finish=False)
        if not math.isfinite(J):
            return {"objective": J}  # fit restores θ and reports the divergence
        optimizer.finish_and_step(net.params, g, objective.finish)
        last = objective.last
        record = {"objective": J, "loss": last.loss, "grad_norm": float(np.linalg.norm(g))}
        if net.output.classification:
            record["accuracy"] = last.accuracy
        return record
    order = state.rng.permutation(n) if shuffle else None
    totals = {"objective": 0.0, "loss": 0.0, "grad_norm": 0.0, "correct": 0}
    for begin in range(0, n, batch_size):
        index = (
            order[begin : begin + batch_size]
            if order is not None
            else slice(begin, begin + batch_size)
        )
        w = None if weights is None else weights[index]
        # the optimizer finishes g (scale, λw) in its own pass over θ: one pass less a step
        J, g = objective.evaluate(X[index], Y[index], sample_weight=w, finish=False)
        if not math.isfinite(J):
            return {"objective": J}
        optimizer.finish_and_step(net.params, g, objective.finish)
        m = objective.last.n
        totals["objective"] += J * m
        totals["loss"] += objective.last.loss * m
        totals["grad_norm"] += float(np.linalg.norm(g)) * m
        totals["correct"] += objective.last.correct
    record = {k: totals[k] / n for k in ("objective", "loss", "grad_norm")}
    if net.output.classification:
        record["accuracy"] = totals["correct"] / n
    return record


def _validate(objective: Objective, network: Network, params: np.ndarray, Xv, Yv, wv) -> dict:
    """Validation loss/accuracy at ``params`` (the parameters the epoch's record describes);
    the current parameters wait in the objective's gradient buffer, unused by this call."""
    current = objective.grad
    np.copyto(current, network.params)
    np.copyto(network.params, params)
    try:
        objective.evaluate(Xv, Yv, with_grad=False, sample_weight=wv)
    finally:
        np.copyto(network.params, current)
    result = {"val_loss": objective.last.loss}
    if network.output.classification:
        result["val_accuracy"] = objective.last.accuracy
    return result


def _diverged(state: TrainingState, record: dict, on_divergence: str) -> None:
    eta = state.optimizer.learning_rate
    message = (
        f"training diverged at epoch {state.epoch + 1}: the objective became {record['objective']}"
        f" with learning rate η = {eta:g}; the last finite parameters were restored. "
        f"Try a smaller learning rate (e.g. η = {eta / 10:g})."
    )
    sharpness = state.extra.get("sharpness")  # put there by diagnostics.SharpnessTracker
    if sharpness and sharpness > 0:
        message += (
            f" The last measured sharpness was λ_max = {sharpness:.4g}, so the largest stable "
            f"learning rate there was η = 2/λ_max = {2 / sharpness:.4g}."
        )
    state.history.stop_reason = message
    if on_divergence == "raise":
        err = DivergenceError(message)
        err.history = state.history
        raise err
    warnings.warn(message, RuntimeWarning, stacklevel=3)
