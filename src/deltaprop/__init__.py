"""deltaprop: feedforward networks trained by backpropagation and batch gradient descent."""

from .activations import ACTIVATIONS, Activation, get_activation
from .diagnostics import SharpnessTracker, StepSizeWarning
from .distributed import DaskBackend
from .errors import ConfigError, DataError, DeltapropError, DivergenceError, ModelFileError
from .gradcheck import GradcheckReport, gradcheck
from .hessian import Hessian, hvp, sharpness
from .lbfgs import fit_lbfgs
from .losses import OUTPUTS, OutputLoss, get_output
from .network import Network
from .objective import LocalBackend, Objective
from .optimizers import Adam, GradientDescent, Momentum, Optimizer
from .serialization import load, save
from .training import (
    Budget,
    Callback,
    EarlyStopping,
    History,
    TrainingInterrupted,
    TrainingState,
    fit,
)

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "OUTPUTS",
    "Activation",
    "Adam",
    "Budget",
    "Callback",
    "ConfigError",
    "DaskBackend",
    "DataError",
    "DeltapropError",
    "DivergenceError",
    "EarlyStopping",
    "GradcheckReport",
    "GradientDescent",
    "Hessian",
    "History",
    "LocalBackend",
    "ModelFileError",
    "Momentum",
    "Network",
    "Objective",
    "Optimizer",
    "OutputLoss",
    "SharpnessTracker",
    "StepSizeWarning",
    "TrainingInterrupted",
    "TrainingState",
    "fit",
    "fit_lbfgs",
    "get_activation",
    "get_output",
    "gradcheck",
    "hvp",
    "load",
    "save",
    "sharpness",
]

# Not in __all__, so that `from deltaprop import *` works without scikit-learn.
_ESTIMATORS = ("MLPClassifier", "MLPRegressor")


def __getattr__(name: str):
    """The scikit-learn estimators, imported on first use (they need the [sklearn] extra)."""
    if name in _ESTIMATORS:
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")
