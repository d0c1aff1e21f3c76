"""Figures: training curves, decision regions / fitted surfaces, and the activations σ, σ′.

matplotlib is imported on first use, with the non-interactive Agg backend, so importing
deltaprop never needs it (``pip install "deltaprop[plot]"``). Each panel of the training
figure is one function ``panel(ax, view)`` with a condition on what the run recorded, so a
new curve (e.g. the sharpness) is one entry in ``PANELS``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .activations import ACTIVATIONS
from .errors import ConfigError
from .serialization import write_atomically
from .training import History

GRID = 200  # points per axis of a decision-region grid


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError('plots need matplotlib: pip install "deltaprop[plot]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass
class TrainingView:
    """What the training figure shows: the History, and optionally the training inputs
    ``X`` in their own units with targets ``y`` (class indices or values) and ``predict``,
    mapping such inputs to class probabilities (n × K) or predicted values (n,)."""

    history: History
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    predict: Callable[[np.ndarray], np.ndarray] | None = None
    classification: bool = True
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    title: str = ""

    @property
    def dimensions(self) -> int:
        return 0 if self.X is None or self.predict is None else self.X.shape[1]


def _loss_panel(ax, view: TrainingView) -> None:
    epochs = np.arange(1, len(view.history) + 1)
    ax.plot(epochs, view.history["loss"], label="training loss")
    if "val_loss" in view.history:
        ax.plot(epochs, view.history["val_loss"], label="validation loss")
    ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="loss L_S", title="loss")
    ax.legend()


def _accuracy_panel(ax, view: TrainingView) -> None:
    epochs = np.arange(1, len(view.history) + 1)
    ax.plot(epochs, view.history["accuracy"], label="training accuracy")
    if "val_accuracy" in view.history:
        ax.plot(epochs, view.history["val_accuracy"], label="validation accuracy")
    ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    ax.legend(loc="lower right")


def _sharpness_panel(ax, view: TrainingView) -> None:
    """λ_max(∇²J) where it was measured, against the stability threshold 2/η (plain gradient
    descent only: it is no threshold for momentum, Adam or L-BFGS)."""
    epochs = np.arange(1, len(view.history) + 1)
    sharpness = view.history["sharpness"]
    measured = np.isfinite(sharpness)
    ax.plot(epochs[measured], sharpness[measured], marker=".", label="sharpness λ_max")
    with_eta = "stability_threshold" in view.history
    if with_eta:
        threshold = view.history["stability_threshold"][measured]
        ax.plot(epochs[measured], threshold, "k--", label="2/η")
    ax.set(
        xlabel="epoch", ylabel="λ_max(∇²J)", title="sharpness vs 2/η" if with_eta else "sharpness"
    )
    ax.legend()


def _grid(X: np.ndarray, column: int) -> np.ndarray:
    low, high = X[:, column].min(), X[:, column].max()
    margin = 0.1 * (high - low) or 1.0
    return np.linspace(low - margin, high + margin, GRID)


def _regions_panel(ax, view: TrainingView) -> None:
    """Decision regions (most probable class, shaded by its probability) or the fitted
    surface, with the training points on top."""
    gx, gy = np.meshgrid(_grid(view.X, 0), _grid(view.X, 1))
    out = np.asarray(view.predict(np.column_stack([gx.ravel(), gy.ravel()])))
    cmap = "tab10" if view.classification else "viridis"
    if view.classification:
        K = out.shape[1]
        label = out.argmax(axis=1).reshape(gx.shape)
        ax.contourf(
            gx, gy, label, levels=np.arange(K + 1) - 0.5, cmap=cmap, vmin=0, vmax=9, alpha=0.35
        )
        ax.contour(gx, gy, label, levels=np.arange(K) + 0.5, colors="k", linewidths=0.5)
        for k in range(K):
            mask = view.y == k
            name = view.class_names[k] if k < len(view.class_names) else str(k)
            ax.scatter(
                *view.X[mask].T, s=10, color=f"C{k}", edgecolors="k", linewidths=0.3, label=name
            )
        ax.legend(loc="best", fontsize="small", title="class")
        ax.set_title("decision regions")
    else:
        surface = out.reshape(gx.shape)
        filled = ax.contourf(gx, gy, surface, levels=20, cmap=cmap, alpha=0.8)
        ax.figure.colorbar(filled, ax=ax, label="prediction")
        low, high = filled.get_clim()
        ax.scatter(
            *view.X.T,
            c=view.y,
            cmap=cmap,
            vmin=low,
            vmax=high,
            s=10,
            edgecolors="k",
            linewidths=0.3,
        )
        ax.set_title("fitted surface and training points")
    names = view.feature_names or ["x1", "x2"]
    ax.set(xlabel=names[0], ylabel=names[1])


def _curve_panel(ax, view: TrainingView) -> None:
    """The fitted curve of a 1-D regression with the training points."""
    grid = _grid(view.X, 0)
    ax.scatter(view.X[:, 0], view.y, s=8, alpha=0.6, label="training points")
    ax.plot(grid, np.asarray(view.predict(grid[:, None])).ravel(), color="C1", label="network")
    ax.set(xlabel=(view.feature_names or ["x"])[0], ylabel="target", title="fitted curve")
    ax.legend()


# (condition, panel): the training figure draws, in order, every panel whose condition holds.
PANELS: list[tuple[Callable[[TrainingView], bool], Callable]] = [
    (lambda view: "loss" in view.history, _loss_panel),
    (lambda view: "accuracy" in view.history, _accuracy_panel),
    (lambda view: "sharpness" in view.history, _sharpness_panel),
    (lambda view: view.dimensions == 2, _regions_panel),
    (lambda view: view.dimensions == 1 and not view.classification, _curve_panel),
]


def training_figure(view: TrainingView):
    """A matplotlib Figure with one panel per applicable entry of ``PANELS``."""
    plt = _pyplot()
    panels = [panel for condition, panel in PANELS if condition(view)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        panel(ax, view)
    if view.title:
        fig.suptitle(view.title)
    fig.tight_layout()
    return fig


def activations_figure():
    """σ and σ′ of sigmoid, tanh and ReLU on [−3, 3], computed by the engine's own records
    (σ′ from z = σ(a): z(1 − z), 1 − z², 1[z > 0])."""
    plt = _pyplot()
    a = np.linspace(-3, 3, 601)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for ax, name in zip(axes, ("sigmoid", "tanh", "relu")):
        record = ACTIVATIONS[name]
        z, slope = np.empty_like(a), np.empty_like(a)
        record.function(a, z)
        record.derivative(z, slope)
        ax.plot(a, z, label="σ(a)")
        ax.plot(a, slope, "--", label="σ′(a)")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.axvline(0, color="grey", linewidth=0.5)
        ax.set(title=name, xlabel="a", ylim=(-1.1, 3.1))
        ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG (or the format the suffix names) atomically, and close it."""
    plt = _pyplot()
    path = Path(path)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=path.suffix[1:].lower() or "png", dpi=110)
    finally:
        plt.close(fig)
    write_atomically(path, buffer.getvalue())
    return path
