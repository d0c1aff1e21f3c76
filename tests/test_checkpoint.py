"""Checkpoints: the whole training state round-trips, resuming is bit-identical, bad files
are refused, and the writer keeps to its schedule."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.checkpoint import CheckpointWriter, load_checkpoint, save_checkpoint
from deltaprop.training import Callback

from conftest import AdamStoppedByCtrlC


def problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 3))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    return X, y


def test_round_trip_of_parameters_optimizer_history_and_generator(tmp_path):
    X, y = problem()
    net = dp.Network([3, 5, 2], activation="tanh", seed=1)
    optimizer, rng = dp.Adam(0.01), np.random.default_rng(7)
    history = dp.fit(net, X, y, optimizer=optimizer, epochs=4, batch_size=16, seed=rng)
    save_checkpoint(tmp_path / "c.ckpt", net, optimizer, history, rng, settings={"note": "x"})
    checkpoint = load_checkpoint(tmp_path / "c.ckpt")
    assert checkpoint.epoch == 4 and checkpoint.settings == {"note": "x"}
    assert checkpoint.network().params.tobytes() == net.params.tobytes()
    restored = checkpoint.restore_optimizer(dp.Adam(0.5))
    assert restored.learning_rate == 0.01 and restored.steps == optimizer.steps == 16
    for name, array in optimizer.state_dict()["arrays"].items():
        assert restored.state_dict()["arrays"][name].tobytes() == array.tobytes()
    assert checkpoint.history().records == history.records
    assert checkpoint.generator().random(5).tolist() == rng.random(5).tolist()


def test_fit_resumed_from_a_checkpoint_matches_one_long_fit(tmp_path):
    X, y = problem()

    def start():
        return dp.Network([3, 6, 2], seed=2), dp.Momentum(0.1), np.random.default_rng(5)

    net, optimizer, rng = start()
    dp.fit(net, X, y, optimizer=optimizer, epochs=12, batch_size=10, seed=rng)

    first, optimizer_a, rng_a = start()
    writer = CheckpointWriter(tmp_path / "half.ckpt")
    dp.fit(
        first, X, y, optimizer=optimizer_a, epochs=6, batch_size=10, seed=rng_a, callbacks=[writer]
    )
    checkpoint = load_checkpoint(tmp_path / "half.ckpt")
    second = checkpoint.network()
    optimizer_b = checkpoint.restore_optimizer(dp.Momentum(0.1))
    history = dp.fit(
        second, X, y, optimizer=optimizer_b, epochs=6, batch_size=10,
        seed=checkpoint.generator(), history=checkpoint.history(),
    )  # fmt: skip
    assert len(history) == 12
    assert second.params.tobytes() == net.params.tobytes()


def test_ctrl_c_mid_epoch_writes_a_checkpoint_that_resumes_exactly(tmp_path):
    X, y = problem()
    net, rng = dp.Network([3, 6, 2], seed=2), np.random.default_rng(5)
    dp.fit(net, X, y, optimizer=dp.Adam(0.05), epochs=9, batch_size=10, seed=rng)

    interrupted = dp.Network([3, 6, 2], seed=2)
    optimizer = AdamStoppedByCtrlC(0.05, at=5 * 7 + 3)  # 7 mini-batches an epoch
    with pytest.raises(dp.TrainingInterrupted) as info:
        dp.fit(
            interrupted, X, y, optimizer=optimizer, epochs=9, batch_size=10,
            seed=np.random.default_rng(5), callbacks=[CheckpointWriter(tmp_path / "c.ckpt")],
        )  # fmt: skip
    assert len(info.value.history) == 5
    checkpoint = load_checkpoint(tmp_path / "c.ckpt")
    assert checkpoint.epoch == 5 and "interrupted" in checkpoint.history().stop_reason
    assert checkpoint.optimizer_state["steps"] == 5 * 7
    resumed = checkpoint.network()
    dp.fit(
        resumed, X, y, optimizer=checkpoint.restore_optimizer(dp.Adam(0.05)), epochs=4,
        batch_size=10, seed=checkpoint.generator(), history=checkpoint.history(),
    )  # fmt: skip
    assert resumed.params.tobytes() == net.params.tobytes()


class OnDisk(Callback):
    """Records the epoch stored in the checkpoint file after every epoch."""

    def __init__(self, path):
        self.path, self.seen = path, []

    def on_epoch_end(self, state, record):
        self.seen.append(load_checkpoint(self.path).epoch if self.path.exists() else None)


def test_writer_schedule_and_final_write(tmp_path):
    X, y = problem()
    path = tmp_path / "run.ckpt"
    spy = OnDisk(path)
    net = dp.Network([3, 4, 2], seed=0)
    dp.fit(net, X, y, epochs=7, callbacks=[CheckpointWriter(path, every=3), spy])
    assert spy.seen == [None, None, 3, 3, 3, 6, 6]
    assert load_checkpoint(path).epoch == 7  # and once more at the end
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]  # no temporary files


def test_bad_checkpoint_files_are_refused(tmp_path):
    with pytest.raises(dp.ModelFileError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.ckpt")
    dp.save(dp.Network([2, 2]), tmp_path / "model.safetensors")
    with pytest.raises(dp.ModelFileError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "model.safetensors")
    X, y = problem()
    net, optimizer, rng = dp.Network([3, 2]), dp.GradientDescent(0.1), np.random.default_rng()
    path = save_checkpoint(tmp_path / "c.ckpt", net, optimizer, dp.History(), rng)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(dp.ModelFileError, match="c.ckpt"):
        load_checkpoint(path)
    with pytest.raises(dp.ModelFileError):  # a checkpoint is not a model file either
        save_checkpoint(tmp_path / "d.ckpt", net, optimizer, dp.History(), rng)
        dp.load(tmp_path / "d.ckpt")
