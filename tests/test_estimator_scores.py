"""Side by side with scikit-learn's MLPs on the datasets it bundles, with the same parameters:
deltaprop's held-out scores are at least scikit-learn's, within the noise of the seeds."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import datasets, neural_network  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import deltaprop as dp  # noqa: E402

SEEDS = range(3)
# dataset: (loader, classification?, shared parameters, allowed shortfall of the mean score:
# about one test sample for the classifiers, a few hundredths of R² for the regressors)
CASES = {
    "digits": (datasets.load_digits, True, dict(hidden_layer_sizes=(32,), max_iter=30), 0.01),
    "breast_cancer": (datasets.load_breast_cancer, True, dict(max_iter=50), 0.015),
    "wine": (datasets.load_wine, True, dict(max_iter=100), 0.02),
    "iris": (datasets.load_iris, True, dict(solver="lbfgs", max_iter=200), 0.02),
    "diabetes": (datasets.load_diabetes, False, dict(hidden_layer_sizes=(16,), max_iter=60), 0.02),
    "linnerud": (datasets.load_linnerud, False, dict(solver="lbfgs", alpha=10.0), 0.05),
}


def mean_test_score(estimator_class, loader, classification, params):
    X, y = loader(return_X_y=True)
    scores = []
    for seed in SEEDS:
        split = train_test_split(X, y, test_size=0.25, random_state=seed)
        X_train, X_test, y_train, y_test = split
        model = make_pipeline(StandardScaler(), estimator_class(random_state=seed, **params))
        if not classification:
            model = TransformedTargetRegressor(model, transformer=StandardScaler())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        scores.append(model.score(X_test, y_test))
    return float(np.mean(scores))


@pytest.mark.parametrize("name", CASES)
def test_scores_match_or_beat_scikit_learn(name):
    loader, classification, params, shortfall = CASES[name]
    kind = "MLPClassifier" if classification else "MLPRegressor"
    ours = mean_test_score(getattr(dp, kind), loader, classification, params)
    theirs = mean_test_score(getattr(neural_network, kind), loader, classification, params)
    assert ours >= theirs - shortfall, f"{name}: deltaprop {ours:.4f} < scikit-learn {theirs:.4f}"
