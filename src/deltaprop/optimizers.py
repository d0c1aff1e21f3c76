"""Update rules on the flat parameter vector: each ``step(params, grad)`` is a few
whole-vector operations in place, with state buffers made once."""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError
from .fused import kernels


def _check_rate(name: str, value: float) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(rate) or rate <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return rate


def _check_fraction(name: str, value: float) -> float:
    fraction = float(value)
    if not 0 <= fraction < 1:
        raise ConfigError(f"{name} must lie in [0, 1), got {value!r}")
    return fraction


class Optimizer:
    """Base class: a learning rate η, state buffers and a ``step`` counter for checkpoints."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.steps = 0

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = _check_rate("learning_rate (η)", value)

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    def finish_and_step(self, params: np.ndarray, grad: np.ndarray, finish) -> None:
        """``step`` from the gradient's sums: ``finish`` (a ``GradientFinish``) turns them
        into g in place first; an optimizer may do both in one pass, with the same bits."""
        finish.apply(params, grad)
        self.step(params, grad)

    def _buffers(self, params: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
        """State vectors shaped like ``params``, made on the first step."""
        if getattr(self, "_state", None) is None or self._state[names[0]].shape != params.shape:
            self._state = {name: np.zeros_like(params) for name in names}
        return [self._state[name] for name in names]

    def state_dict(self) -> dict:
        """Everything needed to resume: scalars and state arrays (copies)."""
        arrays = {k: v.copy() for k, v in (getattr(self, "_state", None) or {}).items()}
        return {"learning_rate": self.learning_rate, "steps": self.steps, "arrays": arrays}

    def load_state_dict(self, state: dict) -> None:
        self.learning_rate = state["learning_rate"]
        self.steps = int(state["steps"])
        arrays = state.get("arrays") or {}
        self._state = {k: np.array(v) for k, v in arrays.items()} or None


class GradientDescent(Optimizer):
    """The lecture's rule θ ← θ − η g, η > 0."""

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        (scaled,) = self._buffers(params, ("scratch",))
        np.multiply(grad, self.learning_rate, out=scaled)
        params -= scaled
        self.steps += 1


class Momentum(Optimizer):
    """Heavy ball v ← μv − ηg, θ ← θ + v; Nesterov: θ ← θ + μv − ηg (scikit-learn's form)."""

    def __init__(self, learning_rate: float, momentum: float = 0.9, nesterov: bool = False) -> None:
        super().__init__(learning_rate)
        self.momentum = _check_fraction("momentum", momentum)
        self.nesterov = bool(nesterov)

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        velocity, scaled = self._buffers(params, ("velocity", "scratch"))
        np.multiply(grad, self.learning_rate, out=scaled)
        velocity *= self.momentum
        velocity -= scaled
        if self.nesterov:
            params -= scaled
            np.multiply(velocity, self.momentum, out=scaled)
        else:
            np.copyto(scaled, velocity)
        params += scaled
        self.steps += 1


class Adam(Optimizer):
    """Adam: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − η_t m / (√v + ε),
    η_t = η √(1−β₂ᵗ)/(1−β₁ᵗ) (Kingma & Ba, as scikit-learn writes it)."""

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1 = _check_fraction("beta1", beta1)
        self.beta2 = _check_fraction("beta2", beta2)
        self.eps = _check_rate("eps", eps)

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        self._step(params, grad, None)

    def finish_and_step(self, params: np.ndarray, grad: np.ndarray, finish) -> None:
        self._step(params, grad, finish)

    def _step(self, params: np.ndarray, grad: np.ndarray, finish) -> None:
        first, second, scratch = self._buffers(params, ("first", "second", "scratch"))
        self.steps += 1
        t = self.steps
        # a Python float: NumPy's float64 scalar would force a float64 pass over float32 θ
        rate = self.learning_rate * math.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)
        flat = params.ndim == 1 and grad.shape == params.shape and grad.dtype == params.dtype
        compiled = kernels() if flat else None
        if compiled is not None:  # one pass, the same bits as the NumPy lines below
            dtype, b1, b2 = params.dtype.type, self.beta1, self.beta2
            decayed, scale, l2 = 0, 1.0, 0.0  # g as given
            if finish is not None:
                decayed = finish.n_weights if finish.l2 else 0
                scale, l2 = finish.scale, finish.l2
            constants = (dtype(c) for c in (scale, l2, b1, 1 - b1, b2, 1 - b2, self.eps, rate))
            compiled.adam(params, grad, first, second, decayed, *constants)
            return
        if finish is not None:
            finish.apply(params, grad)
        first *= self.beta1
        np.multiply(grad, 1 - self.beta1, out=scratch)
        first += scratch
        second *= self.beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - self.beta2
        second += scratch
        np.sqrt(second, out=scratch)
        scratch += self.eps
        np.divide(first, scratch, out=scratch)
        scratch *= rate
        params -= scratch


class ConstantSchedule:
    """Learning-rate schedule of scikit-learn's MLPs: η stays ``learning_rate_init``.

    ``epoch_end(optimizer, samples_seen)`` runs after every epoch; ``plateau(optimizer)``
    runs when the monitored score stopped improving and returns True to stop training.
    """

    def __init__(self, learning_rate_init: float) -> None:
        self.learning_rate_init = _check_rate("learning_rate_init", learning_rate_init)

    def epoch_end(self, optimizer: Optimizer, samples_seen: int) -> None:
        pass

    def plateau(self, optimizer: Optimizer) -> bool:
        return True


class InverseScaling(ConstantSchedule):
    """η_t = η_0 / (t + 1)^power_t with t the number of samples seen, set after each epoch."""

    def __init__(self, learning_rate_init: float, power_t: float = 0.5) -> None:
        super().__init__(learning_rate_init)
        self.power_t = float(power_t)

    def epoch_end(self, optimizer: Optimizer, samples_seen: int) -> None:
        optimizer.learning_rate = self.learning_rate_init / (samples_seen + 1) ** self.power_t


class AdaptiveSchedule(ConstantSchedule):
    """η stays η_0 while the score improves; each plateau divides it by ``factor`` (5),
    and a plateau once η ≤ ``min_rate`` (10⁻⁶) stops training."""

    def __init__(self, learning_rate_init: float, factor: float = 5.0, min_rate: float = 1e-6):
        super().__init__(learning_rate_init)
        self.factor, self.min_rate = float(factor), float(min_rate)

    def plateau(self, optimizer: Optimizer) -> bool:
        if optimizer.learning_rate <= self.min_rate:
            return True
        optimizer.learning_rate /= self.factor
        return False
