"""Data sources: the rows of (X, Ỹ, w) that the objective sums over, partition by partition.

The lecture's gradient is a sum over samples, g = (1/n) Σ_i ∇ℓ_i + λ[w; 0], so it does not
matter where the rows live. A ``Source`` splits them into *partitions* (row counts
``partitions``) and reads each partition in blocks of at most ``rows`` rows:

- ``ArraySource``: arrays in memory (one partition unless told otherwise);
- ``NpySource``: ``.npy`` files (or ``np.load(..., mmap_mode="r")`` maps) read block by block
  with explicit reads, so memory and address space stay O(block) however big the file;
- ``ShardSource``: a folder, glob or list of ``.npy`` or Parquet shards, one partition each;
- ``DaskSource``: row-chunked Dask arrays, one partition per chunk.

Per partition, blocks start at the partition's first row; the same partitions and block size
give bit-identical sums from every source (see ``objective.partition_sum``).
The checks the objective's inputs pass (``check_data``; ``check_block`` per block) live here.
"""

from __future__ import annotations

import glob
import math
import mmap
import numbers
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .network import Network, all_finite, check_features

Block = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


class Source:
    """Rows in partitions (``partitions``: rows per partition), read block by block.

    Subclasses implement ``raw_blocks``; ``check`` validates every block once (a streaming
    pass) and ``blocks`` yields kernel-ready blocks (targets encoded for the network).
    """

    partitions: tuple[int, ...] = ()
    weighted: bool = False

    def __len__(self) -> int:
        return sum(self.partitions)

    @property
    def n_features(self) -> int | None:
        """d, the number of feature columns (None where only a read would tell)."""
        X = getattr(self, "X", None)
        return X.shape[1] if X is not None and len(X.shape) == 2 else None

    def raw_blocks(self, partition: int, rows: int) -> Iterator[Block]:
        """(X, Y, w) blocks of exactly ``rows`` rows (the last may be shorter), as stored."""
        raise NotImplementedError

    def read_partition(self, partition: int) -> Block:
        """The whole partition as one block (what a Dask loader task returns)."""
        return next(self.raw_blocks(partition, max(self.partitions[partition], 1)))

    def origin(self, partition: int) -> tuple[str, int]:
        """Where a partition's rows are, for messages: (a prefix naming its file, or "";
        the number of its first row)."""
        return "", sum(self.partitions[:partition])

    def check(self, network: Network, rows: int) -> float:
        """Validate every block for ``network``; returns Σ_i w_i (n without weights)."""
        if len(self) == 0:
            raise DataError("the data have no rows; pass at least one sample")
        checked = (self._checked_blocks(network, p, rows) for p in range(len(self.partitions)))
        return check_total(sum(blocks_weight(blocks) for blocks in checked))

    def _checked_blocks(self, network: Network, partition: int, rows: int) -> Iterator[Block]:
        prefix, first = self.origin(partition)
        for X, Y, w in self.raw_blocks(partition, rows):
            yield check_block(network, X, Y, w, first_row=first, prefix=prefix)
            first += len(X)

    def blocks(self, network: Network, partition: int, rows: int) -> Iterator[Block]:
        """Kernel-ready blocks: targets encoded (labels as integers), weights in the dtype."""
        for X, Y, w in self.raw_blocks(partition, rows):
            yield X, check_targets(network, Y, len(X)), as_weights(network, w)


class ArraySource(Source):
    """(X, Y, w) arrays in memory, split into ``partitions`` (row counts; default one)."""

    def __init__(self, X, Y, sample_weight=None, partitions=None, checked: bool = False):
        self.X, self.Y, self.weights = X, Y, sample_weight
        self.weighted = sample_weight is not None
        self.partitions = check_partitions(partitions, len(X))
        self.split = partitions is None  # a backend may split the rows its own way
        self.checked = checked  # True: the arrays are check_data's output

    @classmethod
    def validated(cls, network, X, Y, sample_weight=None, partitions=None) -> ArraySource:
        """A source over ``check_data``'s validated arrays (errors raised here, at the boundary)."""
        return cls(*check_data(network, X, Y, sample_weight), partitions, checked=True)

    def raw_blocks(self, partition: int, rows: int) -> Iterator[Block]:
        begin = sum(self.partitions[:partition])
        end = begin + self.partitions[partition]
        for start in range(begin, end, rows):
            stop = min(start + rows, end)
            w = None if self.weights is None else self.weights[start:stop]
            yield self.X[start:stop], self.Y[start:stop], w

    def check(self, network: Network, rows: int) -> float:
        if not self.checked:
            self.X, self.Y, self.weights = check_data(network, self.X, self.Y, self.weights)
            self.checked = True
        if self.weights is None:
            return float(len(self.X))
        return sum(blocks_weight(self.raw_blocks(p, rows)) for p in range(len(self.partitions)))

    def blocks(self, network: Network, partition: int, rows: int) -> Iterator[Block]:
        return self.raw_blocks(partition, rows)  # already encoded by check_data


class NpyRows:
    """Rows of a C-order ``.npy`` file (or a raw file at ``offset``), read on demand.

    Slicing reads just those rows with ``np.fromfile``: no map of the whole file, so the
    process's resident memory and address space hold one block, not the file.
    """

    def __init__(self, path, dtype=None, shape=None, offset: int | None = None) -> None:
        self.path = os.fspath(path)
        if dtype is None:
            try:
                with open(self.path, "rb") as f:
                    version = np.lib.format.read_magic(f)
                    read = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
                    shape, fortran, dtype = read(f)
                    offset = f.tell()
            except (OSError, ValueError) as err:
                raise DataError(f"cannot read {self.path} as a .npy file: {err}") from None
            if fortran and len(shape) > 1:
                raise DataError(
                    f"{self.path} is stored in Fortran order; rows cannot be read in blocks. "
                    "Save it in C order: np.save(path, np.ascontiguousarray(a))"
                )
        self.dtype, self.shape, self.offset = np.dtype(dtype), tuple(shape), int(offset or 0)
        if self.dtype.hasobject or not self.shape:
            raise DataError(f"{self.path} must hold a numeric array with rows, got {dtype} {shape}")
        self.row_items = int(np.prod(self.shape[1:], dtype=np.int64))
        need = self.offset + len(self) * self.row_items * self.dtype.itemsize
        have = os.path.getsize(self.path)
        if have < need:
            raise DataError(
                f"{self.path} is truncated: its header promises a {self.dtype} array of shape "
                f"{self.shape} ({need} bytes with the header) but the file has {have} bytes; "
                "write it again"
            )

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(len(self))
        m = max(stop - start, 0)
        at = self.offset + start * self.row_items * self.dtype.itemsize
        data = np.fromfile(self.path, self.dtype, count=m * self.row_items, offset=at)
        return data.reshape((m, *self.shape[1:]))


def as_rows(data, name: str):
    """``data`` as something sliceable by rows: a path or a whole-file map becomes ``NpyRows``
    (not a copy-on-write map, mode "c": its edits never reach the file)."""
    if isinstance(data, (str, os.PathLike)):
        return NpyRows(data)
    shared = isinstance(data, np.memmap) and data.mode != "c" and isinstance(data.base, mmap.mmap)
    if shared and data.flags.c_contiguous:
        return NpyRows(data.filename, data.dtype, data.shape, data.offset)
    if data is None or not hasattr(data, "shape"):
        raise DataError(f"{name} must be a .npy path or an array, got {type(data).__name__}")
    return data


class NpySource(ArraySource):
    """Rows of ``.npy`` files (paths or ``np.load(path, mmap_mode="r")``), read block by block.

    ``X`` (n × d), ``Y`` and ``sample_weight`` may each be a path, a map or an array.
    Memory is O(block); nothing is read until the objective asks for it.
    """

    def __init__(self, X, Y, sample_weight=None, partitions: Sequence[int] | None = None):
        X, Y = as_rows(X, "X"), as_rows(Y, "Y")
        w = None if sample_weight is None else as_rows(sample_weight, "sample_weight")
        for name, other in (("Y", Y), ("sample_weight", w)):
            if other is not None and len(other) != len(X):
                raise DataError(f"X has {len(X)} rows but {name} has {len(other)}; align the files")
        super().__init__(X, Y, w, partitions)

    check = Source.check
    blocks = Source.blocks


class ShardSource(Source):
    """A folder, glob or list of ``.npy`` or Parquet shards: one partition per shard.

    Each shard holds the features and the target: column ``target`` (an index for ``.npy``
    shards, default the last; a name for Parquet) is Y, the rest (or ``features``) are X.
    Every shard must have the same columns.
    """

    def __init__(self, paths, target: int | str = -1, features: Sequence | None = None):
        self.paths = expand_paths(paths)
        self.parquet = self.paths[0].suffix == ".parquet"
        if any((p.suffix == ".parquet") != self.parquet for p in self.paths):
            raise DataError("shards must be all .npy or all .parquet files, not a mix")
        self.target, self.features = target, features
        columns = [self._columns(p) for p in self.paths]
        for path, cols in zip(self.paths[1:], columns[1:]):
            if cols != columns[0]:
                raise DataError(
                    f"shard {path} has {describe(cols)} but {self.paths[0]} has "
                    f"{describe(columns[0])}; every shard needs the same columns"
                )
        self.columns = columns[0]
        self._split = self._column_split()
        self.partitions = tuple(self._rows(p) for p in self.paths)

    def _columns(self, path: Path):
        if self.parquet:  # without the index pandas stores (df.to_parquet), unless asked for
            schema = pq().read_schema(path)
            index = (schema.pandas_metadata or {}).get("index_columns", [])
            asked = [self.target, *(self.features or ())]
            return tuple(c for c in schema.names if c not in index or c in asked)
        rows = NpyRows(path)
        if rows.ndim != 2:
            raise DataError(f"shard {path} must be 2-D (rows × columns), got shape {rows.shape}")
        return rows.shape[1]

    def _rows(self, path: Path) -> int:
        return pq().ParquetFile(path).metadata.num_rows if self.parquet else len(NpyRows(path))

    def _column_split(self):
        """(feature columns, target column) as names (Parquet) or indices (.npy)."""
        names = list(self.columns) if self.parquet else list(range(self.columns))
        if isinstance(self.target, numbers.Integral) and not isinstance(self.target, bool):
            self.target = int(self.target)
        elif not isinstance(self.target, str):
            raise ConfigError(
                f"for shards, Y is the target column's name or index, not a "
                f"{type(self.target).__name__}; the shards hold the targets themselves"
            )
        try:
            target = names[self.target] if isinstance(self.target, int) else self.target
            if target not in names:
                raise IndexError
        except (IndexError, TypeError):
            raise ConfigError(
                f"target column {self.target!r} is not in the shards' {describe(names)}"
            ) from None
        features = list(self.features) if self.features is not None else names
        missing = [c for c in features if c not in names]
        if missing:
            raise ConfigError(f"feature columns {missing} are not in the shards' columns")
        return [c for c in features if c != target], target

    def raw_blocks(self, partition: int, rows: int) -> Iterator[Block]:
        features, target = self._split
        path = self.paths[partition]
        if not self.parquet:
            data = NpyRows(path)
            for start in range(0, len(data), rows):
                block = data[start : start + rows]
                yield block[:, features], block[:, target], None
            return
        pending = None
        for batch in pq().ParquetFile(path).iter_batches(batch_size=rows):
            table = pa().Table.from_batches([batch])
            pending = table if pending is None else pa().concat_tables([pending, table])
            while pending.num_rows >= rows:
                yield self._arrays(pending.slice(0, rows))
                pending = pending.slice(rows)
        if pending is not None and pending.num_rows:
            yield self._arrays(pending)

    def origin(self, partition: int) -> tuple[str, int]:
        return f"shard {self.paths[partition]}: ", 0

    @property
    def n_features(self) -> int:
        return len(self._split[0])

    @property
    def feature_names(self) -> list:
        """The feature columns: names (Parquet) or indices (.npy)."""
        return list(self._split[0])

    def target_values(self) -> np.ndarray:
        """Every shard's target column, in order (Parquet reads only that column)."""
        target = self._split[1]
        if self.parquet:
            return np.concatenate(
                [pq().read_table(p, columns=[target])[target].to_numpy() for p in self.paths]
            )
        return np.concatenate([NpyRows(p)[:][:, target] for p in self.paths])

    def _arrays(self, table) -> Block:
        features, target = self._split
        X = np.stack([table.column(c).to_numpy() for c in features], axis=1)
        return X, table.column(target).to_numpy(), None


class DaskSource(Source):
    """Row-chunked Dask arrays X (n × d), Y and optional w: one partition per row chunk.

    Column chunks of X are merged (``rechunk({1: -1})``); Y and w must be chunked along
    rows exactly like X (in-memory Y or w are split to match).
    """

    def __init__(self, X, Y, sample_weight=None) -> None:
        if getattr(X, "ndim", None) != 2:
            raise DataError(f"X must be a 2-D Dask array (n × d), got shape {X.shape}")
        if any(math.isnan(c) for c in X.chunks[0]):
            raise DataError(
                "X has unknown row-chunk sizes (e.g. after boolean indexing); call "
                "X = X.compute_chunk_sizes() (and the same for Y) first"
            )
        if Y is None:
            raise DataError("Y is missing: pass the targets with the Dask array X")
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        self.X = X
        self.Y = self._match(Y, "Y")
        self.weights = (
            None if sample_weight is None else self._match(sample_weight, "sample_weight")
        )
        self.weighted = sample_weight is not None
        self.partitions = tuple(int(c) for c in X.chunks[0])

    def _match(self, data, name: str):
        if not is_dask(data):
            import dask.array as da

            data = np.asarray(data)
            if len(data) != self.X.shape[0]:
                raise DataError(f"X has {self.X.shape[0]} rows but {name} has {len(data)}")
            return da.from_array(data, chunks=(self.X.chunks[0], *data.shape[1:]))
        if data.chunks[0] != self.X.chunks[0]:
            raise DataError(
                f"{name} is chunked along rows as {data.chunks[0]} but X as {self.X.chunks[0]}; "
                f"chunk them alike, e.g. {name} = {name}.rechunk({{0: X.chunks[0]}})"
            )
        if data.ndim == 2 and len(data.chunks[1]) > 1:
            data = data.rechunk({1: -1})
        return data

    @property
    def key(self) -> tuple:
        """Identifies the data (Dask's deterministic names), to reuse what was persisted."""
        return (self.X.name, self.Y.name, None if self.weights is None else self.weights.name)

    def arrays(self) -> list:
        return [a for a in (self.X, self.Y, self.weights) if a is not None]

    def raw_blocks(self, partition: int, rows: int) -> Iterator[Block]:
        parts = [a.blocks[partition].compute() for a in self.arrays()]
        if len(parts) == 2:
            parts.append(None)
        yield from ArraySource(*parts).raw_blocks(0, rows)


def open_source(network: Network, X, Y=None, sample_weight=None) -> Source:
    """The source for what the user passed: a ``Source`` as is; Dask arrays; a ``.npy`` path or
    a memory map; a folder/glob/list of shards (``Y`` is then the target column); else arrays
    (validated now, with ``check_data``'s messages)."""
    if isinstance(X, Source):
        if Y is not None or sample_weight is not None:
            raise ConfigError("pass Y and sample_weight inside the Source, not beside it")
        source = X
    elif is_dask(X):
        source = DaskSource(X, Y, sample_weight)
    elif is_shards(X):
        if sample_weight is not None:
            raise ConfigError("sample weights are not supported for shard folders")
        source = ShardSource(X, -1 if Y is None else Y)
    elif isinstance(X, (str, os.PathLike, np.memmap)):
        source = NpySource(X, Y, sample_weight)
    else:
        return ArraySource.validated(network, X, Y, sample_weight)
    if source.n_features not in (None, network.n_features):
        raise DataError(
            f"X has {source.n_features} features but the network expects {network.n_features}; "
            "pass data with the same columns the network was built for"
        )
    return source


def check_inputs(network: Network, X, Y, sample_weight=None):
    """(X, Y, w) validated arrays for in-memory data (what ``fit`` indexes for mini-batches),
    or (source, None, None) for out-of-core, sharded and Dask data."""
    source = open_source(network, X, Y, sample_weight)
    if source is not X and type(source) is ArraySource:
        return source.X, source.Y, source.weights
    return source, None, None


def check_data(network: Network, X, Y, sample_weight=None):
    """Validated (X, Y, w): X (n × d), targets for the network's output (integer labels
    stay labels) and sample weights (None, or n non-negative finite values, cast to the
    network's dtype, not all zero)."""
    X, Y, weights = check_block(network, X, Y, sample_weight)
    if weights is not None:
        check_total(float(weights.sum()))
    return X, Y, weights


def check_block(network: Network, X, Y, sample_weight=None, first_row: int = 0, prefix=""):
    """``check_data`` for one block of rows, where all-zero weights are allowed; messages
    count rows from ``first_row`` and start with ``prefix`` (e.g. the shard's name)."""
    try:
        X = check_features(X, network.n_features, network.dtype, first_row)
        Y = check_targets(network, Y, len(X))
    except DataError as err:
        raise DataError(f"{prefix}{err}") from None
    if sample_weight is None:
        return X, Y, None
    weights = np.asarray(sample_weight, dtype=network.dtype)
    if weights.shape != (len(X),):
        raise DataError(f"sample_weight must have shape ({len(X)},), got {weights.shape}")
    if not np.isfinite(weights).all() or weights.min() < 0:
        raise DataError("sample_weight must be finite, non-negative and not all zero")
    return X, Y, weights


def check_targets(network: Network, Y, n: int) -> np.ndarray:
    """Ỹ for the output: labels (n,) or one-hot/probabilities (n × K) for softmax,
    (n × K) values for identity and exp (or (n,) when K = 1; exp: ≥ 0), 0/1 indicators for
    sigmoid."""
    if not hasattr(Y, "shape") or not hasattr(Y, "dtype"):
        Y = np.asarray(Y)
    K, output = network.n_outputs, network.output
    if Y.shape[:1] != (n,):
        raise DataError(f"X has {n} rows but Y has shape {Y.shape}; give one target per sample")
    if not np.issubdtype(Y.dtype, np.number) or np.issubdtype(Y.dtype, np.complexfloating):
        raise DataError(f"Y must be numeric, got dtype {Y.dtype}; encode class names as 0..K−1")
    if not all_finite(Y):
        raise DataError("Y contains NaN or infinity; remove or impute those targets")
    if output.accepts_labels and Y.ndim == 1:
        if not np.issubdtype(Y.dtype, np.integer):
            if not np.array_equal(Y, np.round(Y)):
                raise DataError("class labels must be integers 0..K−1 (or pass one-hot rows)")
            Y = Y.astype(np.intp)
        low, high = int(Y.min()), int(Y.max())
        if low < 0 or high >= K:
            raise DataError(
                f"class labels must lie in 0..{K - 1} for {K} outputs, found {low}..{high}; "
                "relabel the classes or widen the output layer"
            )
        return Y
    if Y.ndim == 1 and K == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2 or Y.shape[1] != K:
        raise DataError(f"Y must have shape ({n}, {K}) for {K} outputs, got {Y.shape}")
    if output.name == "softmax":
        sums = Y.sum(axis=1, dtype=np.float64)
        if Y.min() < 0 or not np.allclose(sums, 1.0, atol=1e-4):
            raise DataError("softmax targets must be one-hot (or probability) rows summing to 1")
    if output.name == "sigmoid" and (Y.min() < 0 or Y.max() > 1):
        raise DataError("multi-label targets must be indicators in [0, 1]")
    if output.name == "exp" and Y.min() < 0:
        raise DataError(
            f"Poisson targets (an exp output) must be counts or rates ≥ 0, found {Y.min():g}"
        )
    return Y


def check_partitions(partitions, n: int) -> tuple[int, ...]:
    if partitions is None:
        return (n,)
    sizes = tuple(int(p) for p in partitions)
    if any(p < 0 for p in sizes) or sum(sizes) != n:
        raise ConfigError(f"partitions must be row counts ≥ 0 adding up to n = {n}, got {sizes}")
    return sizes


def even_split(n: int, parts: int) -> tuple[int, ...]:
    """``parts`` row counts adding up to n, the first n mod parts one row longer."""
    return tuple(n // parts + (i < n % parts) for i in range(parts))


def check_total(total: float) -> float:
    if not total > 0:
        raise DataError("sample_weight must be finite, non-negative and not all zero")
    return total


def as_weights(network: Network, w):
    return None if w is None else np.asarray(w, dtype=network.dtype)


def blocks_weight(blocks) -> float:
    """Σ_i w_i over one partition's blocks (its row count without weights), each block summed
    in float64 and the blocks added in order; partitions are then added in order."""
    return sum(
        float(len(X)) if w is None else float(np.sum(w, dtype=np.float64)) for X, _, w in blocks
    )


def expand_paths(paths) -> list[Path]:
    """Shard files from a folder (its ``.npy``/``.parquet`` files), a glob or a list, sorted."""
    if isinstance(paths, (list, tuple)):
        found = [Path(p) for p in paths]
    elif Path(paths).is_dir():
        found = sorted(p for p in Path(paths).iterdir() if p.suffix in (".npy", ".parquet"))
    else:
        found = [Path(p) for p in sorted(glob.glob(os.fspath(paths)))]
    if not found:
        raise DataError(f"no .npy or .parquet shards found at {paths!r}")
    missing = [str(p) for p in found if not p.is_file()]
    if missing:
        raise DataError(f"shard files not found: {', '.join(missing)}")
    return found


def is_shards(X) -> bool:
    """A folder, a glob (``part-*.npy`` too) or a list of paths: shards, not one array."""
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and all(isinstance(p, (str, os.PathLike)) for p in X)
    if isinstance(X, (str, os.PathLike)):
        text = os.fspath(X)  # a file named run[1].npy is that file, not a pattern
        one_file = text.endswith(".npy") and (os.path.isfile(text) or not glob.has_magic(text))
        return not one_file
    return False


def describe(columns) -> str:
    return f"{columns} columns" if isinstance(columns, int) else f"columns {list(columns)}"


def is_dask(data) -> bool:
    return type(data).__module__.startswith("dask.") and hasattr(data, "chunks")


def pq():
    import pyarrow.parquet

    return pyarrow.parquet


def pa():
    import pyarrow

    return pyarrow
