"""Built-in datasets: the rows asked for, every class named, limits said, the CLI's task."""

import numpy as np
import pytest
from click.testing import CliRunner

import deltaprop as dp
from deltaprop import datasets
from deltaprop.cli import cli


@pytest.mark.parametrize("n", [100, 101, 6])
def test_the_spiral_has_the_rows_asked_for_on_every_arm(n):
    data = datasets.load("spiral", n=n)
    assert data.X.shape == (n, 2)
    counts = np.bincount(data.y, minlength=3)
    assert counts.max() - counts.min() <= 1


def test_too_few_or_too_many_rows_are_refused():
    with pytest.raises(dp.ConfigError, match="n ≥ 6"):
        datasets.load("spiral", n=5)
    pytest.importorskip("sklearn")
    with pytest.raises(dp.ConfigError, match="digits has 1797 samples"):
        datasets.load("digits", n=5000)


def test_every_class_is_named_even_when_a_sample_lacks_some():
    pytest.importorskip("sklearn")
    data = datasets.load("digits", n=20, seed=0)
    assert data.class_names == [str(k) for k in range(10)] and data.n_classes == 10
    assert len(np.unique(data.y)) < 10  # the sample does lack some


def test_explain_uses_all_classes_and_a_named_columns_own_task():
    result = CliRunner().invoke(cli, ["explain", "spiral", "--samples", "1", "--hidden", "2"])
    assert result.exit_code == 0, result.output
    assert "network 2-2-3 (sigmoid, softmax output)" in result.stdout
    result = CliRunner().invoke(cli, ["explain", "spiral", "--target", "x1", "--hidden", "2"])
    assert result.exit_code == 0, result.output
    assert "network 2-2-1 (sigmoid, identity output)" in result.stdout  # x2 and y as inputs


def test_train_infers_the_task_of_a_column_other_than_the_datasets_target(tmp_path):
    from deltaprop.serialization import load_with_metadata

    out = tmp_path / "m.safetensors"
    args = ["train", "spiral", "--target", "x1", "--epochs", "2", "--no-plot", "-q"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert load_with_metadata(out)[1]["preprocessing"]["task"] == "regression"


def test_mnist1d_is_generated_locally_and_reproducibly():
    pytest.importorskip("mnist1d")
    first, again = datasets.load("mnist1d", n=200, seed=3), datasets.load("mnist1d", n=200, seed=3)
    assert first.X.shape == (200, 40) and first.n_classes == 10
    assert np.array_equal(first.X, again.X) and np.array_equal(first.y, again.y)
