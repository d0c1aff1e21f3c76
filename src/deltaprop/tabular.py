"""Tables in, model inputs out: reading CSV/TSV/Parquet/.npz files and the preprocessing
``deltaprop train`` fits on the training rows and stores in the model file.

Numeric columns are standardised, x ← (x − mean) / scale with the training rows' mean and
standard deviation; text columns are one-hot encoded (one input per category seen in
training); class labels are kept as their names. ``Preprocessing.to_dict()`` is plain JSON,
saved with ``deltaprop.save(network, path, preprocessing=...)`` and applied again at
prediction time by ``Preprocessing.from_dict``. Every defect of the input raises
``DataError`` naming the file, the column (and row) and the fix.
"""

from __future__ import annotations

import difflib
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError

READERS = {".csv": ",", ".tsv": "\t", ".txt": None, ".parquet": "parquet", ".npz": "npz"}
MAX_CATEGORIES = 100  # a text column with more distinct values is an identifier, not a feature
MAX_CLASSES_AUTO = 20  # whole-number targets with at most this many values are classes
TASKS = ("auto", "classification", "regression")
IMPUTE = ("mean", "median")


def _pandas():
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError('reading tables needs pandas: pip install "deltaprop[cli]"') from None
    return pd


def read_table(path: str | Path):
    """A DataFrame from a .csv, .tsv, .txt (delimiter sniffed), .parquet or .npz file.

    An .npz file gives one column per 1-D array and ``name1 … named`` for a 2-D array, in
    the order the arrays were saved (``np.savez(f, X=X, y=y)``: x-columns X1, X2, then y).
    """
    pd = _pandas()
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a .csv, .tsv, .parquet or .npz file in it")
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path")
    if kind is None and path.suffix.lower() not in READERS:
        raise DataError(
            f"{path}: unknown file type {path.suffix!r}; use a .csv, .tsv, .parquet or .npz file"
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        elif kind == "npz":
            frame = _npz_frame(path)
        else:
            engine = "python" if kind is None else "c"
            frame = pd.read_csv(path, sep=kind, engine=engine, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save it as a UTF-8 {path.suffix} file") from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: could not be read as {path.suffix[1:]} ({first})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if kind in (",", "\t") and len(frame.columns) == 1:
        other = next((d for d in ";|\t," if d != kind and d in frame.columns[0]), None)
        if other:
            raise DataError(
                f"{path}: every row is one column; the values seem separated by {other!r}, "
                f"not {kind!r}. Save the file with {kind!r} between values, or rename it to "
                ".txt to have the separator detected"
            )
    if len(frame) == 0:
        raise DataError(f"{path}: the file has no data rows; add rows below the header")
    if len(set(frame.columns)) != len(frame.columns):
        raise DataError(f"{path}: repeated column names; give every column its own name")
    frame.attrs["source"] = str(path)
    frame.attrs["line_offset"] = 2 if kind in (",", "\t", None) else None
    return frame


def _npz_frame(path: Path):
    pd = _pandas()
    columns = {}
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an .npz archive; write one with numpy.savez")
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            try:
                array = data[key]
            except ValueError:  # object arrays need pickle, which deltaprop never loads
                raise DataError(
                    f"{path}: array {key!r} holds Python objects; save numbers or fixed-width "
                    "text (e.g. y.astype(str)) instead"
                ) from None
            if array.ndim == 1:
                columns[key] = array
            elif array.ndim == 2:
                columns.update({f"{key}{j + 1}": array[:, j] for j in range(array.shape[1])})
            else:
                raise DataError(f"{path}: array {key!r} has {array.ndim} dimensions; use 1 or 2")
    lengths = {len(c) for c in columns.values()}
    if len(lengths) > 1:
        raise DataError(f"{path}: the arrays have different lengths {sorted(lengths)}")
    return pd.DataFrame(columns)


def where(frame, column: str, row: int) -> str:
    """'column 'x', row 7 (line 8)': a cell named so a user finds it in the file."""
    offset = frame.attrs.get("line_offset")
    line = f" (line {row + offset})" if offset else ""
    return f"column {column!r}, row {row + 1}{line}"


def pick_column(frame, name: str | None, what: str = "target") -> str:
    """``name`` if the table has it (default: the last column), else a DataError naming
    close matches."""
    columns = list(frame.columns)
    if name is None:
        return columns[-1]
    if name in columns:
        return name
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.5)
    folded = [c for c in columns if c.lower() == name.lower()]
    hint = f"did you mean {', '.join(map(repr, folded or close))}? " if folded or close else ""
    source = frame.attrs.get("source", "the data")
    raise DataError(f"{source} has no {what} column {name!r}; {hint}columns: {', '.join(columns)}")


def _numeric_column(frame, column: str, refuse_text: bool):
    """The column as float64, or None for a text column. A column whose values are mostly
    numbers but not all is refused, naming the first bad cell."""
    pd = _pandas()
    values = frame[column]
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed = pd.to_numeric(values, errors="coerce")
    present = values.notna().to_numpy()
    bad = present & parsed.isna().to_numpy()
    if refuse_text or (present.any() and bad.sum() < 0.5 * present.sum()):
        row = int(np.argmax(bad))
        raise DataError(
            f"{frame.attrs.get('source', 'data')}: {where(frame, column, row)}: "
            f"{values.iloc[row]!r} is not a number; fix or remove that value"
        )
    return None


def infer_task(frame, target: str) -> tuple[str, str]:
    """(task, reason): classification for text, booleans and whole numbers with at most
    ``MAX_CLASSES_AUTO`` distinct values; regression otherwise."""
    values = _numeric_column(frame, target, refuse_text=False)
    if values is None:
        return "classification", f"target {target!r} holds text"
    values = values[~np.isnan(values)]
    distinct = len(np.unique(values))
    if np.array_equal(values, np.round(values)) and distinct <= MAX_CLASSES_AUTO:
        return "classification", f"target {target!r} holds {distinct} distinct whole numbers"
    return "regression", f"target {target!r} holds numbers with {distinct} distinct values"


def label_names(values) -> np.ndarray:
    """Class labels as text; whole-number floats print as integers (1.0 → '1')."""
    array = np.asarray(values)
    if array.dtype.kind == "f" and np.array_equal(array, np.round(array)):
        array = array.astype(np.int64)
    return array.astype(str)


@dataclass
class Preprocessing:
    """Fitted preprocessing: input ``features`` (numeric ones standardised by ``mean`` and
    ``scale``, text ones one-hot over ``categories``), the ``target`` and how it is encoded
    (``classes`` for classification; ``target_mean``/``target_scale`` for regression).
    ``fill`` holds the training statistic used for missing values under ``impute``.
    """

    features: list[str]
    target: str
    task: str
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    target_mean: float = 0.0
    target_scale: float = 1.0
    impute: str | None = None
    fill: dict[str, float | str] = field(default_factory=dict)
    unseen: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def numeric(self) -> list[str]:
        return [c for c in self.features if c not in self.categories]

    @property
    def inputs(self) -> list[str]:
        """The network's input names: numeric columns, then ``column=category`` per one-hot."""
        return self.numeric + [f"{c}={v}" for c, cats in self.categories.items() for v in cats]

    @classmethod
    def fit(
        cls,
        frame,
        target: str,
        task: str,
        train_rows: np.ndarray,
        features: list[str] | None = None,
        impute: str | None = None,
    ) -> Preprocessing:
        """Statistics from ``train_rows`` only; ``features`` default: every other column."""
        if impute not in (None, *IMPUTE):
            raise ConfigError(f"impute must be one of {', '.join(IMPUTE)}, got {impute!r}")
        features = [c for c in frame.columns if c != target] if features is None else features
        columns = set(frame.columns)  # a set: thousands of columns are checked at once
        for column in features:
            if column not in columns:
                pick_column(frame, column, "feature")  # raises, naming close matches
        if not features:
            raise DataError(f"{frame.attrs.get('source')}: no feature columns besides {target!r}")
        if target in features:
            raise DataError(f"{target!r} is the target; it cannot also be a feature")
        prep = cls(list(features), target, task, impute=impute)
        train = frame.iloc[train_rows]
        for column in features:
            values = _numeric_column(frame, column, refuse_text=False)
            if values is None:
                prep._fit_text(train[column], column)
            else:
                prep._fit_numeric(values[train_rows], column)
        prep._fit_target(frame, train_rows)
        return prep

    def _fit_numeric(self, values: np.ndarray, column: str) -> None:
        present = values[~np.isnan(values)]
        if len(present) == 0:
            raise DataError(f"column {column!r} has no values in the training rows; drop it")
        if self.impute:
            self.fill[column] = float(getattr(np, self.impute)(present))
        with np.errstate(over="ignore", invalid="ignore"):
            mean, spread = float(present.mean()), float(present.std())
        if not (math.isfinite(mean) and math.isfinite(spread)):
            raise DataError(
                f"column {column!r} has values too large to standardise (up to "
                f"{np.abs(present).max():.3g}); rescale it (e.g. in other units) first"
            )
        self.mean.append(mean)
        self.scale.append(spread if spread > 0 else 1.0)

    def _fit_text(self, values, column: str) -> None:
        present = values.dropna().astype(str)
        categories = sorted(present.unique())
        if len(categories) > MAX_CATEGORIES:
            raise DataError(
                f"text column {column!r} has {len(categories)} distinct values (an identifier?); "
                f"leave it out with --features, listing the columns to use"
            )
        if self.impute:
            self.fill[column] = str(present.mode().iloc[0])  # the most frequent category
        self.categories[column] = categories

    def _fit_target(self, frame, train_rows: np.ndarray) -> None:
        y = self._target_column(frame)
        if self.task == "classification":
            self.classes = sorted(np.unique(label_names(y[train_rows])).tolist(), key=_natural)
            if len(self.classes) < 2:
                raise DataError(
                    f"target {self.target!r} has only one class ({self.classes[0]!r}) in the "
                    "training rows; classification needs at least two"
                )
        else:
            values = np.asarray(y[train_rows], dtype=np.float64)
            spread = float(values.std())
            self.target_mean, self.target_scale = float(values.mean()), spread or 1.0

    def _target_column(self, frame) -> np.ndarray:
        column = frame[self.target]
        missing = column.isna().to_numpy()
        if missing.any():
            cell = where(frame, self.target, int(np.argmax(missing)))
            raise DataError(
                f"{frame.attrs.get('source', 'data')}: {cell}: the target is missing; drop the "
                "rows without a target"
            )
        if self.task == "classification":
            return column.to_numpy()
        values = _numeric_column(frame, self.target, refuse_text=True)
        return values

    def transform(self, frame) -> np.ndarray:
        """The network's inputs X (n × len(inputs)) for the rows of ``frame``. Text values
        not seen in training get all-zero one-hot inputs and are listed in ``unseen``."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            source = frame.attrs.get("source", "the data")
            raise DataError(
                f"{source} lacks the feature column(s) {', '.join(map(repr, missing))} the "
                "model was trained on; add them (the target and other extra columns are ignored)"
            )
        parts, self.unseen = [], {}
        for j, column in enumerate(self.numeric):
            values = self._filled(frame, column, _numeric_column(frame, column, refuse_text=True))
            parts.append(((values - self.mean[j]) / self.scale[j])[:, None])
        for column, categories in self.categories.items():
            text = frame[column].astype(object).where(frame[column].notna(), None)
            values = self._filled(frame, column, text.to_numpy())
            codes = np.array([str(v) for v in values], dtype=object)
            one_hot = codes[:, None] == np.array(categories, dtype=object)
            unseen = sorted(set(codes[~one_hot.any(axis=1)]))
            if unseen:
                self.unseen[column] = unseen
            parts.append(one_hot.astype(float))
        return np.hstack(parts) if parts else np.empty((len(frame), 0))

    def _filled(self, frame, column: str, values: np.ndarray) -> np.ndarray:
        pd = _pandas()
        missing = pd.isna(values)
        if not missing.any():
            return values
        if column not in self.fill:
            source = frame.attrs.get("source", "data")
            raise DataError(
                f"{source}: {where(frame, column, int(np.argmax(missing)))} is missing; fill "
                "it in or drop the row (or train with --impute mean or median to fill gaps)"
            )
        values = values.copy()
        values[missing] = self.fill[column]
        return values

    def encode_target(self, frame) -> np.ndarray:
        """Class indices 0..K−1 (classification) or standardised values (regression)."""
        y = self._target_column(frame)
        if self.task == "regression":
            return (y - self.target_mean) / self.target_scale
        names = label_names(y)
        index = {name: k for k, name in enumerate(self.classes)}
        unknown = sorted(str(name) for name in set(names) - set(index))
        if unknown:
            raise DataError(
                f"target {self.target!r} has classes the model does not know: "
                f"{', '.join(map(repr, unknown[:5]))}; known: {', '.join(self.classes)}"
            )
        return np.array([index[name] for name in names], dtype=np.intp)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Class names from class indices, or values in the target's units."""
        if self.task == "classification":
            return np.array(self.classes, dtype=object)[outputs]
        return outputs * self.target_scale + self.target_mean

    def to_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "unseen"}
        data["inputs"] = self.inputs
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        """From a model file's metadata; files from the playground (numeric inputs, no task)
        are read too."""
        if not isinstance(data, dict):
            raise DataError(f"the stored preprocessing is {_shown(data)}, not a JSON object")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "unseen"}
        known.setdefault("task", "classification" if data.get("classes") else "regression")
        missing = [k for k in ("features", "target") if k not in known]
        if missing:
            raise DataError(f"the stored preprocessing lacks {' and '.join(missing)}")
        prep = cls(**known)
        for name, problem in prep._problems():
            if problem:
                raise DataError(
                    f"the stored preprocessing's {name} is {_shown(getattr(prep, name))}: {problem}"
                )
        return prep

    def _problems(self):
        """(field, what is wrong or ''), in an order where each check may rely on the ones
        before it."""
        yield "features", "" if _texts(self.features) else "expected a list of column names"
        yield "target", "" if isinstance(self.target, str) else "expected a column name"
        yield "task", "" if self.task in TASKS[1:] else f"expected one of {', '.join(TASKS[1:])}"
        good = isinstance(self.categories, dict) and all(map(_texts, self.categories.values()))
        yield "categories", "" if good else "expected {column: [category, ...]}"
        n = len(self.numeric)
        for name in ("mean", "scale"):
            values = getattr(self, name)
            good = (
                _numbers(values)
                and len(values) == n
                and (name == "mean" or all(v > 0 for v in values))
            )
            expected = f"expected {n} finite numbers (scale > 0), one per numeric column"
            yield name, "" if good else expected
        if self.task == "classification":
            good = _texts(self.classes) and len(self.classes) >= 2
            yield "classes", "" if good else "expected a list of at least two class names"
        else:
            yield "target_mean", "" if _numbers([self.target_mean]) else "expected a number"
            good = _numbers([self.target_scale]) and self.target_scale > 0
            yield "target_scale", "" if good else "expected a number > 0"
        good = self.impute in (None, *IMPUTE)
        yield "impute", "" if good else f"expected null or one of {', '.join(IMPUTE)}"
        good = isinstance(self.fill, dict) and all(
            isinstance(v, str) if c in self.categories else _numbers([v])
            for c, v in self.fill.items()
        )
        yield "fill", "" if good else "expected a number per numeric column, a text per text one"


def _texts(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _numbers(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def dataset_frame(dataset):
    """A built-in ``datasets.Dataset`` as a table: its feature columns, then the target ``y``."""
    pd = _pandas()
    frame = pd.DataFrame(dataset.X, columns=dataset.feature_names)
    frame["y"] = dataset.y
    frame.attrs["source"] = f"the built-in dataset {dataset.name!r}"
    return frame


def _natural(name: str):
    """Sort class names numerically when they are numbers ('2' before '10')."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)
