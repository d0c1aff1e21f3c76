import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import scipy.sparse as sp  # noqa: E402
from sklearn import neural_network  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

import deltaprop as dp  # noqa: E402
from deltaprop import MLPClassifier, MLPRegressor  # noqa: E402
from deltaprop.estimators._progress import _split  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((40, 4))
LABELS = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
SMALL = dict(hidden_layer_sizes=(6,), random_state=0)


class Recorder(dp.Callback):
    """Keeps what the training loop shows a callback: λ, η and θ after every epoch."""

    def __init__(self):
        self.l2, self.rates, self.params = [], [], []

    def on_epoch_end(self, state, record):
        self.l2.append(state.objective.l2)
        self.rates.append(getattr(state.optimizer, "learning_rate", None))
        self.params.append(state.network.params.copy())
        record["marker"] = len(self.params)


@pytest.mark.parametrize(
    "solver, batch_size", [("sgd", 10), ("adam", "auto"), ("adam", 7), ("gd", 3), ("lbfgs", 5)]
)
def test_alpha_is_lambda_times_n_for_every_solver_and_batch(solver, batch_size):
    recorder = Recorder()
    est = MLPClassifier(
        solver=solver, batch_size=batch_size, alpha=0.3, max_iter=3, callbacks=[recorder], **SMALL
    )
    est.fit(X, LABELS)
    assert recorder.l2 and all(l2 == pytest.approx(0.3 / 40) for l2 in recorder.l2)
    weights = np.arange(40) % 3  # a third have weight 0: n = Σ w_i = 39
    est.fit(X, LABELS, sample_weight=weights)
    assert recorder.l2[-1] == pytest.approx(0.3 / weights.sum())
    # the history the callback sees is the estimator's, with the callback's own column
    assert list(est.history_["marker"]) == list(
        range(len(recorder.params) - est.n_iter_ + 1, len(recorder.params) + 1)
    )


@pytest.mark.parametrize(
    "estimator, targets",
    [
        (MLPRegressor, X[:, :3] * [1.0, -2.0, 0.5] + 1),  # three outputs
        (MLPClassifier, (X[:, :3] > 0).astype(int)),  # multi-label: sigmoid + cross-entropy
        (MLPClassifier, LABELS > 0),  # two classes, two softmax outputs
    ],
    ids=["multi-output", "multi-label", "binary"],
)
def test_reported_loss_and_followed_gradient_agree(estimator, targets):
    """(J(θ+εv) − J(θ−εv)) / 2ε from the reported ``loss_curve_`` equals the step's −Δθ/η · v."""
    eta = 0.05
    est = estimator(
        solver="gd", learning_rate_init=eta, alpha=0.5, activation="tanh", max_iter=1,
        warm_start=True, dtype="float64", **SMALL,
    )  # fmt: skip
    est.fit(X, targets)

    def reported_loss(theta):
        est.network_.params[...] = theta
        est.fit(X, targets)
        return est.loss_curve_[-1]

    theta = est.network_.params.copy()
    reported_loss(theta)
    gradient = (theta - est.network_.params) / eta
    for seed in range(3):
        v = np.random.default_rng(seed).standard_normal(theta.size)
        eps = 1e-5
        slope = (reported_loss(theta + eps * v) - reported_loss(theta - eps * v)) / (2 * eps)
        assert slope == pytest.approx(gradient @ v, rel=1e-6)


def test_two_classes_give_two_softmax_outputs_and_labels_keep_their_type():
    labels = np.where(LABELS > 0, "spam", "ham")
    clf = MLPClassifier(max_iter=5, **SMALL).fit(X, labels)
    assert clf.n_outputs_ == 2 and clf.out_activation_ == "softmax" and clf.n_layers_ == 3
    proba = clf.predict_proba(X)
    assert proba.shape == (40, 2) and np.allclose(proba.sum(axis=1), 1)
    assert set(clf.predict(X)) <= {"ham", "spam"}
    assert np.allclose(np.exp(clf.predict_log_proba(X)), proba)
    assert [W.shape for W in clf.coefs_] == [(4, 6), (6, 2)]  # in × out, as scikit-learn
    assert [b.shape for b in clf.intercepts_] == [(6,), (2,)]


def test_multilabel_targets_use_sigmoid_outputs():
    indicators = (X[:, :3] > 0).astype(int)
    clf = MLPClassifier(solver="lbfgs", max_iter=200, **SMALL).fit(X, indicators)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    assert clf.predict(X).dtype == indicators.dtype
    assert np.mean(clf.predict(X) == indicators) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (40, 3) and not np.allclose(proba.sum(axis=1), 1)
    clf.intercepts_[-1][...] = -100.0  # σ(−100) ≈ 4e−44 must not round to 0
    assert (clf.predict_proba(X) > 0).all() and np.isfinite(clf.predict_log_proba(X)).all()


def test_sparse_input_matches_dense():
    dense = np.where(np.abs(X) > 1, X, 0)
    for estimator, y in ((MLPClassifier, LABELS), (MLPRegressor, X[:, 0])):
        a = estimator(max_iter=5, **SMALL).fit(dense, y)
        b = estimator(max_iter=5, **SMALL).fit(sp.csr_matrix(dense), y)
        assert np.array_equal(a.predict(dense), b.predict(sp.csr_matrix(dense)))
        assert np.array_equal(b.predict(sp.csc_matrix(dense)), b.predict(dense))


@pytest.mark.parametrize("solver", ["gd", "lbfgs", "adam"])
def test_integer_sample_weights_equal_repeated_samples(solver):
    weights = RNG.integers(0, 4, 40)
    rows = np.repeat(np.arange(40), weights)
    kw = dict(solver=solver, max_iter=20, learning_rate_init=0.05, **SMALL)
    weighted = MLPClassifier(**kw).fit(X, LABELS, sample_weight=weights)
    repeated = MLPClassifier(**kw).fit(X[rows], LABELS[rows])
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-9)


def test_partial_fit_counts_epochs_and_checks_labels():
    clf = MLPClassifier(**SMALL)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, LABELS)
    clf.partial_fit(X[:20], LABELS[:20] % 2, classes=[0, 1, 2])
    clf.partial_fit(X[20:], LABELS[20:])
    assert clf.n_iter_ == 1 and clf.t_ == 40 and len(clf.loss_curve_) == 2
    assert list(clf.classes_) == [0, 1, 2]
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, LABELS + 1)
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X, LABELS, classes=[0, 1])
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, X[:, 0])


def test_warm_start_continues_and_a_failed_fit_changes_nothing():
    reg = MLPRegressor(solver="gd", learning_rate_init=0.05, max_iter=10, warm_start=True, **SMALL)
    reg.fit(X, X[:, 0])
    curve = list(reg.loss_curve_)
    reg.fit(X, X[:, 0])
    assert reg.loss_curve_[:10] == curve and len(reg.loss_curve_) == 20 and reg.n_iter_ == 10
    assert reg.loss_curve_[10] < curve[0] and reg.t_ == 800
    before = [W.copy() for W in reg.coefs_]
    reg.set_params(learning_rate_init=1e6)
    with pytest.raises(dp.DivergenceError, match="smaller learning rate"):
        reg.fit(X, X[:, 0] * 1e3)
    assert all(np.array_equal(W, W0) for W, W0 in zip(reg.coefs_, before))
    assert len(reg.loss_curve_) == 20


def test_early_stopping_restores_the_best_validation_parameters():
    recorder = Recorder()
    clf = MLPClassifier(
        early_stopping=True, n_iter_no_change=3, max_iter=60, learning_rate_init=0.05,
        callbacks=[recorder], **SMALL,
    )  # fmt: skip
    clf.fit(X, LABELS)
    scores = clf.validation_scores_
    assert clf.best_loss_ is None and clf.best_validation_score_ == max(scores)
    best = recorder.params[int(np.argmax(scores))]
    assert np.array_equal(clf.network_.params, best)
    assert "Validation score did not improve" in clf.history_.stop_reason


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam"),
        dict(solver="sgd", learning_rate="adaptive"),
        dict(solver="sgd", learning_rate="invscaling", power_t=0.3),
        dict(solver="sgd", early_stopping=True),
    ],
)
def test_stopping_rule_and_schedules_match_scikit_learn(params):
    """With tol so large that nothing counts as improvement, when training stops is decided
    by n_iter_no_change and the schedule alone, as in scikit-learn."""
    settings = dict(tol=1e3, n_iter_no_change=2, max_iter=50, random_state=0, **params)
    ours = MLPClassifier(hidden_layer_sizes=(6,), callbacks=[Recorder()], **settings)
    ours.fit(X, LABELS)
    theirs = neural_network.MLPClassifier(hidden_layer_sizes=(6,), **settings).fit(X, LABELS)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    rates = ours.callbacks[0].rates
    if params["solver"] == "sgd":  # scikit-learn's Adam keeps a bias-corrected η instead
        assert rates[-1] == pytest.approx(theirs._optimizer.learning_rate)
    if params.get("learning_rate") == "invscaling":
        assert rates == pytest.approx([0.001 / (40 * k + 1) ** 0.3 for k in range(1, 5)])


def test_bad_input_is_named():
    clf = MLPClassifier(max_iter=3, **SMALL)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(bad, LABELS)
    with pytest.raises(ValueError, match="2D array"):
        clf.fit(X[:, 0], LABELS)
    with pytest.raises(ValueError, match="one class"):
        clf.fit(X, np.ones(40))
    with pytest.raises(ValueError, match="0 sample"):
        clf.fit(X[:0], LABELS[:0])
    with pytest.raises(ValueError, match="continuous"):
        clf.fit(X, X[:, 0])
    clf.fit(X, LABELS)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="infinity"):
        clf.predict(np.full((2, 4), np.inf))


@pytest.mark.parametrize(
    "name, value",
    [
        ("solver", "newton"),
        ("alpha", -1.0),
        ("activation", "softplus"),
        ("learning_rate", "cyclic"),
        ("dtype", "float16"),
        ("momentum", 1.5),
        ("hidden_layer_sizes", 0),
        ("callbacks", "progress"),
        ("batch_size", 0),
    ],
)
def test_invalid_parameters_name_themselves(name, value):
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        MLPRegressor(**{name: value}).fit(X, X[:, 0])


def test_hidden_layer_sizes_must_be_positive():
    with pytest.raises(ValueError, match="positive integers"):
        MLPRegressor(hidden_layer_sizes=(4, 0)).fit(X, X[:, 0])


def test_dtype_follows_the_input_unless_given():
    as32 = MLPRegressor(max_iter=2, **SMALL).fit(X.astype(np.float32), X[:, 0])
    assert as32.coefs_[0].dtype == np.float32 and as32.predict(X).dtype == np.float32
    ints = MLPRegressor(max_iter=2, **SMALL).fit((X * 10).astype(int), X[:, 0])
    assert ints.coefs_[0].dtype == np.float64
    forced = MLPRegressor(max_iter=2, dtype="float32", **SMALL).fit(X, X[:, 0])
    assert forced.predict(X).dtype == np.float32


def test_convergence_warnings_and_verbose_output(capsys):
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(2\\)"):
        MLPRegressor(max_iter=2, **SMALL).fit(X, X[:, 0])
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPRegressor(solver="lbfgs", max_iter=2, **SMALL).fit(X, X[:, 0])
    MLPRegressor(max_iter=2, verbose=True, **SMALL).fit(X, X[:, 0])
    assert "Iteration 2, loss = " in capsys.readouterr().out


def test_clone_keeps_callbacks_and_fitted_state_is_not_cloned():
    recorder = Recorder()
    clf = MLPClassifier(max_iter=2, callbacks=[recorder], **SMALL).fit(X, LABELS)
    copy = clone(clf)
    assert isinstance(copy.callbacks[0], Recorder) and not hasattr(copy, "coefs_")
    assert "callbacks" in copy.get_params()


def test_importing_deltaprop_does_not_import_scikit_learn():
    code = "import sys, deltaprop; assert 'sklearn' not in sys.modules; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).stdout == b"ok\n"
    missing = (
        "import sys; sys.modules['sklearn'] = None\n"
        "try:\n    from deltaprop import MLPClassifier\n"
        "except ImportError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", missing], capture_output=True, text=True).stdout
    assert 'pip install "deltaprop[sklearn]"' in out


def test_lbfgs_solver_reaches_a_stationary_point():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg = MLPRegressor(
            solver="lbfgs", activation="tanh", tol=1e-8, max_iter=2000, alpha=1.0, **SMALL
        )
        reg.fit(X, X[:, 0] * X[:, 1])
    _, g = dp.Objective(reg.network_, l2=1.0).value_and_grad(X, X[:, 0] * X[:, 1])  # λ = α
    assert np.abs(g).max() > 1e-2
    y = X[:, 0] * X[:, 1]
    _, g = dp.Objective(reg.network_, l2=1.0 / 40).value_and_grad(X, y)  # λ = α/n
    assert np.abs(g).max() < 1e-4 and reg.loss_ == pytest.approx(reg.loss_curve_[-1])


@pytest.mark.parametrize(
    "ours, theirs",
    [
        # full batch: scikit-learn's α/batch is α/n, so even with a penalty they agree
        (dict(solver="gd", learning_rate_init=0.1), dict(solver="sgd", momentum=0.0)),
        (dict(solver="lbfgs"), dict(solver="lbfgs")),
        (
            dict(solver="adam", batch_size=8, alpha=0.0),
            dict(solver="adam", batch_size=8, alpha=0.0),
        ),
        (dict(solver="sgd", batch_size=8, alpha=0.0), dict(solver="sgd", batch_size=8, alpha=0.0)),
    ],
    ids=["gd", "lbfgs", "adam", "sgd"],
)
def test_same_random_state_same_start_and_path_as_scikit_learn(ours, theirs):
    """The same initial θ (scikit-learn's scheme and random stream) and, without shuffling,
    the same trajectory: the estimators differ from scikit-learn's only where documented."""
    shared = dict(hidden_layer_sizes=(5,), activation="tanh", shuffle=False, max_iter=15)
    shared.update(random_state=3, tol=0.0, alpha=0.1, learning_rate_init=0.1, batch_size=40)
    y = X[:, 0] - X[:, 1] ** 2
    a = MLPRegressor(**{**shared, **ours}).fit(X, y)
    b = neural_network.MLPRegressor(**{**shared, **theirs}).fit(X, y)
    if ours["solver"] != "lbfgs":
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_ctrl_c_keeps_a_usable_model(solver):
    class CtrlC(dp.Callback):
        def on_epoch_end(self, state, record):
            if len(state.history) == 3:
                raise KeyboardInterrupt

    reg = MLPRegressor(solver=solver, max_iter=50, callbacks=[CtrlC()], **SMALL)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        reg.fit(X, X[:, 0])
    assert len(reg.loss_curve_) == 3 and "interrupted" in reg.history_.stop_reason
    assert np.isfinite(reg.predict(X)).all()


def test_a_failed_partial_fit_leaves_the_optimizer_state_alone():
    reg = MLPRegressor(solver="sgd", batch_size=10, **SMALL).partial_fit(X, X[:, 0])
    before = reg._optimizer.state_dict()
    coefs = [W.copy() for W in reg.coefs_]
    with pytest.raises(dp.DivergenceError):
        reg.partial_fit(X, X[:, 0] * 1e300)  # the squared error overflows
    after = reg._optimizer.state_dict()
    assert after["steps"] == before["steps"] == 4
    assert np.array_equal(after["arrays"]["velocity"], before["arrays"]["velocity"])
    assert all(np.array_equal(W, W0) for W, W0 in zip(reg.coefs_, coefs)) and reg.t_ == 40


def test_a_failed_fit_leaves_a_fitted_estimator_as_it_was():
    clf = MLPClassifier(max_iter=3, **SMALL).fit(X, LABELS)
    proba = clf.predict_proba(X)
    with pytest.raises(ValueError, match="one class"):
        clf.fit(RNG.standard_normal((40, 5)), np.zeros(40))
    assert clf.n_features_in_ == 4 and np.array_equal(clf.predict_proba(X), proba)
    fresh = MLPClassifier(max_iter=3, **SMALL)
    with pytest.raises(ValueError, match="one class"):
        fresh.fit(X, np.zeros(40))
    assert not hasattr(fresh, "n_features_in_")
    with pytest.raises(NotFittedError):
        fresh.predict(X)


def test_warm_start_refuses_a_changed_architecture():
    clf = MLPClassifier(max_iter=3, warm_start=True, **SMALL).fit(X, LABELS)
    for change in (dict(hidden_layer_sizes=(7, 3)), dict(activation="tanh")):
        with pytest.raises(ValueError, match="warm_start=False"):
            clf.set_params(**change).fit(X, LABELS)
        clf.set_params(**SMALL, activation="relu")
    assert [W.shape for W in clf.coefs_] == [(4, 6), (6, 3)]


def test_assigned_coefs_and_intercepts_are_the_weights_used():
    reg = MLPRegressor(max_iter=3, **SMALL).fit(X, X[:, 0])
    reg.coefs_ = [np.zeros_like(W) for W in reg.coefs_]
    reg.intercepts_ = [np.full_like(b, 2.0) for b in reg.intercepts_]
    assert np.array_equal(reg.predict(X[:3]), np.full(3, 2.0))
    with pytest.raises(ValueError, match=r"shapes \[\(4, 6\), \(6, 1\)\]"):
        reg.coefs_ = [np.zeros((4, 6))]
    with pytest.raises(NotFittedError):
        MLPRegressor().coefs_ = []


def test_negative_sample_weights_are_refused():
    weights = np.ones(40)
    weights[:5] = -1.0
    with pytest.raises(ValueError, match="Negative values"):
        MLPClassifier(max_iter=3, **SMALL).fit(X, LABELS, sample_weight=weights)


def test_values_beyond_float32_are_named_not_turned_into_nan():
    clf = MLPClassifier(max_iter=3, **SMALL).fit(X.astype(np.float32), LABELS)
    huge = X.copy()
    huge[1, 2] = 1e39
    with pytest.raises(ValueError, match=r"1e\+39 \(row 1, column 2\).*float32"):
        clf.predict(huge)
    with pytest.raises(ValueError, match="float64 network"):
        MLPClassifier(dtype="float32", max_iter=3, **SMALL).fit(huge, LABELS)


def test_early_stopping_split_is_stratified_only_for_two_classes_as_in_scikit_learn():
    """scikit-learn stratifies where it has one output: two classes, not three."""
    rows = np.arange(40.0).reshape(-1, 1)
    for y, stratify in ((LABELS, None), (LABELS > 0, LABELS > 0)):
        _, _, _, (validation, _, _) = _split(rows, y, None, 0.2, check_random_state(1))
        theirs = train_test_split(rows, y, random_state=1, test_size=0.2, stratify=stratify)
        assert np.array_equal(validation, theirs[1])


def test_multilabel_predictions_are_integers_as_in_scikit_learn():
    indicators = np.eye(3)[LABELS]
    clf = MLPClassifier(max_iter=3, **SMALL).fit(X, indicators)
    assert clf.predict(X).dtype == int


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_the_constructor_takes_scikit_learns_parameters_in_its_order(name):
    import inspect

    ours = list(inspect.signature(getattr(dp, name)).parameters)
    theirs = list(inspect.signature(getattr(neural_network, name)).parameters)
    assert ours[: len(theirs)] == theirs  # then deltaprop's own: dtype, callbacks, backend
    assert getattr(dp, name)().get_params().keys() >= set(theirs)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (dict(solver="gd", learning_rate_init=0.1), dict(solver="sgd", momentum=0.0)),
        (
            dict(solver="adam", batch_size=8, alpha=0.0),
            dict(solver="adam", batch_size=8, alpha=0.0),
        ),
        (dict(solver="lbfgs"), dict(solver="lbfgs")),
    ],
    ids=["gd", "adam", "lbfgs"],
)
def test_the_poisson_loss_follows_scikit_learns_path(ours, theirs):
    shared = dict(hidden_layer_sizes=(5,), activation="tanh", shuffle=False, max_iter=15)
    shared.update(random_state=3, tol=0.0, alpha=0.1, learning_rate_init=0.1, batch_size=40)
    counts = np.random.default_rng(0).poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1]))
    a = MLPRegressor("poisson", **{**shared, **ours}).fit(X, counts)
    b = neural_network.MLPRegressor("poisson", **{**shared, **theirs}).fit(X, counts)
    assert a.out_activation_ == b.out_activation_ == "exp"
    if ours["solver"] != "lbfgs":
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-7, atol=1e-9)
    assert (a.predict(X) > 0).all()


def test_poisson_targets_must_not_be_negative():
    with pytest.raises(ValueError, match="targets ≥ 0"):
        MLPRegressor("poisson", (4,), max_iter=2).fit(X, X[:, 0])
