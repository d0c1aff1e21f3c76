"""Hidden-layer activations σ, each a record with σ, σ′ and σ″ side by side.

Derivatives are written in terms of the layer's output z = σ(a), as the backward
pass keeps only z: sigmoid′ = z(1 − z), tanh′ = 1 − z², relu′ = 1[z > 0].
All functions work in place (``out=``) so the training loop allocates nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

InPlace = Callable[[np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class Activation:
    """σ(a) → z, σ′ and σ″ expressed through z = σ(a); each writes into ``out``."""

    name: str
    function: InPlace  # (a, out): out = σ(a)
    derivative: InPlace  # (z, out): out = σ′(a) where z = σ(a)
    second_derivative: InPlace  # (z, out): out = σ″(a) where z = σ(a)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def _identity(a, out):
    if out is not a:
        np.copyto(out, a)


def _ones(z, out):
    out.fill(1)


def _zeros(z, out):
    out.fill(0)


def _sigmoid(a, out):
    # σ(a) = 1/(1 + e^(−a)) keeps full relative precision for a ≪ 0 (½(1 + tanh(a/2))
    # loses it below a ≈ −10); where e^(−a) overflows, 1/∞ = 0 is the right answer.
    np.negative(a, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)


def _sigmoid_prime(z, out):  # σ′ = z(1 − z)
    np.subtract(1, z, out=out)
    out *= z


def _sigmoid_second(z, out):  # σ″ = z(1 − z)(1 − 2z)
    np.multiply(z, -2, out=out)
    out += 1
    out *= z
    out *= 1 - z


def _tanh_prime(z, out):  # tanh′ = 1 − z²
    np.multiply(z, z, out=out)
    np.subtract(1, out, out=out)


def _tanh_second(z, out):  # tanh″ = −2z(1 − z²)
    _tanh_prime(z, out)
    out *= z
    out *= -2


_ZEROS: dict[np.dtype, np.ndarray] = {}


def zeros_like(a: np.ndarray) -> np.ndarray:
    """A read-only array of zeros shaped like ``a``, shared and grown on demand.

    np.maximum(a, 0) runs about 4x slower than np.maximum(a, zeros) (NumPy 2.4: no SIMD loop
    for a broadcast scalar). Untouched calloc'd pages all map the kernel's one zero page, so
    the buffer costs no resident memory however large.
    """
    zeros = _ZEROS.get(a.dtype)
    if zeros is None or zeros.size < a.size:
        zeros = np.zeros(max(a.size, 1 << 16), a.dtype)
        zeros.flags.writeable = False
        _ZEROS[a.dtype] = zeros
    return zeros[: a.size].reshape(a.shape)


def _relu(a, out):
    np.maximum(a, zeros_like(a), out=out)


def _relu_prime(z, out):  # relu′(a) = 1[a > 0]; relu′(0) = 0 (the weak derivative)
    np.greater(z, 0, out=out)


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation("identity", _identity, _ones, _zeros),
    "sigmoid": Activation("sigmoid", _sigmoid, _sigmoid_prime, _sigmoid_second),
    "tanh": Activation("tanh", lambda a, out: np.tanh(a, out=out), _tanh_prime, _tanh_second),
    "relu": Activation("relu", _relu, _relu_prime, _zeros),
}
ALIASES = {"logistic": "sigmoid", "linear": "identity"}


def get_activation(name: str | Activation) -> Activation:
    """Look up an activation by name (``"logistic"`` is an alias of ``"sigmoid"``)."""
    if isinstance(name, Activation):
        return name
    key = ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in ACTIVATIONS:
        known = ", ".join(sorted([*ACTIVATIONS, *ALIASES]))
        raise ConfigError(f"unknown activation {name!r}; choose one of: {known}")
    return ACTIVATIONS[key]
