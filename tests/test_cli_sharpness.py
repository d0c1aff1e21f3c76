"""deltaprop train --track-sharpness records λ_max against 2/η and plots it."""

import numpy as np
from click.testing import CliRunner

import deltaprop as dp
from deltaprop.checkpoint import load_checkpoint
from deltaprop.cli import cli
from deltaprop.training import History


def test_track_sharpness_records_and_plots(tmp_path):
    ck, plot = tmp_path / "ck.safetensors", tmp_path / "curves.png"
    args = ["train", "--epochs", "12", "--track-sharpness", "5", "--quiet", "--seed", "1"]
    args += ["--checkpoint", ck, "--out", tmp_path / "m.safetensors", "--plot", plot]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    history = History.from_dict(load_checkpoint(ck).history_data)
    measured = np.isfinite(history["sharpness"])
    assert measured.nonzero()[0].tolist() == [0, 5, 10]
    np.testing.assert_allclose(history["stability_threshold"][measured], 2 / 0.5)
    assert (history["sharpness"][measured] > 0).all()
    assert plot.stat().st_size > 0


def test_sharpness_panel_is_drawn_only_when_tracked():
    from deltaprop import plots

    titles = [panel.__name__ for condition, panel in plots.PANELS]
    assert "_sharpness_panel" in titles
    tracked = History([{"loss": 1.0, "sharpness": 2.0, "stability_threshold": 4.0}])
    plain = History([{"loss": 1.0}])
    condition = dict((panel.__name__, cond) for cond, panel in plots.PANELS)["_sharpness_panel"]

    class View:
        history = tracked

    assert condition(View)
    View.history = plain
    assert not condition(View)
    assert dp.SharpnessTracker  # exported beside the CLI flag


def test_sharpness_under_lbfgs_is_recorded_without_a_step_size(tmp_path):
    X, y = dp.datasets.load("moons", n=60).X, dp.datasets.load("moons", n=60).y
    net = dp.Network([2, 5, 2], seed=0, dtype="float64")
    tracker = dp.SharpnessTracker(2, data=(X, y))
    history = dp.fit_lbfgs(net, X, y, max_iter=5, callbacks=[tracker])
    assert np.isfinite(history["sharpness"][::2]).all() and "stability_threshold" not in history
    tracker = dp.SharpnessTracker(2, data=(X, y))
    history = dp.fit(net, X, y, optimizer=dp.Adam(0.01), epochs=3, callbacks=[tracker])
    assert "sharpness" in history and "stability_threshold" not in history  # 2/η: GD only
    plot = tmp_path / "curves.png"
    args = ["train", "--solver", "lbfgs", "--epochs", "4", "--track-sharpness", "2", "--quiet"]
    args += ["--out", tmp_path / "m.safetensors", "--plot", plot]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert plot.stat().st_size > 0
