"""The playground's settings: every rule declared once as data, checked in one place.

A browser sends a dict; ``parse_settings`` returns a ``Settings`` or raises ``ConfigError``
with a message naming the field and the allowed values, which the page shows as it is.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

from ..errors import ConfigError

BUILTIN = ("spiral", "moons", "circles", "xor", "gaussians", "plane", "sine")
MAX_LAYERS, MAX_WIDTH = 8, 256


@dataclass(frozen=True)
class Settings:
    """Data, network and solver of one training session (defaults: the lecture's full-batch GD)."""

    dataset: str = "spiral"
    n: int = 600
    noise: float = 0.2
    test_fraction: float = 0.2
    upload: str = ""
    target: str = ""
    features: list[str] = field(default_factory=list)
    view: list[str] = field(default_factory=list)
    task: str = "auto"
    hidden: list[int] = field(default_factory=lambda: [32, 32])
    activation: str = "relu"
    solver: str = "gd"
    learning_rate: float = 0.3
    l2: float = 1e-4
    batch_size: int | str = "full"
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _number(kind, low, high, *, low_open=False):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be finite")
        if kind is int and value != int(value):
            raise ValueError("must be a whole number")
        if value < low or (low_open and value == low) or value > high:
            bracket = "(" if low_open else "["
            raise ValueError(f"must lie in {bracket}{low:g}, {high:g}]")
        return kind(value)

    return check


def _choice(*options):
    def check(value):
        if value not in options:
            raise ValueError(f"must be one of: {', '.join(options)}")
        return value

    return check


def _name(value):
    if not isinstance(value, str) or len(value) > 200:
        raise ValueError("must be a column name (text of at most 200 characters)")
    return value


def _names(value):
    if not isinstance(value, list) or len(value) > 10_000:
        raise ValueError("must be a list of column names")
    return [_name(v) for v in value]


def _hidden(value):
    if not isinstance(value, list) or len(value) > MAX_LAYERS:
        raise ValueError(f"must be a list of at most {MAX_LAYERS} layer widths")
    width = _number(int, 1, MAX_WIDTH)
    try:
        return [width(v) for v in value]
    except ValueError as err:
        raise ValueError(f"every width {err} (no empty layers)") from None


def _batch_size(value):
    return "full" if value == "full" else _number(int, 1, 1_000_000)(value)


def _token(value):
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]{0,64}", value):
        raise ValueError("must be the token the upload returned")
    return value


RULES = {
    "dataset": _choice(*BUILTIN, "upload"),
    "n": _number(int, 20, 20_000),
    "noise": _number(float, 0.0, 2.0),
    "test_fraction": _number(float, 0.0, 0.9),
    "upload": _token,
    "target": _name,
    "features": _names,
    "view": _names,
    "task": _choice("auto", "classification", "regression"),
    "hidden": _hidden,
    "activation": _choice("relu", "tanh", "sigmoid", "identity"),
    "solver": _choice("gd", "momentum", "adam"),
    "learning_rate": _number(float, 0.0, 1e9, low_open=True),
    "l2": _number(float, 0.0, 1e6),
    "batch_size": _batch_size,
    "seed": _number(int, 0, 2**32 - 1),
}
LABELS = {
    "learning_rate": "learning rate η",
    "l2": "L2 penalty λ",
    "n": "number of points",
    "hidden": "hidden layers:",
}


def parse_settings(data: object, base: Settings | None = None) -> Settings:
    """``base`` (default: the defaults) updated with the fields in ``data``, each checked."""
    if not isinstance(data, dict):
        raise ConfigError("settings must be a JSON object of field: value")
    values = (base or Settings()).to_dict()
    for key, value in data.items():
        if key not in RULES:
            raise ConfigError(f"unknown setting {key!r}; known settings: {', '.join(RULES)}")
        try:
            values[key] = RULES[key](value)
        except ValueError as err:
            raise ConfigError(f"{LABELS.get(key, key.replace('_', ' '))} {err}") from None
    if values["dataset"] == "upload" and not values["upload"]:
        raise ConfigError("upload a CSV file first, then choose its target column")
    return Settings(**values)
