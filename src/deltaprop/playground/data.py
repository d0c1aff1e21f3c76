"""What a session trains on: a built-in dataset or an uploaded CSV, split into train and test.

Uploads are parsed in memory by pandas as data only (no file is written, no path is opened);
their numeric input columns are standardised with the training rows' mean and spread, as
``deltaprop train`` does, and the statistics travel with the exported model file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from .. import datasets
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


def parse_csv(body: bytes, name: str) -> Table:
    """A ``Table`` from CSV bytes, or ``DataError`` naming what is wrong with the file."""
    import pandas as pd

    if b"\x00" in body[:4096]:
        raise DataError(f"{name} is not a text file; upload a CSV file (comma-separated text)")
    try:
        frame = pd.read_csv(io.BytesIO(body), sep=None, engine="python", encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{name} is not UTF-8 text; save it as a UTF-8 CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "no data"
        raise DataError(f"{name} could not be read as CSV: {first}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame.columns) < 2 or len(frame) < MIN_ROWS:
        raise DataError(
            f"{name} has {len(frame)} rows and {len(frame.columns)} columns; the playground "
            f"needs a header row, at least {MIN_ROWS} rows and 2 columns (features and a target)"
        )
    if len(set(frame.columns)) != len(frame.columns):
        raise DataError(f"{name} has repeated column names; give every column its own name")
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if not numeric:
        raise DataError(f"{name} has no numeric column to use as an input feature")
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
    frame, name = table.frame, table.name
    columns = list(frame.columns)
    target = settings.target or columns[-1]
    if target not in columns:
        raise DataError(f"{name} has no column {target!r}; choose one of: {', '.join(columns)}")
    features = settings.features or [c for c in table.numeric if c != target]
    for column in features:
        if column not in columns:
            raise DataError(f"{name} has no column {column!r}")
        if column not in table.numeric:
            raise DataError(f"column {column!r} is not numeric; only numeric columns can be inputs")
    if not features or target in features:
        raise DataError("choose at least one input column other than the target")
    rows = frame[[*features, target]]
    if rows.isna().to_numpy().any():
        row, col = np.argwhere(rows.isna().to_numpy())[0]
        raise DataError(
            f"{name} has a missing value in column {rows.columns[col]!r} (data row {row + 1}); "
            "fill or drop the incomplete rows"
        )
    X = rows[features].to_numpy(dtype=np.float64)
    task = settings.task if settings.task != "auto" else _infer_task(rows[target])
    if task == "classification":
        class_names, y = np.unique(rows[target].astype(str).to_numpy(), return_inverse=True)
        if not 2 <= len(class_names) <= MAX_CLASSES:
            raise DataError(
                f"target {target!r} has {len(class_names)} classes; classification needs 2 to "
                f"{MAX_CLASSES} (set the task to regression for a numeric target)"
            )
        class_names = [str(c) for c in class_names]
    else:
        if target not in table.numeric:
            raise DataError(f"target {target!r} is not numeric; set the task to classification")
        y, class_names = rows[target].to_numpy(dtype=np.float64), []
    test = _test_mask(len(X), settings.test_fraction, rng)
    mean = X[~test].mean(axis=0)
    scale = X[~test].std(axis=0)
    scale[scale == 0] = 1.0
    X = (X - mean) / scale
    view = [features.index(c) for c in settings.view if c in features][:2] or list(
        range(min(2, len(features)))
    )
    preprocessing = {
        "features": features,
        "target": target,
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "classes": class_names,
    }
    return Problem(task, X, y, test, features, class_names, view, preprocessing, name)


def _infer_task(column) -> str:
    """Classification for text, booleans and integers with few distinct values."""
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return "classification"
    values = column.to_numpy()
    whole = np.array_equal(values, np.round(values))
    return "classification" if whole and column.nunique() <= 20 else "regression"
