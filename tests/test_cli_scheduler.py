"""deltaprop train --scheduler: the full-batch gradient on a Dask cluster gives the same model."""

import numpy as np
import pytest
from click.testing import CliRunner

import deltaprop as dp
from deltaprop.cli import cli


def train(tmp_path, name, *extra):
    out = tmp_path / f"{name}.safetensors"
    args = ["train", "moons", "--epochs", "5", "--hidden", "8", "--quiet", "--no-plot"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out), *extra])
    return result, out


def test_local_scheduler_trains_the_same_model(tmp_path):
    pytest.importorskip("distributed")
    result, local = train(tmp_path, "local", "--dtype", "float64")
    assert result.exit_code == 0, result.output
    result, dask = train(tmp_path, "dask", "--dtype", "float64", "--scheduler", "local")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(dp.load(dask).params, dp.load(local).params, rtol=1e-12)


def test_scheduler_with_mini_batches_is_refused_before_anything_is_written(tmp_path):
    result, out = train(tmp_path, "mb", "--scheduler", "local", "--batch-size", "16")
    assert result.exit_code == 2 and "--scheduler runs full-batch" in result.output
    assert not out.exists()
