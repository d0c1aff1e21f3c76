"""scikit-learn compatible ``MLPClassifier`` and ``MLPRegressor`` trained by deltaprop.

Needs the optional extra: ``pip install "deltaprop[sklearn]"``.
"""

try:
    import scipy  # noqa: F401
    import sklearn  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"deltaprop's MLPClassifier and MLPRegressor need scikit-learn and SciPy ({err}); "
        'install them with: pip install "deltaprop[sklearn]"'
    ) from err

from functools import partial

from ..serialization import register_kind
from . import _files
from .classifier import MLPClassifier
from .regressor import MLPRegressor

for _estimator in (MLPClassifier, MLPRegressor):
    register_kind(_estimator._model_kind, partial(_files.load, _estimator))

__all__ = ["MLPClassifier", "MLPRegressor"]
