"""The lecture's backpropagation for one training point, with the engine's own numbers.

The point goes through ``backprop.loss_and_grad_sum`` (which runs ``Network.forward_chunk``)
on a probe copy of the network whose activation records note each a^(h) before σ is applied
in place; afterwards the kernel's workspace holds z^(h), σ′(a^(h)) and
δ^(h) = σ′(a^(h)) ∘ (W^(h+1))ᵀ δ^(h+1), and the gradient buffer ∇ℓ = [δ^(h) z^(h−1)ᵀ; δ^(h)].
Nothing here re-derives the mathematics.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..backprop import Workspace, loss_and_grad_sum
from ..network import Network
from ..sources import check_data

SHOWN = 12  # entries of each vector / rows and columns of each gradient matrix sent


def _numbers(values: np.ndarray) -> list:
    return np.vectorize(lambda v: float(f"{v:.4g}"), otypes=[float])(values).tolist()


def trace(network: Network, x: np.ndarray, y) -> dict:
    """Per layer h = 1..D: a^(h), z^(h) (f for the output), σ′(a^(h)), δ^(h) and ∇ℓ."""
    X, Y, _ = check_data(network, np.reshape(x, (1, -1)), np.atleast_1d(y))
    probe = network.copy()
    pre: list[np.ndarray] = []

    def recording(activation):
        def function(a, out):
            pre.append(a.copy())
            activation.function(a, out)

        return replace(activation, function=function)

    def loss_and_delta(a, Y, rows, weights):
        pre.append(a.copy())
        return network.output.loss_and_delta(a, Y, rows, weights)

    probe.activations = [recording(a) for a in network.activations]
    probe.output = replace(network.output, loss_and_delta=loss_and_delta)
    ws = Workspace(probe, 1)
    grad = np.empty_like(probe.params)
    loss, _ = loss_and_grad_sum(probe, X, Y, grad, ws)
    f = np.empty_like(pre[-1])
    network.output.function(pre[-1], f)
    grad_w, grad_b = probe.split(grad)
    D = network.n_layers
    layers = []
    for h in range(D):
        hidden = h < D - 1
        layers.append(
            {
                "h": h + 1,
                "width": network.sizes[h + 1],
                "a": _numbers(pre[h][0, :SHOWN]),
                "z": _numbers((ws.layers[h] if hidden else f)[0, :SHOWN]),
                "slope": _numbers(ws.slopes[h][0, :SHOWN]) if hidden else None,
                "delta": _numbers((ws.deltas[h] if hidden else ws.layers[h])[0, :SHOWN]),
                "grad_w": _numbers(grad_w[h][:SHOWN, :SHOWN]),
                "grad_w_shape": list(grad_w[h].shape),
                "grad_w_norm": float(f"{np.linalg.norm(grad_w[h]):.4g}"),
                "grad_b": _numbers(grad_b[h][:SHOWN]),
                "activation": network.activations[h].name if hidden else network.output.name,
            }
        )
    return {
        "x": _numbers(X[0, :SHOWN]),
        "n_inputs": network.n_features,
        "target": _numbers(np.atleast_1d(Y[0])),
        "loss": float(f"{loss:.6g}"),
        "layers": layers,
    }
