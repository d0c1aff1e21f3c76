import json
import os
import pickle
import tracemalloc

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.serialization import load_with_metadata, write_atomically

pytest.importorskip("safetensors")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((40, 4))
LABELS = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)  # three classes 0, 1, 2


def small(estimator_class, **params):
    return estimator_class(hidden_layer_sizes=(5,), max_iter=15, random_state=0, **params)


def round_trip(model, tmp_path, name="model.safetensors"):
    path = dp.save(model, tmp_path / name)
    return dp.load(path)


def test_network_round_trip_is_bit_identical(tmp_path):
    net = dp.Network([4, 6, 3], activation="tanh", dtype="float64", seed=1)
    loaded = round_trip(net, tmp_path)
    assert loaded.sizes == net.sizes and loaded.dtype == net.dtype
    assert np.array_equal(loaded.params, net.params)
    assert np.array_equal(loaded.forward(X), net.forward(X))


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["setosa", "versicolor", "virginica"])[LABELS],
        LABELS * 10 - 7,
        LABELS.astype(np.uint8),
        LABELS.astype(float) * 2.0,
        LABELS > 0,
        np.array(["a", "b", "c"], dtype=object)[LABELS],
    ],
    ids=["str", "int", "uint8", "float", "bool", "object-str"],
)
def test_classifier_round_trip_keeps_labels_and_predictions(tmp_path, labels):
    clf = small(dp.MLPClassifier).fit(X, labels)
    loaded = round_trip(clf, tmp_path)
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    prediction = loaded.predict(X)
    assert prediction.dtype == clf.predict(X).dtype
    assert np.array_equal(prediction, clf.predict(X))


def test_estimator_files_keep_parameters_summary_and_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["height", "width", "depth", "mass"])
    clf = small(dp.MLPClassifier, solver="sgd", alpha=0.01, dtype="float32").fit(frame, LABELS)
    loaded, metadata = load_with_metadata(dp.save(clf, tmp_path / "clf.safetensors"))
    params = clf.get_params()
    assert loaded.get_params() == params
    assert metadata["network"]["dtype"] == "float32" and metadata["format_version"] == 1
    assert list(loaded.feature_names_in_) == ["height", "width", "depth", "mass"]
    for name in ("loss_", "best_loss_", "loss_curve_", "n_iter_", "t_", "n_layers_", "n_outputs_"):
        assert getattr(loaded, name) == getattr(clf, name), name
    assert loaded.out_activation_ == "softmax"
    assert loaded.history_.records == clf.history_.records
    assert np.array_equal(loaded.predict_proba(frame), clf.predict_proba(frame))
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(frame.rename(columns={"mass": "weight"}))
    for W, W_loaded in zip(clf.coefs_, loaded.coefs_):
        assert np.array_equal(W, W_loaded) and W_loaded.shape == W.shape


def test_multilabel_and_multi_output_round_trip(tmp_path):
    indicators = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 0], axis=1).astype(int)
    clf = small(dp.MLPClassifier, early_stopping=True).fit(X, indicators)
    loaded = round_trip(clf, tmp_path, "multilabel.safetensors")
    assert loaded.out_activation_ == "logistic" and loaded.validation_scores_ is not None
    assert loaded.best_validation_score_ == clf.best_validation_score_
    assert np.array_equal(loaded.predict(X), clf.predict(X))
    reg = small(dp.MLPRegressor, solver="lbfgs").fit(X, X[:, :2] * 3)
    loaded = round_trip(reg, tmp_path, "regressor.safetensors")
    assert isinstance(loaded, dp.MLPRegressor)
    assert np.array_equal(loaded.predict(X), reg.predict(X))


def test_estimators_pickle_and_loaded_ones_keep_training(tmp_path):
    clf = small(dp.MLPClassifier).fit(X, LABELS)
    clone = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(clone.predict_proba(X), clf.predict_proba(X))
    loaded = round_trip(clf, tmp_path)
    loaded.partial_fit(X, LABELS)
    assert loaded.n_iter_ == 1 and loaded.t_ == clf.t_ + len(X)


def test_unfitted_estimators_and_other_objects_are_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        dp.save(dp.MLPRegressor(), tmp_path / "nothing.safetensors")
    with pytest.raises(dp.ConfigError, match="cannot save a dict"):
        dp.save({"weights": 1}, tmp_path / "dict.safetensors")
    assert not os.listdir(tmp_path)


def test_writes_are_atomic_and_keep_permissions(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    net = dp.Network([2, 2], seed=0)
    dp.save(net, path)
    assert path.stat().st_mode & 0o777 == 0o644
    os.chmod(path, 0o600)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", disk_full)
        with pytest.raises(OSError, match="disk full"):
            write_atomically(path, b"new contents")
    assert path.read_bytes() == before  # the old file is untouched...
    assert os.listdir(tmp_path) == [path.name]  # ...and no temporary file is left
    dp.save(net, path)
    assert path.stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------------ bad files


def saved_classifier(tmp_path):
    path = dp.save(small(dp.MLPClassifier).fit(X, LABELS), tmp_path / "good.safetensors")
    return path.read_bytes()


def split(blob):
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def join(header, data):
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def with_metadata(blob, change):
    header, data = split(blob)
    metadata = json.loads(header["__metadata__"]["deltaprop"])
    change(metadata)
    header["__metadata__"]["deltaprop"] = json.dumps(metadata)
    return join(header, data)


def with_raw_metadata(blob, raw):
    """The file with the deltaprop metadata string replaced (None: no metadata at all)."""
    header, data = split(blob)
    header.pop("__metadata__")
    if raw is not None:
        header["__metadata__"] = {"deltaprop": raw}
    return join(header, data)


def with_tensor(blob, name, **fields):
    header, data = split(blob)
    header[name].update(fields)
    return join(header, data)


def _drop(key):
    return lambda metadata: metadata.pop(key)


def _set(path, value):
    def change(metadata):
        target = metadata
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


BAD_FILES = {
    "empty": (lambda blob: b"", "empty or truncated"),
    "seven bytes": (lambda blob: blob[:7], "empty or truncated"),
    "truncated": (lambda blob: blob[: len(blob) // 2], "truncated"),
    "truncated tensor data": (lambda blob: blob[:-5], "corrupted or truncated"),
    "random bytes": (
        lambda blob: np.random.default_rng(1).bytes(4096),
        "header claims|not valid JSON|not a deltaprop",
    ),
    "a pickle": (lambda blob: pickle.dumps({"coefs_": [1.0]}), "pickle"),
    "huge header length": (lambda blob: (2**63).to_bytes(8, "little") + blob[8:], "header claims"),
    "header not json": (lambda blob: (5).to_bytes(8, "little") + b"{{{{{" + blob[13:], "JSON"),
    "header a list": (lambda blob: join([1, 2], b""), "not a JSON object"),
    "offsets past the end": (
        lambda blob: with_tensor(blob, "biases.0", data_offsets=[0, 10**9]),
        "corrupted",
    ),
    "shape disagrees with offsets": (
        lambda blob: with_tensor(blob, "biases.0", shape=[10**6]),
        "corrupted",
    ),
    "no deltaprop metadata": (lambda blob: with_raw_metadata(blob, None), "without deltaprop"),
    "metadata not json": (lambda blob: with_raw_metadata(blob, "{not"), "metadata is not valid"),
    "metadata a list": (lambda blob: with_raw_metadata(blob, "[]"), "must be a JSON object"),
}

DROP = object()
# metadata edits: (path of keys, new value or DROP, what the error must say)
METADATA_EDITS = {
    "no format version": (["format_version"], DROP, "format_version"),
    "newer format version": (["format_version"], 99, "newer than this deltaprop reads"),
    "no architecture": (["network"], DROP, "architecture"),
    "sizes disagree with tensors": (["network", "sizes"], [4, 6, 3], "do not match|needs"),
    "dtype disagrees with tensors": (["network", "dtype"], "float32", "needs"),
    "unknown activation": (["network", "activations"], ["swish"], "architecture .* invalid"),
    "unknown kind": (["kind"], "forest", "unknown model kind"),
    "no parameters": (["params"], DROP, "missing entry 'params'"),
    "invalid parameter": (["params", "alpha"], -1, "alpha"),
    "unknown parameter": (["params", "kernel"], "rbf", "kernel"),
    "hidden sizes disagree": (["params", "hidden_layer_sizes"], [7], "disagree with the stored"),
    "no classes": (["classes"], DROP, "missing entry 'classes'"),
    "classes disagree with outputs": (["classes", "values"], [0, 1, 2, 3], "4 classes are stored"),
    "classes do not fit their dtype": (["classes", "values"], [0.5, 1, 2], "do not fit the stored"),
    "class dtype not a label type": (["classes", "dtype"], "V100000000", "not a label type"),
    "regressor kind, classifier network": (["kind"], "mlp_regressor", "output of kind identity"),
    "feature count disagrees": (["n_features_in"], 9, "n_features_in=9"),
    "training summary mangled": (["training", "loss_curve"], "abc", "incomplete or mangled"),
    "history mangled": (["training", "history"], {"records": 3}, "history"),
}
for _name, (_keys, _value, _message) in METADATA_EDITS.items():
    _edit = _drop(_keys[0]) if _value is DROP else _set(_keys, _value)
    BAD_FILES[_name] = (lambda blob, edit=_edit: with_metadata(blob, edit), _message)


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_files_raise_model_file_error_naming_the_problem(tmp_path, case):
    corrupt, message = BAD_FILES[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(corrupt(saved_classifier(tmp_path)))
    with pytest.raises(dp.ModelFileError, match=message) as error:
        dp.load(path)
    assert str(path) in str(error.value)


def test_lying_architecture_allocates_nothing_big(tmp_path):
    """sizes claiming 10¹² parameters are refused before any Network is built."""
    path = tmp_path / "liar.safetensors"
    huge = [10**6, 10**6, 3]
    path.write_bytes(with_metadata(saved_classifier(tmp_path), _set(["network", "sizes"], huge)))
    tracemalloc.start()
    try:
        with pytest.raises(dp.ModelFileError, match="do not match|needs"):
            dp.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_missing_file_and_directories(tmp_path):
    with pytest.raises(dp.ModelFileError, match="no such model file"):
        dp.load(tmp_path / "absent.safetensors")
    with pytest.raises(dp.ModelFileError, match="no such model file"):
        dp.load(tmp_path)


@pytest.mark.parametrize("second", [2, 5])
def test_a_header_length_that_starts_like_a_pickle_still_loads(tmp_path, second):
    """A safetensors file opens with its header's length: 0x80 then 2..5 is also how a
    pickle opens, and headers of such lengths occur (the 784-128-128-10 net's did)."""
    path, net = tmp_path / "net.safetensors", dp.Network([3, 4, 2], seed=0)
    dp.save(net, path, preprocessing={"note": ""})
    short = int.from_bytes(path.read_bytes()[:8], "little")
    target = 0x80 + 256 * second  # a header of this length starts 0x80, second
    for pad in range(target - short - 8, target - short + 9):  # the header is padded to 8
        dp.save(net, path, preprocessing={"note": "x" * pad})
        blob = path.read_bytes()
        if blob[0] == 0x80 and blob[1] == second:
            break
    assert blob[0] == 0x80 and blob[1] == second
    assert np.array_equal(dp.load(path).params, net.params)


def test_a_changed_byte_in_the_tensor_data_is_found(tmp_path):
    path = tmp_path / "net.safetensors"
    dp.save(dp.Network([3, 4, 2], seed=0), path)
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0x01  # a bit of the last bias
    path.write_bytes(bytes(blob))
    with pytest.raises(dp.ModelFileError, match="do not match the checksum"):
        dp.load(path)


def test_a_file_written_without_a_checksum_still_loads(tmp_path):
    import json

    from safetensors.numpy import load_file, save_file

    path = tmp_path / "net.safetensors"
    net = dp.Network([3, 4, 2], seed=0)
    dp.save(net, path)
    _, metadata = load_with_metadata(path)
    metadata.pop("tensor_sha256", None)
    old = {"deltaprop": json.dumps({**metadata, "format_version": 1})}
    save_file(load_file(path), path, metadata=old)  # as deltaprop wrote files before
    assert np.array_equal(dp.load(path).params, net.params)


def test_tensors_in_any_layout_or_byte_order_are_written_as_their_values(tmp_path):
    from deltaprop.serialization import _read, file_bytes

    values = np.arange(6, dtype=np.float64).reshape(2, 3)
    tensors = {
        "fortran": np.asfortranarray(values),
        "big": values.astype(">f8"),
        "strided": np.arange(12.0).reshape(2, 6)[:, ::2],
    }
    path = tmp_path / "t.safetensors"
    path.write_bytes(file_bytes(tensors, {"format_version": 1}))
    loaded, _ = _read(path)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)
