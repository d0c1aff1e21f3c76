"""scikit-learn's end-of-epoch bookkeeping for its MLPs, as a core training callback."""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import train_test_split

from ..training import Callback, History, TrainingState


class Progress(Callback):
    """Counts epochs (``n_iter_``) and samples (``t_``), keeps ``loss_curve_``, applies the
    learning-rate schedule and scikit-learn's stopping rule: training stops (or, with the
    'adaptive' schedule, η is divided by 5) once the training loss has not dropped below
    ``best_loss_ − tol`` — or the validation score not risen above
    ``best_validation_score_ + tol`` with ``early_stopping`` — for more than
    ``n_iter_no_change`` epochs in a row. With ``early_stopping`` the parameters with the
    best validation score are restored at the end.

    Everything is kept here until ``commit``, so a failed fit leaves the estimator as it was.
    """

    def __init__(self, estimator, X, Y, sample_weight, random_state, first_pass, incremental):
        self.estimator = est = estimator
        self.stepwise = est.solver != "lbfgs"
        self.validation = None
        if est.early_stopping and self.stepwise and not incremental:
            X, Y, sample_weight, self.validation = _split(
                X, Y, sample_weight, est.validation_fraction, random_state
            )
        self.X, self.Y, self.sample_weight = X, Y, sample_weight
        self.n_effective = len(X) if sample_weight is None else float(sample_weight.sum())
        self.schedule = self.optimizer = None
        self.loss = None
        self.n_iter = 0
        self.best_params = None
        if first_pass:
            self.loss_curve, self.t, self.no_improvement = [], 0, 0
            self.best_loss = None if self.validation else math.inf
            self.validation_scores = [] if self.validation else None
            self.best_validation_score = -math.inf if self.validation else None
        else:
            self.loss_curve, self.t = list(est.loss_curve_), est.t_
            self.no_improvement = est._no_improvement_count
            self.best_loss = est.best_loss_ if not self.validation else None
            if self.validation and est.validation_scores_ is not None:
                self.validation_scores = list(est.validation_scores_)
                self.best_validation_score = est.best_validation_score_
            else:
                self.validation_scores = [] if self.validation else None
                self.best_validation_score = -math.inf if self.validation else None
            if not self.validation and self.best_loss is None:
                self.best_loss = math.inf

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        est = self.estimator
        self.n_iter += 1
        self.t += len(self.X)
        loss = record["objective"]
        self.loss_curve.append(loss)
        if est.verbose:
            print(f"Iteration {self.n_iter}, loss = {loss:.8f}")
        if not self.stepwise:  # L-BFGS has its own stopping rule (tol on the gradient)
            self.best_loss = min(self.best_loss, loss)
            return
        if self.validation:
            score = est._validation_score(state.network, *self.validation)
            self.validation_scores.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            improved = not score < self.best_validation_score + est.tol
            if score > self.best_validation_score:
                self.best_validation_score = score
                self.best_params = state.network.params.copy()
        else:
            improved = not loss > self.best_loss - est.tol
            self.best_loss = min(self.best_loss, loss)
        self.no_improvement = 0 if improved else self.no_improvement + 1
        self.schedule.epoch_end(state.optimizer, self.t)
        if self.no_improvement > est.n_iter_no_change:
            watched = "Validation score" if self.validation else "Training loss"
            message = (
                f"{watched} did not improve more than tol={est.tol:f} for "
                f"{est.n_iter_no_change} consecutive epochs."
            )
            if self.schedule.plateau(state.optimizer):
                if est.verbose:
                    print(message + " Stopping.")
                state.request_stop(message)
            else:
                self.no_improvement = 0
                if est.verbose:
                    print(f"{message} Setting learning rate to {state.optimizer.learning_rate:f}")

    def on_train_end(self, state: TrainingState) -> None:
        if self.best_params is not None:
            np.copyto(state.network.params, self.best_params)

    def commit(self, history: History) -> None:
        """Write the fitted counters to the estimator."""
        est = self.estimator
        est.n_iter_ = self.n_iter
        est.t_ = self.t
        est.loss_curve_ = self.loss_curve
        est.loss_ = self.loss if self.loss is not None else self.loss_curve[-1]
        if not self.stepwise:
            self.best_loss = min(self.best_loss, est.loss_)
        est.best_loss_ = self.best_loss
        est.validation_scores_ = self.validation_scores
        est.best_validation_score_ = self.best_validation_score
        est._no_improvement_count = self.no_improvement
        if self.optimizer is not None:
            est._optimizer = self.optimizer


def _split(X, Y, sample_weight, fraction, random_state):
    """scikit-learn's early-stopping split (stratified, when possible, for two classes, where
    scikit-learn has one output): (X_train, Y_train, w_train, (X_val, Y_val, w_val)), w None
    without sample weights."""
    weights = np.ones(len(X)) if sample_weight is None else sample_weight
    stratify = Y if Y.ndim == 1 and np.unique(Y).size == 2 else None
    try:
        parts = train_test_split(
            X, Y, weights, random_state=random_state, test_size=fraction, stratify=stratify
        )
    except ValueError:  # a class too small to appear on both sides
        parts = train_test_split(X, Y, weights, random_state=random_state, test_size=fraction)
    X_train, X_val, Y_train, Y_val, w_train, w_val = parts
    if len(X_val) < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' or the size of "
            "your dataset."
        )
    if sample_weight is None:
        w_train = w_val = None
    return X_train, Y_train, w_train, (X_val, Y_val, w_val)
