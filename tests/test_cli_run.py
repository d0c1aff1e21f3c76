"""``deltaprop train`` as a user runs it: the default run and Ctrl-C as real subprocesses,
and checkpoint/resume giving bit-identical parameters."""

import os
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points

import numpy as np
import pytest
from click.testing import CliRunner

import deltaprop as dp
from deltaprop import datasets
from deltaprop.checkpoint import load_checkpoint
from deltaprop.cli import cli
from deltaprop.serialization import load_with_metadata
from deltaprop.tabular import Preprocessing, dataset_frame


def deltaprop(*args, cwd, **kwargs):
    """``python -m deltaprop ARGS`` in ``cwd`` (one BLAS thread, as a busy CI box would want)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "deltaprop", *map(str, args)]
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        **kwargs,
    )  # fmt: skip


def test_the_script_entry_point_is_declared():
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "deltaprop"]
    assert script.value == "deltaprop.cli:main"


def test_default_run_trains_the_spiral_and_writes_model_and_plot(tmp_path):
    process = deltaprop("train", cwd=tmp_path)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "wrote model to model.safetensors, plot to curves.png" in err
    assert "accuracy" in out  # the final metrics table
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    network, metadata = load_with_metadata(tmp_path / "model.safetensors")
    assert network.sizes == [2, 64, 64, 3]
    assert metadata["training"]["settings"]["solver"] == "gd"
    # the model file alone, applied to the whole spiral (training and validation rows)
    spiral = dataset_frame(datasets.load("spiral"))
    prep = Preprocessing.from_dict(metadata["preprocessing"])
    accuracy = np.mean(network.predict(prep.transform(spiral)) == prep.encode_target(spiral))
    assert accuracy > 0.95


def test_ctrl_c_keeps_the_best_parameters_and_a_checkpoint_that_resumes_exactly(
    tmp_path, monkeypatch
):
    process = deltaprop(
        "train", "spiral", "--epochs", 10**6, "--checkpoint", "run.ckpt",
        "--checkpoint-every", 50, "--no-plot", cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (tmp_path / "run.ckpt").exists():  # training has started
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted at epoch" in err and "wrote model to model.safetensors" in err
    checkpoint = load_checkpoint(tmp_path / "run.ckpt")
    history = checkpoint.history()
    assert checkpoint.epoch == len(history) >= 50 and "interrupted" in history.stop_reason
    # the model holds the best θ so far, the checkpoint θ after its last epoch's step
    assert dp.load(tmp_path / "model.safetensors").params.tobytes() != checkpoint.params.tobytes()
    monkeypatch.chdir(tmp_path)
    epochs = checkpoint.epoch + 3
    train("--resume", "run.ckpt", "--epochs", epochs, "--out", "resumed.safetensors")
    train("spiral", "--epochs", epochs, "--out", "uninterrupted.safetensors")
    resumed, uninterrupted = dp.load("resumed.safetensors"), dp.load("uninterrupted.safetensors")
    assert resumed.params.tobytes() == uninterrupted.params.tobytes()


def train(*args):
    result = CliRunner().invoke(cli, ["train", *map(str, args), "--no-plot", "--quiet"])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize(
    "solver", [["--solver", "gd"], ["--solver", "adam", "--batch-size", "32"]], ids=["gd", "adam"]
)
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, monkeypatch, solver):
    monkeypatch.chdir(tmp_path)
    common = ["moons", "--hidden", "8,8", "--seed", "3", *solver]
    train(*common, "--epochs", 60, "--checkpoint", "full.ckpt", "--out", "full.safetensors")
    train(*common, "--epochs", 30, "--checkpoint", "half.ckpt", "--checkpoint-every", 7)
    assert load_checkpoint("half.ckpt").epoch == 30
    train("--resume", "half.ckpt", "--epochs", 60, "--out", "resumed.safetensors")
    full, resumed = dp.load("full.safetensors"), dp.load("resumed.safetensors")
    assert full.params.tobytes() == resumed.params.tobytes()
    a, b = load_checkpoint("full.ckpt"), load_checkpoint("half.ckpt")  # resumed into half.ckpt
    assert b.epoch == 60
    assert a.rng_state == b.rng_state
    for name, array in a.optimizer_state["arrays"].items():
        assert array.tobytes() == b.optimizer_state["arrays"][name].tobytes()
    strip = [{k: v for k, v in r.items() if k != "time"} for r in a.history().records]
    assert strip == [{k: v for k, v in r.items() if k != "time"} for r in b.history().records]


def test_progress_bar_shows_epochs_loss_validation_and_eta():
    import io

    from rich.console import Console

    from deltaprop.progress import ProgressBar

    screen = io.StringIO()
    bar = ProgressBar(Console(file=screen, force_terminal=True, width=150))
    X, y = datasets.load("moons", n=40).X, datasets.load("moons", n=40).y
    net = dp.Network([2, 4, 2], seed=0)
    history = dp.fit(net, X[:30], y[:30], epochs=7, validation=(X[30:], y[30:]), callbacks=[bar])
    text = screen.getvalue()
    last = history.records[-1]
    assert "7/7" in text and "ETA" in text
    assert f"loss {last['loss']:.3g}" in text and f"val {last['val_loss']:.3g}" in text
    assert f"{last['val_accuracy']:.1%}" in text


def test_other_solvers_features_and_no_hidden_layer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train("xor", "--solver", "lbfgs", "--epochs", 50, "--out", "lbfgs.safetensors")
    assert "L-BFGS-B" in load_with_metadata("lbfgs.safetensors")[1]["training"]["stop_reason"]
    train("plane", "--hidden", "0", "--features", "x2", "--solver", "momentum", "--epochs", 50)
    network, metadata = load_with_metadata("model.safetensors")
    assert network.sizes == [1, 1] and metadata["preprocessing"]["features"] == ["x2"]


def test_divergence_exits_1_and_writes_no_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["train", "sine", "--learning-rate", "1e4", "--no-plot"])
    assert result.exit_code == 1
    assert "diverged" in result.stderr and "smaller learning rate" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_resume_with_other_data_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train("moons", "--hidden", "4", "--epochs", 5, "--checkpoint", "run.ckpt")
    result = CliRunner().invoke(cli, ["train", "circles", "--resume", "run.ckpt", "--epochs", "9"])
    assert result.exit_code == 2
    assert "not the data the checkpoint was trained on" in result.stderr
