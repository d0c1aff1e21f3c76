"""The ``deltaprop`` command (also ``python -m deltaprop``): train, predict, evaluate,
explain, gradcheck, datasets, info and plot, one module per command group.

A new subcommand is a click command in its own module, added to ``COMMANDS`` in ``app``.
"""

from .app import cli, main

__all__ = ["cli", "main"]
