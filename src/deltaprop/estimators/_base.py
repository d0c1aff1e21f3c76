"""What MLPClassifier and MLPRegressor share: parameters declared once, input handling,
the training call (core ``fit`` or ``fit_lbfgs``) and scikit-learn's per-epoch bookkeeping."""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ..lbfgs import fit_lbfgs
from ..losses import get_output
from ..network import Network, check_range
from ..optimizers import (
    Adam,
    AdaptiveSchedule,
    ConstantSchedule,
    GradientDescent,
    InverseScaling,
    Momentum,
)
from ..training import History, TrainingInterrupted, fit
from . import _files
from ._progress import Progress

SOLVERS = ("sgd", "adam", "lbfgs", "gd")
OUT_ACTIVATION = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity", "exp": "exp"}
ROWS_PER_CHUNK = 8192  # rows densified at a time when predicting from sparse input
INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")  # what validate_data records


class BaseMLP(BaseEstimator):
    """A network trained on J = L_S + (λ/2)‖w‖² with λ = α/n, n = Σ_i w_i (the number of
    training samples without ``sample_weight``): scikit-learn's α/(2n)‖W‖² for every
    solver and batch size."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": [
            None,
            StrOptions({"float32", "float64"}),
            Options(type, {np.float32, np.float64}),
        ],
        "callbacks": [None, list, tuple],
        "backend": "no_validation",
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        callbacks=None,
        backend=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.callbacks = callbacks
        self.backend = backend

    # ----------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train from scratch (or from the current weights with ``warm_start=True``)."""
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_partial_fit(self) -> bool:
        if self.solver == "lbfgs":
            raise AttributeError(
                "partial_fit is only available for the step-wise solvers 'sgd', 'adam' and "
                "'gd'; 'lbfgs' is not"
            )
        return True

    def _fit(self, X, y, sample_weight, incremental: bool, classes=None):
        """Train, or leave the estimator exactly as it was: ``validate_data`` records the
        input's features before the targets and the training can still fail."""
        recorded = {name: self.__dict__[name] for name in INPUT_ATTRIBUTES if name in self.__dict__}
        try:
            return self._fit_validated(X, y, sample_weight, incremental, classes)
        except BaseException:
            for name in INPUT_ATTRIBUTES:
                self.__dict__.pop(name, None)
            self.__dict__.update(recorded)
            raise

    def _fit_validated(self, X, y, sample_weight, incremental: bool, classes):
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "network_") or not (self.warm_start or incremental)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=self._numeric_targets,
            dtype=(np.float64, np.float32),
            reset=first_pass,
        )
        Y, output, fitted = self._encode_targets(y, first_pass, classes, incremental)
        dtype = self.network_.dtype if not first_pass else _resolve_dtype(self.dtype, X.dtype)
        X = X.toarray() if sp.issparse(X) else X
        check_range(X, dtype)
        X = np.ascontiguousarray(X, dtype=dtype)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            kept = sample_weight > 0  # zero-weight samples do not enter J: leave them out
            X, Y, sample_weight = X[kept], Y[kept], sample_weight[kept]
        random_state = check_random_state(self.random_state)
        if first_pass:
            sizes = [X.shape[1], *hidden, Y.shape[1] if Y.ndim == 2 else len(fitted["classes_"])]
            network = Network(sizes, self.activation, output=output, dtype=dtype)
            self._initialize(network, random_state)
        else:
            network = self.network_.copy()
            if not self._builds(network):
                raise ValueError(
                    f"hidden_layer_sizes={tuple(hidden)}, activation={self.activation!r} differ "
                    f"from the fitted network {network}; fit from scratch (warm_start=False) "
                    "to change the architecture"
                )
            if network.output.name != output:
                raise ValueError(
                    f"the targets need a {output!r} output (loss, labels) but the fitted "
                    f"network has {network.output.name!r}; fit from scratch (warm_start=False)"
                )
            if Y.ndim == 2 and Y.shape[1] != network.n_outputs:
                raise ValueError(
                    f"y has {Y.shape[1]} outputs but the fitted network has "
                    f"{network.n_outputs}; fit from scratch (warm_start=False) to change that"
                )
        progress = Progress(self, X, Y, sample_weight, random_state, first_pass, incremental)
        history = History() if first_pass else History(self.history_.records)
        try:
            history = self._train(network, progress, history, random_state, incremental)
        except TrainingInterrupted as interrupted:
            warnings.warn("Training interrupted by user.", stacklevel=4)
            history = interrupted.history
        for name, value in fitted.items():
            setattr(self, name, value)
        self._set_network(network)
        progress.commit(history)
        self.history_ = history
        return self

    def _builds(self, network: Network) -> bool:
        """Whether ``hidden_layer_sizes`` and ``activation`` describe the network's hidden
        layers."""
        activation = "sigmoid" if self.activation == "logistic" else self.activation
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        return network.sizes[1:-1] == hidden and all(
            a.name == activation for a in network.activations
        )

    def _initialize(self, network: Network, random_state: np.random.RandomState) -> None:
        """scikit-learn's initialisation, drawn in its order from the same ``random_state``,
        so both libraries start from the same θ: per layer W ~ U(−r, r) then b ~ U(−r, r),
        r = √(c / (fan_in + fan_out)), c = 2 for 'logistic' hidden units and 6 otherwise."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        for W, b in zip(network.weights, network.biases):
            fan_out, fan_in = W.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            W[...] = random_state.uniform(-bound, bound, (fan_in, fan_out)).T
            b[...] = random_state.uniform(-bound, bound, fan_out)

    def _train(self, network, progress, history, random_state, incremental) -> History:
        """The single place where training runs: L-BFGS or the core ``fit`` loop."""
        X, Y, weights = progress.X, progress.Y, progress.sample_weight
        l2 = self.alpha / progress.n_effective
        callbacks = [progress, *(self.callbacks or ())]
        history.stop_reason = ""
        if self.solver == "lbfgs":
            history = fit_lbfgs(
                network, X, Y, l2=l2, max_iter=self.max_iter, tol=self.tol,
                max_fun=self.max_fun, sample_weight=weights, callbacks=callbacks,
                history=history,
            )  # fmt: skip
            result = history.optimize_result
            progress.loss = float(result.fun)
            progress.n_iter = int(result.nit)
            if result.status in (1, 2):
                warnings.warn(
                    f"lbfgs failed to converge after {result.nit} iteration(s) "
                    f"(status={result.status}): {result.message}. Increase max_iter or "
                    "max_fun, or scale the data (e.g. StandardScaler).",
                    ConvergenceWarning,
                    stacklevel=5,
                )
            return history
        if incremental and hasattr(self, "_optimizer"):  # a copy: a failed fit changes nothing
            progress.optimizer = copy.deepcopy(self._optimizer)
        else:
            progress.optimizer = self._make_optimizer()
        progress.schedule = self._make_schedule()
        history = fit(
            network, X, Y, l2=l2, optimizer=progress.optimizer,
            epochs=1 if incremental else self.max_iter, batch_size=self._batch_size(len(X)),
            shuffle=self.shuffle, callbacks=callbacks,
            seed=int(random_state.randint(np.iinfo(np.int32).max)), history=history,
            sample_weight=weights, backend=self.backend,
        )  # fmt: skip
        if not incremental and not history.stop_reason and progress.n_iter == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=5,
            )
        return history

    def _make_optimizer(self):
        if self.solver == "adam":
            return Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)
        if self.solver == "sgd":
            return Momentum(self.learning_rate_init, self.momentum, self.nesterovs_momentum)
        return GradientDescent(self.learning_rate_init)

    def _make_schedule(self) -> ConstantSchedule:
        """scikit-learn's schedules for 'sgd' (and the full-batch 'gd'); Adam keeps η fixed."""
        if self.solver == "adam" or self.learning_rate == "constant":
            return ConstantSchedule(self.learning_rate_init)
        if self.learning_rate == "invscaling":
            return InverseScaling(self.learning_rate_init, self.power_t)
        return AdaptiveSchedule(self.learning_rate_init)

    def _batch_size(self, n: int) -> int | None:
        if self.solver == "gd":
            return None
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(
                f"batch_size={self.batch_size} is larger than the {n} training samples; "
                "it is clipped to the sample size",
                stacklevel=6,
            )
        return min(self.batch_size, n)

    # -------------------------------------------------------------- prediction
    def _forward(self, X) -> np.ndarray:
        """f(X) for validated input; sparse rows are densified a block at a time.

        Sigmoid outputs are computed as expit(a^(D)) from the logits: it keeps its relative
        precision near 0, so no probability underflows to exactly 0 before a < −745.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False
        )
        network = self.network_
        if network.output.name == "sigmoid":
            network = copy.copy(network)  # shares θ; only the output function differs
            network.output = get_output("identity")
        if sp.issparse(X):
            X = X.tocsr()
            blocks = range(0, X.shape[0], ROWS_PER_CHUNK)
            f = np.vstack([network.forward(X[i : i + ROWS_PER_CHUNK].toarray()) for i in blocks])
        else:
            f = network.forward(X)
        return expit(f, out=f) if network is not self.network_ else f

    # ------------------------------------------------------ fitted attributes
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")

    @property
    def coefs_(self) -> list[np.ndarray]:
        """W^(h)ᵀ per layer (in × out), views into ``network_.params``; assigning a list of
        arrays of the same shapes copies them in."""
        check_is_fitted(self)
        return [W.T for W in self.network_.weights]

    @coefs_.setter
    def coefs_(self, arrays) -> None:
        _copy_into(self.coefs_, arrays, "coefs_")

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """b^(h) per layer, views into ``network_.params``; assigning copies in, as ``coefs_``."""
        check_is_fitted(self)
        return list(self.network_.biases)

    @intercepts_.setter
    def intercepts_(self, arrays) -> None:
        _copy_into(self.intercepts_, arrays, "intercepts_")

    def _set_network(self, network: Network) -> None:
        self.network_ = network
        self.n_layers_ = network.n_layers + 1
        self.n_outputs_ = network.n_outputs
        self.out_activation_ = OUT_ACTIVATION[network.output.name]

    def _model_file_payload(self):
        """(network, metadata) for ``deltaprop.save``; no pickle involved."""
        return _files.payload(self)

    def __getstate__(self):
        state = dict(super().__getstate__())  # object.__getstate__ gives __dict__ itself
        network = state.pop("network_", None)
        if network is not None:
            state["_network_state"] = {
                "sizes": network.sizes,
                "activation": [a.name for a in network.activations],
                "output": network.output.name,
                "dtype": network.dtype.name,
                "params": network.params,
            }
        return state

    def __setstate__(self, state):
        spec = state.pop("_network_state", None)
        super().__setstate__(state)
        if spec is not None:
            params = spec.pop("params")
            network = Network(**spec)
            network.params[...] = params
            self._set_network(network)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _hidden_sizes(hidden_layer_sizes) -> list[int]:
    sizes = hidden_layer_sizes
    sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
    if any(isinstance(s, bool) or not isinstance(s, Integral) or s <= 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be positive integers, got {sizes}.")
    return [int(s) for s in sizes]


def _copy_into(views: list[np.ndarray], arrays, name: str) -> None:
    """Assign ``arrays`` to the parameter views, or raise naming the shapes expected."""
    shapes = [view.shape for view in views]
    if len(arrays) != len(views) or any(np.shape(a) != shape for a, shape in zip(arrays, shapes)):
        raise ValueError(
            f"{name} must be {len(shapes)} arrays of shapes {shapes}, got "
            f"{[np.shape(a) for a in arrays]}; fit from scratch to change the architecture"
        )
    for view, array in zip(views, arrays):
        view[...] = array


def _resolve_dtype(dtype, input_dtype) -> np.dtype:
    """The ``dtype`` parameter, or the input's: float32 stays float32, all else is float64."""
    if dtype is not None:
        return np.dtype(dtype)
    return np.dtype(np.float32) if input_dtype == np.float32 else np.dtype(np.float64)
