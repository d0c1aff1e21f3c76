"""What a session trains on: a built-in dataset or an uploaded CSV, split into train and test.

Uploads are read by ``deltaprop.tabular`` (pandas) as data only, from a fixed file name in
the server's private temp folder that is deleted at once; the client's file name is never a
path. Their preprocessing is ``deltaprop train``'s own ``tabular.Preprocessing`` (numeric
inputs standardised, text inputs one-hot, regression targets standardised, fitted on the
training rows), so an exported model works with ``deltaprop predict``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import datasets, tabular
from ..errors import DataError
from .settings import Settings

MAX_CLASSES = 50
MIN_ROWS = 10


@dataclass
class Table:
    """An uploaded CSV: its display name and the parsed columns (never a path)."""

    name: str
    frame: object  # pandas.DataFrame
    numeric: list[str]

    def describe(self, token: str) -> dict:
        """What the page needs to offer target and feature choices."""
        columns = [
            {"name": c, "numeric": c in self.numeric, "distinct": int(self.frame[c].nunique())}
            for c in self.frame.columns
        ]
        return {"token": token, "name": self.name, "rows": len(self.frame), "columns": columns}


def parse_csv(body: bytes, name: str, folder: Path) -> Table:
    """A ``Table`` from the uploaded bytes, or ``DataError`` naming what is wrong with them.

    ``name`` (the client's file name) only labels messages; the bytes are written under a
    fixed name inside a fresh private folder in ``folder`` and removed after reading.
    """
    import pandas as pd

    if b"\x00" in body[:4096]:
        raise DataError(f"{name} is not a text file; upload a CSV file (comma-separated text)")
    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in (".tsv", ".txt") else ".csv"
    with tempfile.TemporaryDirectory(dir=folder) as private:
        path = Path(private) / f"upload{suffix}"
        path.write_bytes(body)
        try:
            frame = tabular.read_table(path)
        except DataError as err:
            raise DataError(str(err).replace(str(path), name)) from None
    frame.attrs["source"] = name
    if len(frame.columns) < 2 or len(frame) < MIN_ROWS:
        raise DataError(
            f"{name} has {len(frame)} rows and {len(frame.columns)} columns; the playground "
            f"needs a header row, at least {MIN_ROWS} rows and 2 columns (features and a target)"
        )
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if not numeric:
        raise DataError(f"{name} has no numeric column to plot; upload a table of numbers")
    return Table(name, frame, numeric)


@dataclass
class Problem:
    """Standardised model inputs and targets, split; ``view`` = the 1 or 2 plotted inputs."""

    task: str
    X: np.ndarray
    y: np.ndarray
    test: np.ndarray  # bool mask of the test rows
    feature_names: list[str]
    class_names: list[str] = field(default_factory=list)
    view: list[int] = field(default_factory=lambda: [0, 1])
    preprocessing: dict | None = None
    source: str = ""  # the dataset name, or the uploaded file's name

    @property
    def n_outputs(self) -> int:
        return len(self.class_names) if self.task == "classification" else 1

    @property
    def output(self) -> str:
        return "softmax" if self.task == "classification" else "identity"

    def split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(X_train, y_train, X_test, y_test)."""
        return self.X[~self.test], self.y[~self.test], self.X[self.test], self.y[self.test]

    def points(self) -> dict:
        """The plotted coordinates, targets and test flags, for the page."""
        coords = self.X[:, self.view]
        target = self.y.tolist() if self.task == "classification" else _round(self.y)
        return {
            "x": _round(coords[:, 0]),
            "y": _round(coords[:, 1]) if coords.shape[1] > 1 else [],
            "target": target,
            "test": self.test.astype(int).tolist(),
            "axes": [self.feature_names[j] for j in self.view],
            "task": self.task,
            "classes": self.class_names,
            "features": self.feature_names,
            "source": self.source,
        }


def _round(values: np.ndarray) -> list[float]:
    return np.round(np.asarray(values, dtype=float), 5).tolist()


def build_problem(settings: Settings, table: Table | None) -> Problem:
    """The session's data for ``settings`` (``table``: the upload it names, if any)."""
    rng = np.random.default_rng(settings.seed)
    if settings.dataset != "upload":
        data = datasets.load(settings.dataset, settings.n, settings.noise, settings.seed)
        if settings.task not in ("auto", data.task):
            raise DataError(
                f"{settings.dataset} is a {data.task} dataset; set the task to auto or {data.task}"
            )
        view = list(range(data.X.shape[1]))
        test = _test_mask(len(data.X), settings.test_fraction, rng)
        return Problem(
            data.task, data.X, data.y, test, data.feature_names, data.class_names, view,
            source=settings.dataset,
        )  # fmt: skip
    if table is None:
        raise DataError("the uploaded file is no longer available; upload it again")
    return _table_problem(settings, table, rng)


def _test_mask(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    test = np.zeros(n, dtype=bool)
    test[rng.permutation(n)[: int(round(fraction * n))]] = True
    if test.all():
        raise DataError("the test fraction leaves no training rows; lower it")
    return test


def _table_problem(settings: Settings, table: Table, rng: np.random.Generator) -> Problem:
    """Inputs and targets through ``tabular.Preprocessing`` fitted on the training rows."""
    frame = table.frame
    target = tabular.pick_column(frame, settings.target or None)
    task = settings.task if settings.task != "auto" else tabular.infer_task(frame, target)[0]
    features = settings.features or None  # default: every other column, as the CLI
    test = _test_mask(len(frame), settings.test_fraction, rng)
    prep = tabular.Preprocessing.fit(frame, target, task, np.flatnonzero(~test), features)
    if task == "classification" and len(prep.classes) > MAX_CLASSES:
        raise DataError(
            f"target {target!r} has {len(prep.classes)} classes; the playground shows at most "
            f"{MAX_CLASSES} (set the task to regression for a numeric target)"
        )
    X, y = prep.transform(frame), prep.encode_target(frame)
    inputs = prep.inputs
    view = [inputs.index(c) for c in settings.view if c in prep.numeric][:2]
    view = view or [inputs.index(c) for c in prep.numeric[:2]] or [0]
    return Problem(task, X, y, test, inputs, prep.classes, view, prep.to_dict(), table.name)
