"""Figures: which panels a run gets, the decision regions follow the model, σ and σ′ are the
engine's, and files are written whole."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.plots import TrainingView, activations_figure, save_figure, training_figure


def history(classification=True, validation=True):
    records = []
    for epoch in range(5):
        record = {"loss": 1.0 / (epoch + 1)}
        if classification:
            record["accuracy"] = 0.5 + 0.1 * epoch
        if validation:
            record["val_loss"] = 1.2 / (epoch + 1)
        records.append(record)
    return dp.History(records)


def titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_two_dimensional_classification_gets_loss_accuracy_and_regions():
    X = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    view = TrainingView(
        history(), X, np.array([0, 1, 1]),
        predict=lambda P: np.column_stack([P[:, 0] < 0, P[:, 0] >= 0]).astype(float),
        class_names=["left", "right"],
    )  # fmt: skip
    fig = training_figure(view)
    assert titles(fig) == ["loss", "accuracy", "decision regions"]
    loss, _, regions = fig.axes[:3]
    assert loss.get_yscale() == "log"
    assert [line.get_label() for line in loss.get_lines()] == ["training loss", "validation loss"]
    assert [t.get_text() for t in regions.get_legend().get_texts()] == ["left", "right"]
    assert regions.get_xlim()[0] < -1 and regions.get_xlim()[1] > 1  # the points with a margin


def test_regression_gets_a_fitted_curve_or_surface():
    X = np.linspace(-1, 1, 9)[:, None]
    fig = training_figure(
        TrainingView(history(False), X, X[:, 0] ** 2, lambda P: P[:, 0] ** 2, False)
    )
    assert titles(fig) == ["loss", "fitted curve"]
    curve = fig.axes[1].get_lines()[0]
    np.testing.assert_allclose(curve.get_ydata(), curve.get_xdata() ** 2)
    X2 = np.random.default_rng(0).standard_normal((20, 2))
    view = TrainingView(history(False, False), X2, X2.sum(1), lambda P: P.sum(1), False)
    assert "fitted surface and training points" in titles(training_figure(view))


def test_without_inputs_only_the_curves():
    assert titles(training_figure(TrainingView(history()))) == ["loss", "accuracy"]


def test_activation_curves_are_the_engines_sigma_and_derivative():
    fig = activations_figure()
    assert titles(fig) == ["sigmoid", "tanh", "relu"]
    for ax, derivative in zip(fig.axes, (lambda z: z * (1 - z), lambda z: 1 - z**2, None)):
        sigma, slope = ax.get_lines()[:2]
        a, z = sigma.get_xdata(), sigma.get_ydata()
        assert a.min() == -3 and a.max() == 3
        expected = derivative(z) if derivative else (a > 0).astype(float)
        np.testing.assert_allclose(slope.get_ydata(), expected, atol=1e-12)
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), np.tanh(a))


@pytest.mark.parametrize(
    "suffix, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")]
)
def test_save_figure_writes_the_format_of_the_suffix(tmp_path, suffix, magic):
    path = save_figure(activations_figure(), tmp_path / f"a.{suffix}")
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [f"a.{suffix}"]
