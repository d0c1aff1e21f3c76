"""``deltaprop gradcheck``, ``datasets`` and ``plot activations``: looking at the engine."""

from __future__ import annotations

import importlib.util

import click
import numpy as np

from .. import datasets as builtin
from ..gradcheck import gradcheck as check_gradient
from ..network import Network
from . import common

NEEDS = {"digits": "sklearn", "mnist1d": "mnist1d"}


@click.command()
@common.hidden_option("5,4")
@common.activation_option("tanh")
@click.option(
    "--task", type=click.Choice(["classification", "regression"]), default="classification"
)
@click.option("--samples", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--l2", type=click.FloatRange(min=0), default=1e-3, show_default=True, help="λ ≥ 0")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--tolerance", type=click.FloatRange(min=0), default=1e-6, show_default=True)
def gradcheck(hidden, activation, task, samples, l2, seed, tolerance) -> int:
    """Central finite differences against backpropagation on a random problem (float64),
    per layer; exit status 1 if the worst relative error exceeds --tolerance."""
    rng = np.random.default_rng(seed)
    classification = task == "classification"
    sizes = [3, *hidden, 4 if classification else 2]
    output = "softmax" if classification else "identity"
    network = Network(sizes, activation, output, dtype="float64", seed=rng)
    network.params[network.n_weights :] = rng.normal(
        0, 0.5, network.params.size - network.n_weights
    )
    X = rng.standard_normal((samples, sizes[0]))
    Y = rng.integers(0, sizes[-1], samples) if classification else rng.standard_normal((samples, 2))
    report = check_gradient(network, X, Y, l2=l2)
    click.echo(
        f"network {'-'.join(map(str, sizes))} {activation}, {output} output, {samples} samples, "
        f"λ = {l2:g}"
    )
    click.echo(str(report))
    passed = report.passed(tolerance)
    click.echo(f"{'passed' if passed else 'FAILED'} (tolerance {tolerance:g})")
    return 0 if passed else 1


@click.command()
def datasets() -> None:
    """The built-in datasets (generated locally from a seed, never downloaded)."""
    from rich.table import Table

    table = Table(title="built-in datasets (deltaprop train NAME)", title_justify="left")
    for column in ("name", "task", "default rows", "description", "available"):
        table.add_column(column)
    for name, dataset in builtin.DATASETS.items():
        needs = NEEDS.get(name)
        ok = needs is None or importlib.util.find_spec(needs) is not None
        available = "yes" if ok else f"needs {needs}"
        table.add_row(name, dataset.task, str(dataset.n), dataset.description, available)
    common.console().print(table)


@click.group()
def plot() -> None:
    """Figures of the lecture."""


@plot.command()
@click.option("--out", default="activations.png", show_default=True)
def activations(out: str) -> None:
    """σ and σ′ of sigmoid, tanh and ReLU on [−3, 3]."""
    from ..plots import activations_figure, save_figure

    path = common.check_output(out, "--out", common.PLOT_FORMATS)
    save_figure(activations_figure(), path)
    common.note(f"wrote {path}")
