"""The engines compared: deltaprop, scikit-learn, PyTorch (eager and torch.compile) and JAX.

Each engine is built once per workload and warmed by one untimed ``reset()`` + ``run()`` (the
harness does it for every engine: compilation, lazy imports, Numba's kernels, allocations), then
``reset()`` puts θ_0 back (untimed) and ``run()`` performs the workload's steps (timed).
``params()`` returns the final θ in deltaprop's flat layout [all W (out × in) | all b], so
one float64 objective judges every engine's result.
"""

from __future__ import annotations

import importlib.util
import math
import warnings

import numpy as np

import deltaprop as dp

from .workloads import Workload

ENGINES = ["deltaprop", "scikit-learn", "pytorch", "torch.compile", "jax"]
REQUIRES = {"scikit-learn": "sklearn", "pytorch": "torch", "torch.compile": "torch", "jax": "jax"}


def missing(engine: str) -> str | None:
    """Why ``engine`` cannot run here (None when it can)."""
    module = REQUIRES.get(engine)
    if module and importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install -e '.[bench]')"
    return None


def flat(weights, biases) -> np.ndarray:
    """θ = [all W | all b] from per-layer arrays (W out × in)."""
    parts = [np.asarray(W, np.float32).ravel() for W in weights]
    return np.concatenate(parts + [np.asarray(b, np.float32).ravel() for b in biases])


class Deltaprop:
    """Full batch: the loop ``fit`` runs, the sums from ``Objective.evaluate(finish=False)``
    then ``optimizer.finish_and_step`` under ``fit``'s BLAS setting, with the objective kept
    across trials (as torch keeps its model); mini-batches: ``deltaprop.fit`` itself."""

    def __init__(self, w: Workload, X, y, theta0: np.ndarray) -> None:
        self.w, self.X, self.y, self.theta0 = w, X, y, theta0
        self.net = w.network()
        self.objective = dp.Objective(self.net, l2=w.l2)

    def reset(self) -> None:
        np.copyto(self.net.params, self.theta0)
        w = self.w
        self.optimizer = (
            dp.Adam(w.learning_rate)
            if w.algorithm == "adam"
            else dp.GradientDescent(w.learning_rate)
        )

    def run(self) -> None:
        w, params = self.w, self.net.params
        if w.algorithm == "adam":
            dp.fit(
                self.net, self.X, self.y, l2=w.l2, optimizer=self.optimizer, epochs=w.steps,
                batch_size=w.batch_size, shuffle=False,
            )  # fmt: skip
            return
        objective, step = self.objective, self.optimizer.finish_and_step
        source = objective.open(self.X, self.y)  # validated and split in every run, as by fit
        with objective.blas_for_run(source):  # as fit holds it
            for _ in range(w.steps):
                step(params, objective.evaluate(source, finish=False)[1], objective.finish)

    def params(self) -> np.ndarray:
        return self.net.params.copy()


class ScikitLearn:
    """``MLPClassifier``/``MLPRegressor.fit`` warm-started from θ_0: solver ``sgd`` without
    momentum and one batch of all rows (full-batch GD), or its default ``adam``.

    scikit-learn's penalty is α/(2·batch)‖w‖², so α = λ·batch gives the same J. Class targets
    go in one-hot and the output is set to softmax (it would pick one logistic unit for two
    classes), so the network is the same as everyone else's.
    """

    def __init__(self, w: Workload, X, y, theta0: np.ndarray) -> None:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        self.w, self.X, self.theta0 = w, X, theta0
        batch = w.batch_size or w.n
        options = dict(
            hidden_layer_sizes=w.sizes[1:-1], activation=w.activation, alpha=w.l2 * batch,
            batch_size=batch, learning_rate_init=w.learning_rate, max_iter=w.steps,
            shuffle=False, tol=0.0, n_iter_no_change=10**9, warm_start=True,
        )  # fmt: skip
        if w.algorithm == "gd":
            options.update(solver="sgd", momentum=0.0, nesterovs_momentum=False)
        if w.output == "softmax":
            self.model = MLPClassifier(**options)
            self.y = np.eye(w.sizes[-1], dtype=np.float32)[y]
        else:
            self.model = MLPRegressor(**options)
            self.y = y.ravel()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.set_params(max_iter=1).fit(X[:64], self.y[:64])  # creates the attributes
        self.model.set_params(max_iter=w.steps)
        self.net = w.network()

    def reset(self) -> None:
        np.copyto(self.net.params, self.theta0)
        m = self.model
        m.coefs_ = [W.T.copy() for W in self.net.weights]
        m.intercepts_ = [b.copy() for b in self.net.biases]
        m.out_activation_ = "softmax" if self.w.output == "softmax" else "identity"
        m.loss_curve_, m.t_, m.best_loss_, m._no_improvement_count = [], 0, np.inf, 0

    def run(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as asked
            self.model.fit(self.X, self.y)

    def params(self) -> np.ndarray:
        return flat([W.T for W in self.model.coefs_], self.model.intercepts_)


class PyTorch:
    """``nn.Sequential`` of ``nn.Linear`` + ``torch.optim`` (SGD or Adam, weight decay λ on
    the weights only, which adds λW to their gradients: the same g), eager or compiled.
    ``torch.optim.Adam`` adds ε to the bias-corrected √v̂; its ε is set to ε/√(1 − β₂ᵗ)
    before step t, which is the update of the others, ε added to √v (the same arithmetic)."""

    compiled = False

    def __init__(self, w: Workload, X, y, theta0: np.ndarray) -> None:
        import torch

        self.torch, self.w, self.theta0 = torch, w, theta0
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y if w.output == "softmax" else y.reshape(len(y), -1))
        act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[w.activation]
        layers = []
        for i, o in zip(w.sizes[:-1], w.sizes[1:]):
            layers += [torch.nn.Linear(i, o), act()]
        self.model = torch.nn.Sequential(*layers[:-1])
        self.linears = [m for m in self.model if isinstance(m, torch.nn.Linear)]
        self.forward = torch.compile(self.model) if self.compiled else self.model
        if w.output == "softmax":
            self.loss = torch.nn.functional.cross_entropy
        else:
            self.loss = lambda out, target: 0.5 * torch.nn.functional.mse_loss(out, target)

    def reset(self) -> None:
        torch, w = self.torch, self.w
        net = w.network()
        np.copyto(net.params, self.theta0)
        with torch.no_grad():
            for lin, W, b in zip(self.linears, net.weights, net.biases):
                lin.weight.copy_(torch.from_numpy(W))
                lin.bias.copy_(torch.from_numpy(b))
        groups = [
            {"params": [m.weight for m in self.linears], "weight_decay": w.l2},
            {"params": [m.bias for m in self.linears], "weight_decay": 0.0},
        ]
        self.adam = dp.Adam(w.learning_rate) if w.algorithm == "adam" else None
        if self.adam:
            betas = (self.adam.beta1, self.adam.beta2)
            self.optimizer = torch.optim.Adam(groups, lr=w.learning_rate, betas=betas)
        else:
            self.optimizer = torch.optim.SGD(groups, lr=w.learning_rate)
        self.t = 0

    def run(self) -> None:
        batch = self.w.batch_size or len(self.X)
        for _ in range(self.w.steps):
            for start in range(0, len(self.X), batch):
                X, y = self.X[start : start + batch], self.y[start : start + batch]
                self.optimizer.zero_grad(set_to_none=True)
                self.loss(self.forward(X), y).backward()
                if self.adam:  # ε on √v, as deltaprop, scikit-learn and JAX here
                    self.t += 1
                    eps = self.adam.eps / math.sqrt(1 - self.adam.beta2**self.t)
                    for group in self.optimizer.param_groups:
                        group["eps"] = eps
                self.optimizer.step()

    def params(self) -> np.ndarray:
        weights = [m.weight.detach().numpy() for m in self.linears]
        return flat(weights, [m.bias.detach().numpy() for m in self.linears])


class TorchCompile(PyTorch):
    compiled = True


class Jax:
    """A ``jax.jit`` step (value_and_grad of J, then θ − ηg or Adam) called from a Python loop;
    for mini-batches one jitted ``lax.scan`` over the epoch's batches."""

    def __init__(self, w: Workload, X, y, theta0: np.ndarray) -> None:
        import jax
        import jax.numpy as jnp

        self.jax, self.w, self.theta0 = jax, w, theta0
        act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[w.activation]
        l2, eta = w.l2, w.learning_rate

        def objective(params, X, y):
            z = X
            for W, b in params[:-1]:
                z = act(z @ W.T + b)
            W, b = params[-1]
            a = z @ W.T + b
            if w.output == "softmax":
                picked = jnp.take_along_axis(a, y[:, None], axis=1)[:, 0]
                loss = jnp.mean(jax.nn.logsumexp(a, axis=1) - picked)
            else:
                loss = 0.5 * jnp.mean(jnp.sum((a - y) ** 2, axis=1))
            return loss + 0.5 * l2 * sum(jnp.vdot(W, W) for W, _ in params)

        grad = jax.grad(objective)

        def gd_step(params, X, y):
            return jax.tree_util.tree_map(lambda p, g: p - eta * g, params, grad(params, X, y))

        def adam_step(state, batch):
            params, m, v, t = state
            g = grad(params, *batch)
            t = t + 1
            m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
            v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
            rate = eta * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            params = jax.tree_util.tree_map(
                lambda p, m, v: p - rate * m / (jnp.sqrt(v) + 1e-8), params, m, v
            )
            return (params, m, v, t), None

        def adam_epoch(state, Xb, yb):
            return jax.lax.scan(adam_step, state, (Xb, yb))[0]

        if w.algorithm == "adam":
            k = w.batch_size
            self.X = jnp.asarray(X.reshape(-1, k, X.shape[1]))
            self.y = jnp.asarray(y.reshape(-1, k, *y.shape[1:]))
            self.step = jax.jit(adam_epoch)
        else:
            self.X, self.y = jnp.asarray(X), jnp.asarray(y)
            self.step = jax.jit(gd_step, donate_argnums=0)

    def reset(self) -> None:
        jnp = self.jax.numpy
        net = self.w.network()
        np.copyto(net.params, self.theta0)
        self.state = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(net.weights, net.biases)]
        if self.w.algorithm == "adam":
            zeros = self.jax.tree_util.tree_map(jnp.zeros_like, self.state)
            self.state = (self.state, zeros, zeros, jnp.float32(0))

    def run(self) -> None:
        for _ in range(self.w.steps):
            self.state = self.step(self.state, self.X, self.y)
        self.jax.block_until_ready(self.state)

    def params(self) -> np.ndarray:
        params = self.state[0] if self.w.algorithm == "adam" else self.state
        return flat([np.asarray(W) for W, _ in params], [np.asarray(b) for _, b in params])


CLASSES = {
    "deltaprop": Deltaprop,
    "scikit-learn": ScikitLearn,
    "pytorch": PyTorch,
    "torch.compile": TorchCompile,
    "jax": Jax,
}
