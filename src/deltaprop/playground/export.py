"""Export: the trained model as the project's model file, and the equivalent command line."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

from .. import datasets
from ..serialization import save
from .data import Problem
from .settings import Settings

MODEL_NAME = "playground-model.safetensors"


def model_bytes(network, problem: Problem, folder: Path) -> bytes:
    """The model file ``deltaprop.save`` writes (with the upload's standardisation, if any),
    written inside the private ``folder`` and read back."""
    with tempfile.TemporaryDirectory(dir=folder) as private:
        path = save(network, Path(private) / MODEL_NAME, preprocessing=problem.preprocessing)
        return path.read_bytes()


def train_command(settings: Settings, problem: Problem, epochs: int) -> str:
    """``deltaprop train ...`` with the same data, network, solver and step count."""
    data = problem.source if settings.dataset == "upload" else settings.dataset
    args = ["deltaprop", "train", data]
    if settings.dataset == "upload":
        args += ["--target", problem.preprocessing["target"], "--task", problem.task]
        if settings.features:
            args += ["--features", ",".join(settings.features)]
    args += [
        "--hidden", ",".join(map(str, settings.hidden)) or "0",
        "--activation", settings.activation,
        "--solver", settings.solver,
        "--learning-rate", f"{settings.learning_rate:g}",
        "--l2", f"{settings.l2:g}",
        "--epochs", str(max(epochs, 1)),
        "--batch-size", str(settings.batch_size),
        "--validation", f"{settings.test_fraction:g}",
        "--seed", str(settings.seed),
    ]  # fmt: skip
    command = shlex.join(args)
    builtin = datasets.DATASETS.get(settings.dataset)
    if builtin and (settings.n, settings.noise, settings.seed) != (builtin.n, builtin.noise, 0):
        command += (
            f"  # the command uses {settings.dataset}'s {builtin.n} points with noise "
            f"{builtin.noise:g}, drawn with seed 0"
        )
    return command
