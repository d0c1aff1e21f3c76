"""The project's exception types: each message names the problem and the fix."""


class DeltapropError(Exception):
    """Base class of every error deltaprop raises on purpose."""


class ConfigError(DeltapropError, ValueError):
    """An invalid setting: unknown name, non-positive width or step size, negative penalty."""


class DataError(DeltapropError, ValueError):
    """Input data that cannot be used: wrong shape, non-finite values, labels out of range."""


class DivergenceError(DeltapropError, FloatingPointError):
    """Training produced a non-finite objective; the last finite parameters were restored."""


class ModelFileError(DeltapropError, ValueError):
    """A model file that cannot be read: corrupted, truncated, foreign or from a newer version."""
