"""MLPClassifier: softmax + cross-entropy for any number of classes (two classes give two
outputs), sigmoid outputs with binary cross-entropy for multi-label indicator targets."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

from ..network import Network
from ._base import BaseMLP


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier with scikit-learn's parameters, attributes and methods,
    trained by deltaprop on J = (1/n) Σ_i ℓ_i + (α/2n)‖w‖², ℓ = −Σ_k Y_k log f_k.

    Solvers: 'adam' (default), 'sgd' (momentum), 'lbfgs' (SciPy, full batch) and 'gd'
    (the lecture's full-batch gradient descent θ ← θ − η g, one step per iteration).
    Extra parameters: ``dtype`` (None follows the input: float32 stays float32, anything
    else is float64), ``callbacks`` (core ``Callback``s passed to the training loop) and
    ``backend`` (e.g. ``deltaprop.DaskBackend(client)`` with ``solver="gd"``: the full-batch
    gradient on a Dask cluster).
    ``history_`` is the core ``History`` of the fit.
    """

    _numeric_targets = False
    _model_kind = "mlp_classifier"

    @available_if(lambda est: est._check_partial_fit())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y) from the current state; ``classes`` (all labels that will
        ever be seen) is required on the first call for single-label targets."""
        if not hasattr(self, "network_") and classes is None:
            if type_of_target(y) != "multilabel-indicator":
                raise ValueError(
                    "classes must be passed on the first call to partial_fit: give every "
                    "label that any call will see, e.g. classes=np.unique(y_all)"
                )
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _encode_targets(self, y, first_pass: bool, classes, incremental: bool):
        """(Ỹ for the network, output name, fitted attributes to set when training succeeds)."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        kind = type_of_target(y)
        multilabel = kind == "multilabel-indicator"
        if y.ndim == 2 and not multilabel:
            raise ValueError(
                f"MLPClassifier takes class labels of shape (n_samples,) or a multi-label "
                f"indicator matrix, got {kind} targets of shape {y.shape}"
            )
        found = np.arange(y.shape[1]) if multilabel else unique_labels(y)
        if first_pass:
            known = found if classes is None or multilabel else unique_labels(classes)
        else:
            known = self.classes_
            if multilabel != self._multilabel:
                raise ValueError(
                    "y switches between multi-label indicators and class labels; "
                    "fit from scratch (warm_start=False) to change the kind of target"
                )
            if classes is not None and not np.array_equal(unique_labels(classes), known):
                raise ValueError(
                    f"classes={list(classes)} differs from the classes of the previous "
                    f"calls, {list(known)}"
                )
            if self.warm_start and not incremental and set(found) != set(known):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as in the "
                    f"previous call to fit. Previously got {known}, `y` has {found}"
                )
        unseen = np.setdiff1d(found, known)
        if unseen.size:
            raise ValueError(
                f"`y` has classes not in `classes_` ({known}): {unseen}; pass every label "
                "on the first call (classes=...) or fit from scratch"
            )
        if not multilabel and len(known) < 2:
            raise ValueError(
                "Classifier can't train when only one class is present: y has only the "
                f"class {known[0]!r}; give samples of at least two classes"
            )
        fitted = {
            "classes_": known,
            "_multilabel": multilabel,
            "_label_dtype": np.dtype(int) if multilabel else known.dtype,  # as scikit-learn
        }
        if multilabel:
            return y.astype(np.float64), "sigmoid", fitted
        return np.searchsorted(known, y), "softmax", fitted

    def predict(self, X) -> np.ndarray:
        """The most probable class per sample (each label with f_k > 0.5 if multi-label)."""
        f = self._forward(X)
        if self._multilabel:
            return (f > 0.5).astype(self._label_dtype)
        return self.classes_[np.argmax(f, axis=1)]

    def predict_proba(self, X) -> np.ndarray:
        """f(X): softmax probabilities, columns in the order of ``classes_``."""
        return self._forward(X)

    def predict_log_proba(self, X) -> np.ndarray:
        """log f(X), i.e. ``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    @staticmethod
    def _validation_score(network: Network, X, Y, sample_weight) -> float:
        """Accuracy (exact match of all labels for multi-label targets)."""
        f = network.forward(X)
        if not np.isfinite(f).all():
            return float("nan")
        if network.output.name == "sigmoid":
            correct = ((f > 0.5) == (Y > 0.5)).all(axis=1)
        else:
            correct = f.argmax(axis=1) == Y
        return float(np.average(correct, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
