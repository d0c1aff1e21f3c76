"""MLPRegressor: identity outputs with ℓ = ½ Σ_k (f_k − y_k)² (or, for ``loss="poisson"``,
f = e^a with half the Poisson deviance), for one or many targets."""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d

from ..network import Network
from ._base import BaseMLP

LOSS = "squared_error"  # the default, ℓ = ½‖f − y‖²
LOSS_OUTPUTS = {LOSS: "identity", "poisson": "exp"}  # loss → output pair (poisson: log link)


def _loss_first(init):
    """``BaseMLP.__init__`` behind scikit-learn's MLPRegressor signature, ``loss`` first
    (``MLPRegressor(loss, hidden_layer_sizes, activation, *, ...)``), so positional calls,
    ``get_params`` and ``clone`` see what they see in scikit-learn."""
    signature = inspect.signature(init)
    first, *rest = signature.parameters.values()
    loss = inspect.Parameter("loss", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=LOSS)

    def __init__(self, loss=LOSS, *args, **kwargs):
        self.loss = loss
        init(self, *args, **kwargs)

    __init__.__signature__ = signature.replace(parameters=[first, loss, *rest])
    __init__.__doc__ = init.__doc__
    return __init__


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor with scikit-learn's parameters, attributes and methods,
    trained by deltaprop on J = (1/n) Σ_i ½‖f(x_i) − y_i‖² + (α/2n)‖w‖² (``loss="poisson"``:
    f = e^a and ℓ = Σ_k f_k − y_k log f_k + y_k log y_k − y_k, scikit-learn's half deviance).

    The reported loss and the followed gradient are the same function for any number of
    outputs (scikit-learn's multi-output loss divides by the output count, its gradient does
    not). Solvers, ``dtype``, ``callbacks`` and ``history_`` as in ``MLPClassifier``.
    """

    _numeric_targets = True
    _model_kind = "mlp_regressor"
    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({LOSS, "poisson"})],
    }
    __init__ = _loss_first(BaseMLP.__init__)
    _loss_outputs = LOSS_OUTPUTS  # also what the model-file loader checks

    @available_if(lambda est: est._check_partial_fit())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y) from the current state."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _encode_targets(self, y, first_pass: bool, classes, incremental: bool):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.min(y) < 0:
            raise ValueError(
                f"loss='poisson' needs targets ≥ 0 (counts, rates); found {np.min(y):g}"
            )
        return (y.reshape(-1, 1) if y.ndim == 1 else y), self._loss_outputs[self.loss], {}

    def predict(self, X) -> np.ndarray:
        """f(X), shape (n_samples,) for one target, (n_samples, n_outputs) otherwise."""
        f = self._forward(X)
        return f.ravel() if f.shape[1] == 1 else f

    @staticmethod
    def _validation_score(network: Network, X, Y, sample_weight) -> float:
        """R² of the predictions."""
        f = network.forward(X)
        if not np.isfinite(f).all():
            return float("nan")
        return float(r2_score(Y, f, sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
