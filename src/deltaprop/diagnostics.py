"""Step-size diagnostics during training: the sharpness λ_max(∇²J) against 2/η.

On a quadratic, θ ← θ − η g converges only if η < 2/λ_max. Full-batch gradient descent
on a network typically drives λ_max up until it reaches 2/η and then hovers there, the
loss still falling but not monotonically (Cohen et al., ICLR 2021, "the edge of
stability"). ``SharpnessTracker`` records λ_max next to the loss so that is visible.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .errors import ConfigError, DeltapropError
from .hessian import Hessian, choose_rows
from .objective import check_data
from .optimizers import GradientDescent
from .training import Callback, TrainingState


class StepSizeWarning(RuntimeWarning):
    """Gradient descent is about to run with η > 2/λ_max."""


class SharpnessTracker(Callback):
    """Record the sharpness λ_max(∇²J) every ``every`` epochs into the History.

    ``data`` is the training set as given to ``fit``: (X, Y) or (X, Y, w); ``subset`` (a
    number of rows drawn once with ``seed``, or an index array) measures J on fixed rows, as
    the research code does. λ is the one ``fit`` trains with. Each measured record gets
    ``sharpness`` (λ_max at the parameters the record describes, i.e. before that epoch's
    step), ``stability_threshold`` (2/η) and, for k > 1, ``sharpness_2`` … ``sharpness_k``.
    At the start it measures λ_max at the initial parameters and, for gradient descent,
    warns (``StepSizeWarning``) when η > 2/λ_max; the last value is kept in
    ``state.extra["sharpness"]`` for the divergence message. Each measurement is a Lanczos
    run of tens of Hessian-vector products (each a few gradients' cost), warm-started
    from the previous top eigenvector.
    """

    def __init__(
        self,
        every: int = 1,
        data: tuple | None = None,
        *,
        subset=None,
        k: int = 1,
        tol: float | None = None,
        seed: int | None = 0,
        warn: bool = True,
    ) -> None:
        if int(every) != every or every < 1:
            raise ConfigError(f"every must be a positive number of epochs, got {every!r}")
        if int(k) != k or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        self.every, self.data, self.subset = int(every), data, subset
        self.k, self.tol, self.seed, self.warn = int(k), tol, seed, warn

    def on_train_begin(self, state: TrainingState) -> None:
        if self.data is None:
            raise ConfigError(
                "SharpnessTracker needs the training data: "
                "SharpnessTracker(every, data=(X, Y)) with the arrays given to fit"
            )
        X, Y, w = check_data(state.network, *self.data)
        if self.subset is not None:
            rows = choose_rows(len(X), self.subset, self.seed)
            X, Y, w = X[rows], Y[rows], None if w is None else w[rows]
        self._probe = state.network.copy()  # measured at θ_t without touching the network
        objective = state.objective
        self._hessian = Hessian(self._probe, X, Y, objective.l2, w, objective.chunk_size)
        self._first, self._v0 = len(state.history), None
        self._initial = self._measure(state.network.params)
        state.extra["sharpness"] = self._initial[0]
        top = self._initial[0]
        eta = state.optimizer.learning_rate if isinstance(state.optimizer, GradientDescent) else 0
        if self.warn and eta * top > 2:
            warnings.warn(
                f"gradient descent with learning rate η = {eta:.4g} exceeds 2/λ_max = "
                f"{2 / top:.4g} at the initial parameters (sharpness λ_max = {top:.4g}): "
                "full-batch steps are unstable along the sharpest direction; expect the loss "
                f"to rise or diverge unless the sharpness falls. Choose η < {2 / top:.4g} "
                "for a stable start.",
                StepSizeWarning,
                stacklevel=3,
            )

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        since = len(state.history) - 1 - self._first
        if since % self.every:
            return
        values = self._initial if since == 0 else self._measure(state.extra["params_before_step"])
        record["sharpness"] = values[0]
        if isinstance(state.optimizer, GradientDescent):  # 2/η bounds plain GD's steps only
            record["stability_threshold"] = 2 / state.optimizer.learning_rate
        for i, value in enumerate(values[1:], start=2):
            record[f"sharpness_{i}"] = value
        state.extra["sharpness"] = values[0]

    def _measure(self, params: np.ndarray) -> list[float]:
        np.copyto(self._probe.params, params)
        try:
            values, vectors = self._hessian.top_eigenpairs(
                self.k, tol=self.tol, seed=self.seed, v0=self._v0
            )
        except DeltapropError as err:
            warnings.warn(f"sharpness not measured: {err}", RuntimeWarning, stacklevel=3)
            return [math.nan] * self.k
        self._v0 = vectors[:, 0]
        return [float(v) for v in values]
