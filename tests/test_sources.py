"""Data sources: in-memory, .npy files read by blocks, memory maps and shard folders give the
same J and g (bit for bit with the same partitions); bad inputs are refused clearly."""

import subprocess
import sys
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import deltaprop as dp
from deltaprop.sources import ArraySource, NpySource, ShardSource

PARTS = (40, 45, 15)


@pytest.fixture
def data(tmp_path):
    """100 samples, 5 features, 3 classes, weights; saved as .npy files and as shards."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 5)).astype(np.float32)
    y = rng.integers(0, 3, 100)
    w = rng.uniform(0, 2, 100).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "w.npy", w)
    table = np.column_stack([X, y]).astype(np.float32)
    edges = np.cumsum((0, *PARTS))
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        (tmp_path / "npy").mkdir(exist_ok=True)
        np.save(tmp_path / "npy" / f"part-{i}.npy", table[a:b])
        (tmp_path / "pq").mkdir(exist_ok=True)
        columns = {f"x{j}": X[a:b, j] for j in range(5)} | {"label": y[a:b]}
        # small row groups: Parquet batches do not line up with the objective's blocks
        pq.write_table(pa.table(columns), tmp_path / "pq" / f"part-{i}.parquet", row_group_size=7)
    return tmp_path, X, y, w


def _net():
    return dp.Network([5, 8, 3], activation="tanh", seed=1)


def _sources(path, X, y):
    return {
        "npy files": NpySource(path / "X.npy", path / "y.npy", partitions=PARTS),
        "memory map": NpySource(np.load(path / "X.npy", mmap_mode="r"), y, partitions=PARTS),
        "npy shards": ShardSource(path / "npy"),
        "parquet shards": ShardSource(str(path / "pq" / "*.parquet"), target="label"),
    }


def _value_and_grad(net, source, **kw):
    J, g = dp.Objective(net, l2=0.01, chunk_size=16, **kw).value_and_grad(source)
    return J, g.copy()


def test_every_source_gives_the_in_memory_objective_and_gradient_bit_for_bit(data):
    path, X, y, _ = data
    net = _net()
    J_ref, g_ref = _value_and_grad(net, ArraySource(X, y, partitions=PARTS))
    for name, source in _sources(path, X, y).items():
        J, g = _value_and_grad(net, source)
        assert J == J_ref, name
        assert np.array_equal(g, g_ref), name
    # one partition (the default) is the plain in-memory objective on arrays, bit for bit
    J_arr, g_arr = dp.Objective(net, l2=0.01, chunk_size=16).value_and_grad(X, y)
    J_npy, g_npy = _value_and_grad(net, NpySource(path / "X.npy", path / "y.npy"))
    assert J_npy == J_arr and np.array_equal(g_npy, g_arr)
    # and other partitions change only the rounding
    assert J_ref == pytest.approx(J_arr, rel=1e-6)
    np.testing.assert_allclose(g_ref, g_arr, rtol=1e-4, atol=1e-6)


def test_weighted_npy_source_matches_in_memory_weights(data):
    path, X, y, w = data
    net = _net()
    J_ref, g_ref = _value_and_grad(net, ArraySource(X, y, w, partitions=PARTS))
    J, g = _value_and_grad(net, NpySource(path / "X.npy", path / "y.npy", path / "w.npy", PARTS))
    assert J == J_ref and np.array_equal(g, g_ref)
    J_fit, g_fit = dp.Objective(net, l2=0.01).value_and_grad(X, y, sample_weight=w)
    assert J == pytest.approx(J_fit, rel=1e-6)


def test_twenty_steps_of_training_are_identical_for_every_source(data):
    path, X, y, _ = data
    reference = _net()
    kw = dict(l2=0.01, optimizer=dp.GradientDescent(0.5), epochs=20, chunk_size=16)
    ref_history = dp.fit(reference, ArraySource(X, y, partitions=PARTS), None, **kw)
    for name, source in _sources(path, X, y).items():
        net = _net()
        kw["optimizer"] = dp.GradientDescent(0.5)
        history = dp.fit(net, source, None, **kw)
        assert np.array_equal(net.params, reference.params), name
        assert np.array_equal(history["objective"], ref_history["objective"]), name
    assert ref_history["objective"][-1] < ref_history["objective"][0]


def test_fit_accepts_paths_and_memory_maps_directly(data):
    path, X, y, _ = data
    a, b, c = _net(), _net(), _net()
    dp.fit(a, X, y, epochs=3, chunk_size=16)
    dp.fit(b, str(path / "X.npy"), str(path / "y.npy"), epochs=3, chunk_size=16)
    dp.fit(c, np.load(path / "X.npy", mmap_mode="r"), y, epochs=3, chunk_size=16)
    assert np.array_equal(a.params, b.params) and np.array_equal(a.params, c.params)
    history = dp.fit(_net(), str(path / "pq"), "label", epochs=2, validation=(X, y))
    assert "val_loss" in history


def test_shards_describe_their_columns_and_targets(data):
    path, X, y, _ = data
    parquet = ShardSource(path / "pq", target="label")
    assert parquet.n_features == 5 and parquet.feature_names == [f"x{j}" for j in range(5)]
    assert parquet.partitions == PARTS and len(parquet) == 100
    np.testing.assert_array_equal(parquet.target_values(), y)
    np.testing.assert_array_equal(ShardSource(path / "npy").target_values(), y)
    features = ShardSource(path / "pq", target="label", features=["x0", "x3"])
    assert features.n_features == 2
    block = next(features.raw_blocks(1, 10))
    np.testing.assert_array_equal(block[0], X[40:50][:, [0, 3]])


def test_a_file_is_read_block_by_block_with_bounded_memory(tmp_path):
    rng = np.random.default_rng(1)
    n = 40_000
    np.save(tmp_path / "X.npy", rng.standard_normal((n, 20)).astype(np.float32))  # 3.2 MB
    np.save(tmp_path / "y.npy", rng.integers(0, 3, n))
    net = dp.Network([20, 16, 3], seed=0)
    objective = dp.Objective(net, chunk_size=256)
    source = NpySource(tmp_path / "X.npy", tmp_path / "y.npy")
    objective.value_and_grad(source)  # validation pass and workspaces
    tracemalloc.start()
    objective.value_and_grad(source)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200_000, peak  # a few blocks of 256 rows, not the file's 3.2 MB


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda p: ShardSource([p / "npy" / "part-0.npy", p / "odd.npy"]), dp.DataError, "odd"),
        (
            lambda p: ShardSource([p / "npy" / "part-0.npy", p / "pq" / "part-0.parquet"]),
            dp.DataError,
            "mix",
        ),
        (lambda p: ShardSource(p / "pq", target="y"), dp.ConfigError, "target column 'y'"),
        (lambda p: ShardSource(p / "nothing-here-*.npy"), dp.DataError, "no .npy or .parquet"),
        (
            lambda p: NpySource(p / "X.npy", p / "w.npy", partitions=(50, 10)),
            dp.ConfigError,
            "partitions",
        ),
        (lambda p: NpySource(p / "fortran.npy", p / "y.npy"), dp.DataError, "Fortran"),
        (lambda p: NpySource(p / "short.npy", p / "y.npy"), dp.DataError, "30 rows but Y has 100"),
        (lambda p: NpySource(p / "cut.npy", p / "y.npy"), dp.DataError, "cut.npy is truncated"),
        (lambda p: ShardSource(p / "npy", target=np.zeros(3)), dp.ConfigError, "name or index"),
    ],
)
def test_bad_files_are_refused_with_a_clear_message(data, make, error, message):
    path, X, *_ = data
    np.save(path / "odd.npy", np.zeros((4, 7), np.float32))  # 7 columns, the shards have 6
    np.save(path / "fortran.npy", np.asfortranarray(X))
    np.save(path / "short.npy", X[:30])
    (path / "cut.npy").write_bytes((path / "X.npy").read_bytes()[:-50])  # a copy cut short
    with pytest.raises(error, match=message):
        make(path)


def test_bad_values_in_a_file_and_misuse_are_refused(data):
    path, X, y, _ = data
    X[57, 2] = np.nan
    np.save(path / "nan.npy", X)
    with pytest.raises(dp.DataError, match="NaN"):
        dp.Objective(_net()).value(NpySource(path / "nan.npy", path / "y.npy"))
    with pytest.raises(dp.DataError, match="0..1"):
        dp.Objective(dp.Network([5, 4, 2])).value(str(path / "X.npy"), str(path / "y.npy"))
    with pytest.raises(dp.DataError, match="expects 4"):
        dp.fit(dp.Network([4, 3]), str(path / "X.npy"), str(path / "y.npy"))
    with pytest.raises(dp.ConfigError, match="mini-batches"):
        dp.fit(_net(), str(path / "X.npy"), str(path / "y.npy"), batch_size=10)


def test_lists_are_data_and_globs_of_npy_files_are_shards(data):
    path, X, y, _ = data
    objective = dp.Objective(_net(), chunk_size=16)
    J, g = objective.value_and_grad(X, y)
    g = g.copy()  # the objective reuses its gradient buffer
    J_list, g_list = objective.value_and_grad(X.tolist(), y.tolist())
    assert J_list == J and g_list.tobytes() == g.tobytes()
    history = dp.fit(_net(), X.tolist(), y, epochs=2, validation=(X[:9].tolist(), y[:9]))
    assert len(history) == 2 and "val_loss" in history
    by_glob = _value_and_grad(_net(), str(path / "npy" / "part-*.npy"))
    assert by_glob[0] == _value_and_grad(_net(), ShardSource(path / "npy"))[0]
    np.save(path / "run[1].npy", X)  # a file whose name reads like a pattern is that file
    assert objective.value_and_grad(str(path / "run[1].npy"), y)[0] == J


def test_the_index_pandas_stores_in_parquet_is_not_a_feature(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [0.5, 1.0, 2.0], "b": [1.0, 0.0, 3.0], "y": [0, 1, 0]})
    frame.iloc[[2, 0, 1]].to_parquet(tmp_path / "part-0.parquet")  # an index pandas stores
    source = ShardSource(tmp_path, target="y")
    assert source.feature_names == ["a", "b"] and source.n_features == 2


def test_a_bad_value_is_named_by_its_shard_and_row_or_its_row_in_the_data(data):
    path, X, y, _ = data
    table = np.column_stack([X, y]).astype(np.float32)[40:85]
    table[9, 1] = np.nan
    np.save(path / "npy" / "part-1.npy", table)
    message = r"shard .*part-1\.npy: X contains NaN or infinity \(first at row 9, column 1\)"
    with pytest.raises(dp.DataError, match=message):
        dp.Objective(_net(), chunk_size=4).value(ShardSource(path / "npy"))
    X[67, 3] = np.inf
    np.save(path / "inf.npy", X)
    with pytest.raises(dp.DataError, match=r"first at row 67, column 3"):
        dp.Objective(_net(), chunk_size=16).value(NpySource(path / "inf.npy", y, partitions=PARTS))


def test_no_rows_at_all_is_said_so(tmp_path):
    np.save(tmp_path / "part-0.npy", np.zeros((0, 6), np.float32))
    with pytest.raises(dp.DataError, match="the data have no rows"):
        dp.Objective(_net()).value(ShardSource(tmp_path))


def test_dask_data_without_a_client_says_how_to_start_one():
    da = pytest.importorskip("dask.array")
    X = da.zeros((10, 5), chunks=5)
    with pytest.raises(dp.ConfigError, match="Client()"):
        dp.Objective(_net()).value(X, da.zeros(10, chunks=5, dtype=int))


def test_the_core_never_imports_dask_or_pyarrow():
    code = "import sys, deltaprop; print({'dask', 'distributed', 'pyarrow'} & set(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "set()"


def test_a_copy_on_write_map_is_read_with_its_edits(tmp_path):
    """mmap_mode="c" keeps edits in private pages: the file no longer holds the data."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.standard_normal((50, 3)) * 10 + 5)
    y = rng.integers(0, 2, 50)
    X = np.load(tmp_path / "X.npy", mmap_mode="c")
    X -= X.mean(axis=0)
    net = dp.Network([3, 4, 2], dtype="float64", seed=0)
    assert dp.Objective(net).value(X, y) == dp.Objective(net).value(np.array(X), y)
