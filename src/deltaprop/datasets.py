"""Built-in datasets, generated locally from a seed (never downloaded).

Classification (2-D): spiral, moons, circles, xor, gaussians. Regression: plane (2-D),
sine (1-D). Larger: digits (scikit-learn's bundled copy), mnist1d (the ``mnist1d``
package's local generator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
    per = n // arms
    t = np.tile(np.linspace(0.0, 1.0, per), arms)
    label = np.repeat(np.arange(arms), per)
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
            "the 'mnist1d' dataset needs the mnist1d package; pip install mnist1d"
        ) from None
    args = get_dataset_args()
    args.num_samples = max(int(n / args.train_split) + 10, 100)
    args.seed = int(rng.integers(2**31))
    data = make_dataset(args)  # generated locally; mnist1d reseeds NumPy's global RNG
    return data["x"][:n], data["y"][:n].astype(np.intp)


Generator = Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]
# name: (generator, task, default n, default noise, description)
DATASETS: dict[str, tuple[Generator, str, int, float, str]] = {
    "spiral": (_spiral, "classification", 600, 0.2, "three interleaved spiral arms (2-D)"),
    "moons": (_moons, "classification", 400, 0.1, "two interleaving half circles (2-D)"),
    "circles": (_circles, "classification", 400, 0.08, "a circle inside a ring (2-D)"),
    "xor": (_xor, "classification", 400, 0.05, "quadrants labelled by the sign of x·y (2-D)"),
    "gaussians": (_gaussians, "classification", 400, 0.1, "four Gaussian blobs (2-D)"),
    "plane": (_plane, "regression", 400, 0.05, "a noisy plane y = 0.5x₁ − 0.8x₂ + 0.3 (2-D)"),
    "sine": (_sine, "regression", 400, 0.1, "a noisy sine wave y = sin 2x (1-D)"),
    "digits": (_digits, "classification", 1797, 0.0, "8×8 handwritten digits (scikit-learn)"),
    "mnist1d": (_mnist1d, "classification", 4000, 0.0, "MNIST-1D, 40 features (mnist1d)"),
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
    make, task, default_n, default_noise, _ = DATASETS[name]
    n = default_n if n is None else int(n)
    if n < 4:
        raise ConfigError(f"a dataset needs at least 4 samples, got n={n}")
    noise = default_noise if noise is None else float(noise)
    if noise < 0:
        raise ConfigError(f"noise must be ≥ 0, got {noise}")
    X, y = make(n, noise, as_generator(seed))
    features = [f"x{j + 1}" for j in range(X.shape[1])]
    classes = [str(c) for c in np.unique(y)] if task == "classification" else []
    return Dataset(name, np.ascontiguousarray(X, dtype=np.float64), y, task, features, classes)
