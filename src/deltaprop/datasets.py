"""Built-in datasets, generated locally from a seed (never downloaded).

Classification (2-D): spiral, moons, circles, xor, gaussians. Regression: plane (2-D),
sine (1-D). Larger: digits (scikit-learn's bundled copy), mnist1d (the ``mnist1d``
package's local generator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .errors import ConfigError
from .network import as_generator


@dataclass
class Dataset:
    """Features X (n × d), targets y (labels or values), the task and readable names."""

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str  # "classification" or "regression"
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def _spiral(n, noise, rng, arms=3):
    counts = [n // arms + (k < n % arms) for k in range(arms)]  # all n rows, arms ± 1 apart
    if min(counts) < 2:
        raise ConfigError(f"the spiral needs at least 2 points an arm, so n ≥ {2 * arms}")
    t = np.concatenate([np.linspace(0.0, 1.0, c) for c in counts])
    label = np.repeat(np.arange(arms), counts)
    angle = 4.0 * t + 2 * np.pi * label / arms + rng.normal(0, noise, t.size)
    return np.column_stack([t * np.cos(angle), t * np.sin(angle)]), label


def _moons(n, noise, rng):
    half = n // 2
    t = rng.uniform(0, np.pi, n)
    label = (np.arange(n) >= half).astype(np.intp)
    x = np.where(label == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(label == 0, np.sin(t), 0.5 - np.sin(t))
    return np.column_stack([x, y]) + rng.normal(0, noise, (n, 2)), label


def _circles(n, noise, rng):
    label = (np.arange(n) >= n // 2).astype(np.intp)
    t = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(label == 0, 1.0, 0.5)
    points = np.column_stack([radius * np.cos(t), radius * np.sin(t)])
    return points + rng.normal(0, noise, (n, 2)), label


def _xor(n, noise, rng):
    X = rng.uniform(-1, 1, (n, 2))
    label = (X[:, 0] * X[:, 1] > 0).astype(np.intp)
    return X + rng.normal(0, noise, (n, 2)), label


def _gaussians(n, noise, rng, classes=4):
    label = np.arange(n) % classes
    centres = np.array([[np.cos(a), np.sin(a)] for a in 2 * np.pi * np.arange(classes) / classes])
    return centres[label] + rng.normal(0, 0.3 + noise, (n, 2)), label


def _plane(n, noise, rng):
    X = rng.uniform(-1, 1, (n, 2))
    return X, 0.5 * X[:, 0] - 0.8 * X[:, 1] + 0.3 + rng.normal(0, noise, n)


def _sine(n, noise, rng):
    X = rng.uniform(-np.pi, np.pi, (n, 1))
    return X, np.sin(2 * X[:, 0]) + rng.normal(0, noise, n)


def _digits(n, noise, rng):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError(
            "the 'digits' dataset comes from scikit-learn; install it with "
            "pip install 'deltaprop[sklearn]'"
        ) from None
    data = load_digits()
    index = rng.permutation(len(data.target))[:n]
    return data.data[index] / 16.0, data.target[index]


def _mnist1d(n, noise, rng):
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ConfigError(
            "the 'mnist1d' dataset needs the mnist1d package: pip install \"deltaprop[mnist1d]\""
        ) from None
    args = get_dataset_args()
    args.num_samples = max(int(n / args.train_split) + 10, 100)
    args.seed = int(rng.integers(2**31))
    data = make_dataset(args)  # generated locally; mnist1d reseeds NumPy's global RNG
    return data["x"][:n], data["y"][:n].astype(np.intp)


Generator = Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]


class Builtin(NamedTuple):
    """One built-in dataset: its generator and what it makes."""

    make: Generator
    task: str
    n: int  # default rows
    noise: float  # default noise
    description: str
    classes: int = 0  # K: labels 0..K−1, all named even when a small sample lacks some
    max_n: int | None = None  # rows it has at most (a fixed collection)


CLASSIFY, REGRESS = "classification", "regression"
DATASETS: dict[str, Builtin] = {
    "spiral": Builtin(_spiral, CLASSIFY, 600, 0.2, "three interleaved spiral arms (2-D)", 3),
    "moons": Builtin(_moons, CLASSIFY, 400, 0.1, "two interleaving half circles (2-D)", 2),
    "circles": Builtin(_circles, CLASSIFY, 400, 0.08, "a circle inside a ring (2-D)", 2),
    "xor": Builtin(_xor, CLASSIFY, 400, 0.05, "quadrants labelled by the sign of x·y (2-D)", 2),
    "gaussians": Builtin(_gaussians, CLASSIFY, 400, 0.1, "four Gaussian blobs (2-D)", 4),
    "plane": Builtin(_plane, REGRESS, 400, 0.05, "a noisy plane y = 0.5x₁ − 0.8x₂ + 0.3 (2-D)"),
    "sine": Builtin(_sine, REGRESS, 400, 0.1, "a noisy sine wave y = sin 2x (1-D)"),
    "digits": Builtin(
        _digits, CLASSIFY, 1797, 0.0, "8×8 handwritten digits (scikit-learn)", 10, max_n=1797
    ),
    "mnist1d": Builtin(_mnist1d, CLASSIFY, 4000, 0.0, "MNIST-1D, 40 features (mnist1d)", 10),
}


def names() -> list[str]:
    """The built-in dataset names."""
    return list(DATASETS)


def load(
    name: str,
    n: int | None = None,
    noise: float | None = None,
    seed: int | np.random.Generator | None = 0,
) -> Dataset:
    """Generate the built-in dataset ``name`` with ``n`` samples, ``noise`` and ``seed``."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; built-in datasets: {', '.join(DATASETS)}")
    builtin = DATASETS[name]
    n = builtin.n if n is None else int(n)
    if n < 4:
        raise ConfigError(f"a dataset needs at least 4 samples, got n={n}")
    if builtin.max_n is not None and n > builtin.max_n:
        raise ConfigError(f"{name} has {builtin.max_n} samples; ask for at most that many")
    noise = builtin.noise if noise is None else float(noise)
    if noise < 0:
        raise ConfigError(f"noise must be ≥ 0, got {noise}")
    X, y = builtin.make(n, noise, as_generator(seed))
    features = [f"x{j + 1}" for j in range(X.shape[1])]
    classes = [str(k) for k in range(builtin.classes)]
    X = np.ascontiguousarray(X, dtype=np.float64)
    return Dataset(name, X, y, builtin.task, features, classes)
