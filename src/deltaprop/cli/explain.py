"""``deltaprop explain``: one gradient-descent step of a tiny network, printed in the
lecture's notation, for one sample and then for the batch.

Every number comes from the engine: the forward pass is ``Network.forward_chunk`` (the
pre-activations a^(h) are recorded by wrapping each layer's σ record, which the forward
pass calls with a^(h)), δ^(h) and Σ_i ∇ℓ_i are what ``backprop.loss_and_grad_sum`` leaves
in its ``Workspace``, σ′(a^(h)) is the σ record's derivative at the recorded z^(h), the
gradient of J is the core ``Objective``'s and the update is ``GradientDescent.step``.
Nothing is re-derived here.
"""

from __future__ import annotations

import dataclasses

import click
import numpy as np

from ..backprop import Workspace, loss_and_grad_sum
from ..network import Network
from ..objective import Objective
from ..optimizers import GradientDescent
from ..tabular import Preprocessing, infer_task, pick_column
from . import common

WIDTH = 110
LOSSES = {"softmax": "−Σ_k Ỹ_k log f_k = ", "identity": "½ Σ_k (f_k − Ỹ_k)² = "}


def _fmt(array: np.ndarray, indent: int = 6) -> str:
    text = np.array2string(
        np.asarray(array), precision=6, floatmode="fixed", suppress_small=True,
        max_line_width=WIDTH, sign=" ",
    )  # fmt: skip
    return "\n".join(" " * indent + line for line in text.splitlines())


def _show(label: str, array: np.ndarray, shape: str | None = None) -> None:
    shape = shape or " × ".join(map(str, np.shape(array)))
    click.echo(f"  {label}   [{shape}]")
    click.echo(_fmt(array))


@dataclasses.dataclass
class Trace:
    """What the engine computed for a block of rows (samples as rows)."""

    a: list[np.ndarray]  # a^(1) … a^(D)
    z: list[np.ndarray]  # z^(0) = x … z^(D−1)
    f: np.ndarray
    slopes: list[np.ndarray]  # σ′(a^(1)) … σ′(a^(D−1))
    deltas: list[np.ndarray]  # δ^(1) … δ^(D)
    loss_sum: float
    grad_sum: np.ndarray  # Σ_i ∇ℓ_i, laid out like θ


def trace(network: Network, X: np.ndarray, Y: np.ndarray) -> Trace:
    """Run the engine's forward pass and per-chunk kernel on (X, Y), keeping every stage."""
    recorded: list[np.ndarray] = []

    def recording(activation):
        def function(a, out):
            recorded.append(a.copy())
            activation.function(a, out)

        return dataclasses.replace(activation, function=function)

    probe = network.copy()
    probe.activations = [recording(a) for a in network.activations]
    m = len(X)
    buffers = [np.empty((m, width), network.dtype) for width in network.sizes[1:]]
    Z = probe.forward_chunk(X, buffers)
    logits = Z[-1].copy()
    f = np.empty_like(logits)
    network.output.function(logits, f)
    hidden_a = recorded[: network.n_layers - 1]
    workspace = Workspace(network, m)
    grad = np.zeros_like(network.params)
    loss = loss_and_grad_sum(network, X, Y, grad, workspace)[0]
    deltas = [d[:m].copy() for d in workspace.deltas] + [workspace.layers[-1][:m].copy()]
    hidden_z = [z.copy() for z in Z[:-1]]
    slopes = [np.empty_like(z) for z in hidden_z[1:]]
    for activation, z, slope in zip(network.activations, hidden_z[1:], slopes):
        activation.derivative(z, slope)  # the kernel's σ′ (which it may fuse into δ ∘ σ′)
    return Trace([*hidden_a, logits], hidden_z, f, slopes, deltas, loss, grad)


def _one_sample(network: Network, x: np.ndarray, target: np.ndarray, Y1) -> None:
    t = trace(network, x[None, :], Y1)
    D = network.n_layers
    click.echo("One sample, column vectors (the lecture's form):")
    _show("x = z^(0)", x, f"{x.size} × 1")
    _show("Ỹ (target)", target, f"{target.size} × 1")
    for h in range(1, D + 1):
        _show(
            f"a^({h}) = W^({h}) z^({h - 1}) + b^({h})", t.a[h - 1][0], f"{t.a[h - 1].shape[1]} × 1"
        )
        if h < D:
            name = network.activations[h - 1].name
            _show(f"z^({h}) = {name}(a^({h}))", t.z[h][0], f"{t.z[h].shape[1]} × 1")
    _show(f"f = {network.output.name}(a^({D}))", t.f[0], f"{t.f.shape[1]} × 1")
    click.echo(f"  ℓ = {LOSSES.get(network.output.name, '')}{t.loss_sum:.6f}")
    _show(f"δ^({D}) = f − Ỹ", t.deltas[-1][0], f"{t.deltas[-1].shape[1]} × 1")
    for h in range(D, 1, -1):
        _show(f"σ′(a^({h - 1}))", t.slopes[h - 2][0], f"{t.slopes[h - 2].shape[1]} × 1")
        _show(
            f"δ^({h - 1}) = σ′(a^({h - 1})) ∘ (W^({h}))ᵀ δ^({h})",
            t.deltas[h - 2][0],
            f"{t.deltas[h - 2].shape[1]} × 1",
        )
    grad_w, grad_b = network.split(t.grad_sum)
    for h in range(D, 0, -1):
        _show(f"∇_W^({h}) ℓ = δ^({h}) z^({h - 1})ᵀ", grad_w[h - 1])
        _show(f"∇_b^({h}) ℓ = δ^({h})", grad_b[h - 1], f"{grad_b[h - 1].size} × 1")


def _batch(network: Network, X: np.ndarray, Y, l2: float, eta: float) -> None:
    n, D = len(X), network.n_layers
    t = trace(network, X, Y)
    click.echo(f"\nThe batch of n = {n}, samples as rows (A^(h) = Z^(h−1) W^(h)ᵀ + b^(h)):")
    _show("X = Z^(0)", X)
    _show("Ỹ", Y)
    for h in range(1, D + 1):
        _show(f"A^({h})", t.a[h - 1])
        if h < D:
            _show(f"Z^({h}) = {network.activations[h - 1].name}(A^({h}))", t.z[h])
    _show(f"F = {network.output.name}(A^({D}))", t.f)
    _show(f"Δ^({D}) = F − Ỹ", t.deltas[-1])
    for h in range(D, 1, -1):
        _show(f"σ′(A^({h - 1}))", t.slopes[h - 2])
        _show(f"Δ^({h - 1}) = σ′(A^({h - 1})) ∘ (Δ^({h}) W^({h}))", t.deltas[h - 2])
    objective = Objective(network, l2=l2)
    J, g = objective.value_and_grad(X, Y)
    click.echo(
        f"\n  J = (1/n) Σ_i ℓ_i + (λ/2) Σ_h ‖W^(h)‖² = {t.loss_sum / n:.6f} + "
        f"{J - objective.last.loss:.6f} = {J:.6f}   (λ = {l2:g})"
    )
    grad_w, grad_b = network.split(g)
    for h in range(D, 0, -1):
        _show(f"∇_W^({h}) J = (1/n) Δ^({h})ᵀ Z^({h - 1}) + λ W^({h})", grad_w[h - 1])
        _show(f"∇_b^({h}) J = (1/n) Σ_i Δ^({h})_i", grad_b[h - 1], f"{grad_b[h - 1].size} × 1")
    updated = network.copy()
    GradientDescent(eta).step(updated.params, g)
    click.echo(f"\nUpdate θ ← θ − η g with η = {eta:g}:")
    for h in range(1, D + 1):
        _show(f"W^({h}) ← W^({h}) − η ∇_W^({h}) J", updated.weights[h - 1])
        _show(
            f"b^({h}) ← b^({h}) − η ∇_b^({h}) J", updated.biases[h - 1], f"{updated.sizes[h]} × 1"
        )
    after = Objective(updated, l2=l2).value(X, Y)
    click.echo(f"\n  J before the step: {J:.6f}   after: {after:.6f}")


@click.command()
@click.argument("data", required=False, default="xor")
@common.hidden_option("3")
@common.activation_option("sigmoid")
@click.option("--samples", type=click.IntRange(min=1), default=4, show_default=True, help="n")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=0.5)
@click.option("--l2", type=click.FloatRange(min=0), default=0.0, show_default=True, help="λ ≥ 0")
@click.option("--target", help="target column of a DATA file (default: the last)")
@click.option("--seed", type=int, default=0, show_default=True, help="rows and initial weights")
def explain(data, hidden, activation, samples, learning_rate, l2, target, seed) -> None:
    """One gradient-descent step on a tiny network, in the lecture's notation, with the
    engine's own numbers: a^(h), z^(h), δ^(D) = f − Ỹ, δ^(h−1) = σ′(a^(h−1)) ∘ (W^(h))ᵀ δ^(h),
    the gradients and the update, for one sample and then the batch (DATA: a built-in
    dataset or a file, default xor; inputs standardised with all its rows)."""
    frame, name = common.open_data(data)
    column = pick_column(frame, target)
    task = common.builtin_task(frame, column) or infer_task(frame, column)[0]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(frame))[:samples])
    batch = frame.iloc[rows]
    batch.attrs.update(frame.attrs)
    # statistics and classes of every row: K outputs even when the samples lack a class
    prep = Preprocessing.fit(frame, column, task, np.arange(len(frame)))
    X, y = prep.transform(batch), prep.encode_target(batch)
    classification = task == "classification"
    K = len(prep.classes) if classification else 1
    network = Network(
        [X.shape[1], *hidden, K], activation, "softmax" if classification else "identity",
        dtype="float64", seed=rng,
    )  # fmt: skip
    Y = np.eye(K)[y] if classification else y[:, None]
    click.echo(
        f"{name}: {len(X)} samples, network {'-'.join(map(str, network.sizes))} ({activation}, "
        f"{network.output.name} output); W^(h) is out × in"
    )
    for h in range(1, network.n_layers + 1):
        _show(f"W^({h})", network.weights[h - 1])
        _show(f"b^({h})", network.biases[h - 1], f"{network.sizes[h]} × 1")
    click.echo()
    _one_sample(network, X[0], Y[0], Y[:1])
    _batch(network, X, Y, l2, learning_rate)
