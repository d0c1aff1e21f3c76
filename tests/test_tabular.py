"""Reading tables and the stored preprocessing: training-row statistics, one-hot text,
class names, imputation, task inference and the JSON round trip."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from deltaprop.errors import DataError
from deltaprop.tabular import Preprocessing, infer_task, label_names, pick_column, read_table


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "size": [1.0, 2.0, 3.0, 4.0, 100.0, 200.0],
            "color": ["red", "blue", "red", "green", "blue", "red"],
            "label": ["b", "a", "b", "a", "c", "c"],
        }
    )


def test_standardised_with_training_rows_only_and_one_hot_text(frame):
    train = np.array([0, 1, 2, 3])
    prep = Preprocessing.fit(frame, "label", "classification", train)
    assert prep.mean == [2.5] and prep.scale == [pytest.approx(np.std([1, 2, 3, 4]))]
    assert prep.categories == {"color": ["blue", "green", "red"]}
    assert prep.inputs == ["size", "color=blue", "color=green", "color=red"]
    assert prep.classes == ["a", "b"]  # classes seen in the training rows
    X = prep.transform(frame.iloc[:4])
    np.testing.assert_allclose(X[:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_array_equal(X[:, 1:], [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(prep.encode_target(frame.iloc[:4]), [1, 0, 1, 0])
    with pytest.raises(DataError, match="classes the model does not know: 'c'"):
        prep.encode_target(frame)
    unseen = pd.DataFrame({"size": [2.5], "color": ["purple"]})
    np.testing.assert_array_equal(prep.transform(unseen), [[0, 0, 0, 0]])
    assert prep.unseen == {"color": ["purple"]}
    assert "unseen" not in prep.to_dict()
    assert list(prep.decode(np.array([1, 0]))) == ["b", "a"]


def test_json_round_trip_gives_the_same_inputs(frame):
    prep = Preprocessing.fit(frame, "size", "regression", np.arange(6), impute="mean")
    again = Preprocessing.from_dict(json.loads(json.dumps(prep.to_dict())))
    np.testing.assert_array_equal(again.transform(frame), prep.transform(frame))
    y = again.encode_target(frame)
    np.testing.assert_allclose(again.decode(y), frame["size"])
    assert y.mean() == pytest.approx(0) and y.std() == pytest.approx(1)


def test_a_playground_model_file_is_understood():
    stored = {"features": ["a", "b"], "target": "t", "mean": [1, 2], "scale": [2, 4]}
    prep = Preprocessing.from_dict({**stored, "classes": ["x", "y"]})
    assert prep.task == "classification" and prep.numeric == ["a", "b"]
    X = prep.transform(pd.DataFrame({"a": [3.0], "b": [6.0], "other": ["ignored"]}))
    np.testing.assert_array_equal(X, [[1, 1]])
    assert Preprocessing.from_dict(stored).task == "regression"


def test_missing_values_need_impute_and_use_training_statistics():
    frame = pd.DataFrame(
        {"x": [1.0, np.nan, 3.0, 10.0], "c": ["u", None, "u", "v"], "y": [0, 1] * 2}
    )
    prep = Preprocessing.fit(frame, "y", "classification", np.array([0, 1, 2]))
    with pytest.raises(DataError, match=r"column 'x', row 2 is missing.*--impute mean"):
        prep.transform(frame)
    prep = Preprocessing.fit(frame, "y", "classification", np.array([0, 1, 2]), impute="median")
    assert prep.fill == {"x": 2.0, "c": "u"}  # rows 0 and 2 only; the mode of the text column
    X = prep.transform(frame)
    assert X[1, 0] == pytest.approx((2.0 - prep.mean[0]) / prep.scale[0])
    assert prep.categories == {"c": ["u"]}  # 'v' appears only outside the training rows
    np.testing.assert_array_equal(X[:, 1], [1, 1, 1, 0])


def test_a_number_column_with_a_stray_word_names_row_and_line(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,six,0\n7,8,1\n")
    frame = read_table(tmp_path / "d.csv")
    with pytest.raises(DataError, match=r"column 'b', row 3 \(line 4\): 'six' is not a number"):
        Preprocessing.fit(frame, "y", "classification", np.arange(4))


def test_text_columns_with_too_many_values_are_refused():
    frame = pd.DataFrame({"id": [f"n{i}" for i in range(150)], "y": np.arange(150) % 2})
    with pytest.raises(DataError, match="'id' has 150 distinct values.*--features"):
        Preprocessing.fit(frame, "y", "classification", np.arange(150))


@pytest.mark.parametrize(
    "values, task",
    [
        (["a", "b", "a"], "classification"),
        ([True, False, True], "classification"),
        ([0, 1, 2, 1], "classification"),
        ([0.5, 1.25, 2.0, 3.0], "regression"),
        (list(range(40)), "regression"),
    ],
)
def test_task_inference(values, task):
    assert infer_task(pd.DataFrame({"t": values}), "t")[0] == task


def test_label_names_print_whole_floats_as_integers():
    assert label_names(np.array([1.0, 2.0])).tolist() == ["1", "2"]
    assert label_names(np.array(["x", "y"])).tolist() == ["x", "y"]


def test_every_file_type_reads_the_same_table(tmp_path):
    table = pd.DataFrame({"x1": [0.5, 1.5], "x2": [2.0, 3.0], "y": ["a", "b"]})
    table.to_csv(tmp_path / "t.csv", index=False)
    table.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    table.to_csv(tmp_path / "t.txt", index=False, sep=";")
    table.to_parquet(tmp_path / "t.parquet")
    np.savez(tmp_path / "t.npz", x=table[["x1", "x2"]].to_numpy(), y=table["y"].to_numpy(dtype=str))
    for suffix in ("csv", "tsv", "txt", "parquet", "npz"):
        pd.testing.assert_frame_equal(read_table(tmp_path / f"t.{suffix}"), table)
    (tmp_path / "t.xls").write_text("x")
    with pytest.raises(DataError, match="unknown file type '.xls'"):
        read_table(tmp_path / "t.xls")


def test_unknown_columns_suggest_close_names():
    frame = pd.DataFrame({"Species": [1], "sepal": [2]})
    with pytest.raises(DataError, match="did you mean 'Species'"):
        pick_column(frame, "species")
    assert pick_column(frame, None) == "sepal"


@pytest.mark.parametrize(
    "stored, message",
    [
        ("features", "is 'features', not a JSON object"),
        ({"target": "t"}, "lacks features"),
        ({"features": ["a"], "target": "t", "mean": [0], "scale": [-1]}, "scale is [-1]"),
        ({"features": ["a"], "target": "t", "mean": [0], "scale": [1], "target_scale": 0}, "> 0"),
        ({"features": ["a"], "target": "t", "mean": [0], "scale": [1], "impute": "max"}, "max"),
    ],
)
def test_a_mangled_stored_preprocessing_names_the_field(stored, message):
    with pytest.raises(DataError, match=re.escape(message)):
        Preprocessing.from_dict(stored)


def test_values_too_large_to_standardise_are_named():
    frame = pd.DataFrame({"a": [1e308, -1e308, 3.0, 4.0], "y": [0, 1, 0, 1]})
    with pytest.raises(DataError, match="column 'a' has values too large to standardise"):
        Preprocessing.fit(frame, "y", "classification", np.arange(4))
