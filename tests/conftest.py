import numpy as np
import pytest

import deltaprop as dp


def random_problem(sizes, activation="tanh", output="softmax", n=30, seed=0, dtype="float64"):
    """A network with random (non-zero) biases and data/targets matching its output."""
    rng = np.random.default_rng(seed)
    net = dp.Network(sizes, activation=activation, output=output, dtype=dtype, seed=rng)
    net.biases[-1][...] = 0  # keep exactness of the last layer's init irrelevant
    net.params[net.n_weights :] = rng.normal(0, 0.5, net.params.size - net.n_weights)
    X = rng.standard_normal((n, sizes[0]))
    K = sizes[-1]
    if output == "softmax":
        Y = rng.integers(0, K, n)
    elif output == "sigmoid":
        Y = (rng.random((n, K)) > 0.5).astype(float)
    elif output == "exp":  # counts for the Poisson pair
        Y = rng.poisson(1.5, (n, K)).astype(float)
    else:
        Y = rng.standard_normal((n, K))
    return net, X, Y


class AdamStoppedByCtrlC(dp.Adam):
    """Adam that gets Ctrl-C before its step number ``at``, part-way through an epoch."""

    def __init__(self, learning_rate, at):
        super().__init__(learning_rate)
        self.at = at

    def finish_and_step(self, params, grad, finish):
        if self.steps == self.at:
            raise KeyboardInterrupt
        super().finish_and_step(params, grad, finish)


@pytest.fixture
def problem():
    return random_problem
