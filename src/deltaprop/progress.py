"""A progress bar for ``fit``: epoch, loss, validation loss/accuracy and time left (rich)."""

from __future__ import annotations

import math
import time

from .errors import ConfigError
from .training import Callback, TrainingState

REFRESH = 0.1  # seconds between bar updates (a full-batch epoch may take microseconds)


def _format(record: dict, key: str, percent: bool = False) -> str:
    value = record.get(key)
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.1%}" if percent else f"{value:.3g}"


class ProgressBar(Callback):
    """Draws ``epoch k/N ━━━━ loss … val_loss … val_acc … ETA`` on ``console`` (a
    ``rich.console.Console``; default: standard error). Nothing is drawn when the console is
    not a terminal, except the final state."""

    def __init__(self, console=None, description: str = "training") -> None:
        try:
            from rich.console import Console
        except ImportError:
            raise ConfigError('the progress bar needs rich: pip install "deltaprop[cli]"') from None
        self.console = console or Console(stderr=True)
        self.description = description
        self._progress = None

    def on_train_begin(self, state: TrainingState) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._first = len(state.history)
        self._task = self._progress.add_task(
            self.description, total=self._first + state.epochs, completed=self._first, metrics=""
        )
        self._last_draw = 0.0
        self._progress.start()

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        now = time.perf_counter()
        if now - self._last_draw >= REFRESH:
            self._update(state, record)
            self._last_draw = now

    def _update(self, state: TrainingState, record: dict) -> None:
        metrics = f"loss {_format(record, 'loss')}"
        if "val_loss" in record:
            metrics += f" val {_format(record, 'val_loss')}"
        if "val_accuracy" in record:
            metrics += f" {_format(record, 'val_accuracy', percent=True)}"
        elif "accuracy" in record:
            metrics += f" {_format(record, 'accuracy', percent=True)}"
        self._progress.update(self._task, completed=len(state.history), metrics=metrics)

    def on_train_end(self, state: TrainingState) -> None:
        if self._progress is None:
            return
        if state.history.records:
            self._update(state, state.history.records[-1])
        self._progress.stop()
        self._progress = None
