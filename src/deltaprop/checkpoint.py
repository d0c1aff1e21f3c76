"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds θ, the optimizer's state (``Optimizer.state_dict()``), the History, the
``numpy.random.Generator``'s ``bit_generator.state`` and the epoch, plus free-form JSON
(``settings``, e.g. the command line's options and preprocessing). Arrays are safetensors,
the rest JSON metadata — never pickle — and files are written atomically, so a crash leaves
the previous checkpoint intact. Resuming with the restored network, optimizer, history and
generator continues bit-identically: training 30 epochs and then 30 more gives the same
parameters as 60 at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelFileError
from .network import Network
from .optimizers import Optimizer
from .serialization import CHECKPOINT_KIND as KIND
from .serialization import _read, file_bytes, write_atomically
from .training import Callback, History, TrainingState


@dataclass
class Checkpoint:
    """A loaded checkpoint; ``network()``, ``generator()`` and ``history()`` rebuild the
    objects, ``restore_optimizer`` loads the optimizer state into a fresh optimizer."""

    path: Path
    params: np.ndarray
    architecture: dict
    optimizer_state: dict
    history_data: dict
    rng_state: dict
    epoch: int
    settings: dict = field(default_factory=dict)

    def network(self) -> Network:
        spec = self.architecture
        net = Network(
            spec["sizes"],
            activation=spec["activations"],
            output=spec["output"],
            dtype=spec["dtype"],
        )
        if net.params.shape != self.params.shape:
            raise ModelFileError(
                f"{self.path}: θ has {self.params.size} entries, not {net.params.size}"
            )
        np.copyto(net.params, self.params)
        return net

    def generator(self) -> np.random.Generator:
        """A Generator in exactly the saved state."""
        bit_generator = getattr(np.random, self.rng_state["bit_generator"])()
        bit_generator.state = self.rng_state
        return np.random.Generator(bit_generator)

    def history(self) -> History:
        return History.from_dict(self.history_data)

    def restore_optimizer(self, optimizer: Optimizer) -> Optimizer:
        optimizer.load_state_dict(self.optimizer_state)
        return optimizer


def save_checkpoint(
    path: str | os.PathLike,
    network: Network,
    optimizer: Optimizer,
    history: History,
    rng: np.random.Generator,
    settings: dict | None = None,
) -> Path:
    """Write the training state to ``path`` atomically (safetensors + JSON, no pickle)."""
    return _write_file(path, *_training_state(network, optimizer, history, rng), settings)


def _training_state(
    network: Network, optimizer: Optimizer, history: History, rng: np.random.Generator
) -> tuple[dict, dict]:
    """The checkpoint's arrays (copies) and metadata, as they are now."""
    state = optimizer.state_dict()
    tensors = {"params": network.params.copy()}
    tensors.update({f"optimizer.{k}": np.ascontiguousarray(v) for k, v in state["arrays"].items()})
    metadata = {
        "format_version": 1,
        "kind": KIND,
        "epoch": len(history),
        "architecture": {
            "sizes": network.sizes,
            "activations": [a.name for a in network.activations],
            "output": network.output.name,
            "dtype": network.dtype.name,
        },
        "optimizer": {
            "class": type(optimizer).__name__,
            **{k: v for k, v in state.items() if k != "arrays"},
        },
        "history": history.to_dict(),
        "rng": rng.bit_generator.state,
    }
    return tensors, metadata


def _write_file(
    path: str | os.PathLike, tensors: dict, metadata: dict, settings: dict | None
) -> Path:
    path = Path(path)
    write_atomically(path, file_bytes(tensors, {**metadata, "settings": settings or {}}))
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint; a damaged or foreign file raises ``ModelFileError``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such checkpoint file; check the path")
    tensors, metadata = _read(path)
    metadata.pop("_path", None)
    if metadata.get("kind") != KIND:
        raise ModelFileError(
            f"{path}: this is a model file, not a training checkpoint; pass the file written "
            "by --checkpoint"
        )
    try:
        optimizer = dict(metadata["optimizer"])
        Optimizer(optimizer["learning_rate"])  # η a finite number > 0
        if int(optimizer["steps"]) != optimizer["steps"] or optimizer["steps"] < 0:
            raise ValueError(f"optimizer steps {optimizer['steps']!r} is not a count")
        records = metadata["history"]["records"]
        timed = [isinstance(r, dict) and isinstance(r.get("time"), (int, float)) for r in records]
        if not all(timed) or len(records) != metadata["epoch"]:
            raise ValueError(f"the history is not {metadata['epoch']} records with their time")
        optimizer["arrays"] = {
            k.removeprefix("optimizer."): v for k, v in tensors.items() if k != "params"
        }
        checkpoint = Checkpoint(
            path,
            tensors["params"],
            dict(metadata["architecture"]),
            optimizer,
            dict(metadata["history"]),
            dict(metadata["rng"]),
            int(metadata["epoch"]),
            dict(metadata.get("settings") or {}),
        )
        checkpoint.generator()  # a mangled generator state fails here, not mid-run
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        problem = f"missing entry {err}" if isinstance(err, KeyError) else str(err)
        raise ModelFileError(
            f"{path}: checkpoint metadata is incomplete or mangled ({problem})"
        ) from None
    return checkpoint


class CheckpointWriter(Callback):
    """Write a checkpoint every ``every`` epochs (0: only at the end) and when training ends.
    After Ctrl-C it writes the state at the end of the last finished epoch (θ, optimizer,
    generator and history together, not ``fit``'s best θ), so resuming continues exactly."""

    def __init__(
        self, path: str | os.PathLike, every: int = 0, settings: dict | None = None
    ) -> None:
        self.path, self.every, self.settings = Path(path), int(every), settings or {}
        self.written_epoch: int | None = None
        self.finished: tuple[dict, dict] | None = None  # the state after the last epoch

    def write(self, state: TrainingState) -> None:
        self._write(self._snapshot(state))

    def _write(self, snapshot: tuple[dict, dict]) -> None:
        _write_file(self.path, *snapshot, self.settings)
        self.written_epoch = snapshot[1]["epoch"]

    def on_train_begin(self, state: TrainingState) -> None:
        self.finished = self._snapshot(state)

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        self.finished = self._snapshot(state)
        if self.every and len(state.history) % self.every == 0:
            self._write(self.finished)

    def on_train_end(self, state: TrainingState) -> None:
        if state.interrupted:  # the optimizer and generator may be part-way through an epoch
            tensors, metadata = self.finished
            history = History(state.history.records[: metadata["epoch"]])
            history.stop_reason = state.history.stop_reason
            self._write((tensors, {**metadata, "history": history.to_dict()}))
        elif self.written_epoch != len(state.history) or state.history.stop_reason:
            self.write(state)

    @staticmethod
    def _snapshot(state: TrainingState) -> tuple[dict, dict]:
        return _training_state(state.network, state.optimizer, state.history, state.rng)
