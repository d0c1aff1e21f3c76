"""One training run of ``deltaprop train``: the data split and preprocessed, the network,
the optimizer, the generator and the history, built fresh or restored from a checkpoint.

A single ``numpy.random.Generator`` seeded with ``--seed`` draws, in order, the validation
split, the initial weights and the mini-batch orders; a checkpoint stores its state, so a
resumed run draws exactly what the uninterrupted run would have drawn.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ConfigError, DataError, ModelFileError
from ..network import Network
from ..objective import Objective
from ..optimizers import Adam, GradientDescent, Momentum
from ..tabular import Preprocessing, infer_task, label_names, pick_column
from ..training import History, TrainingInterrupted, fit
from . import common

SOLVERS = ("gd", "momentum", "adam", "lbfgs")
OPTIMIZERS = {"gd": GradientDescent, "momentum": Momentum, "adam": Adam}
# default η per solver; full-batch gd on a regression target: 0.2 (0.5 diverges on `sine`)
DEFAULT_RATES = {"gd": 0.5, "momentum": 0.1, "adam": 0.01, ("gd", "regression"): 0.2}
SOLVER_NAMES = {
    "gd": "gradient descent",
    "momentum": "gradient descent with momentum",
    "adam": "Adam",
    "lbfgs": "L-BFGS",
}


class TrainedModel:
    """A network with the run's summary, saved as a plain network model file whose
    metadata also holds ``training`` (read by ``deltaprop info``)."""

    def __init__(self, network: Network, summary: dict) -> None:
        self.network, self.summary = network, summary

    def _model_file_payload(self) -> tuple[Network, dict]:
        return self.network, {"kind": "network", "training": self.summary}


@dataclass
class Session:
    """The run's settings, the table and its preprocessing, X and y for every row with the
    training/validation split, and the network, optimizer, generator and history."""

    settings: dict
    frame: object
    name: str
    prep: Preprocessing
    X: np.ndarray
    y: np.ndarray
    train_rows: np.ndarray
    val_rows: np.ndarray
    network: Network
    rng: np.random.Generator
    optimizer: object = None
    history: History = field(default_factory=History)
    task_note: str = ""

    @classmethod
    def start(cls, settings: dict, checkpoint=None) -> Session:
        """Read and split the data, fit (or restore) the preprocessing, build the network."""
        frame, name = common.open_data(settings["data"])
        target = pick_column(frame, settings["target"])
        # stored resolved, so a resumed run finds its file from any folder and a later
        # --target naming the default column agrees with it
        settings["target"] = target
        if Path(settings["data"]).is_file():
            settings["data"] = str(Path(settings["data"]).resolve())
        task, note = settings["task"], ""
        builtin = common.builtin_task(frame, target)
        if task == "auto" and builtin:
            task = builtin
        elif task == "auto":
            task, reason = infer_task(frame, target)
            other = "regression" if task == "classification" else "classification"
            note = f"task: {task} ({reason}; --task {other} to override)"
        rng = np.random.default_rng(settings["seed"])
        n = len(frame)
        n_val = int(round(settings["validation"] * n))
        if n - n_val < 2:
            raise DataError(
                f"{name} has {n} rows; with --validation {settings['validation']:g} fewer than "
                "2 are left for training. Use more data or a smaller --validation"
            )
        order = rng.permutation(n)
        val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
        _check_labels(frame, target, task)
        if checkpoint is not None:
            try:
                prep = Preprocessing.from_dict(checkpoint.settings.get("preprocessing"))
            except (TypeError, DataError) as err:
                raise ModelFileError(f"{checkpoint.path}: {err}; the file is damaged") from None
        else:
            prep = Preprocessing.fit(
                frame, target, task, train_rows, settings["features"], settings["impute"]
            )
            _check_classes_learnt(prep, frame, val_rows)
        X, y = prep.transform(frame), prep.encode_target(frame)
        if task == "regression":
            y = y[:, None]  # one output column, as the identity output's targets
        outputs = len(prep.classes) if task == "classification" else 1
        sizes = [X.shape[1], *settings["hidden"], outputs]
        output = "softmax" if task == "classification" else "identity"
        network = Network(sizes, settings["activation"], output, dtype=settings["dtype"], seed=rng)
        session = cls(settings, frame, name, prep, X, y, train_rows, val_rows, network, rng)
        session.task_note = note
        if settings["learning_rate"] is None and settings["solver"] != "lbfgs":
            rates = DEFAULT_RATES
            settings["learning_rate"] = rates.get(
                (settings["solver"], task), rates[settings["solver"]]
            )
        if settings["solver"] != "lbfgs":
            solver = OPTIMIZERS[settings["solver"]]
            session.optimizer = solver(settings["learning_rate"])
        if checkpoint is not None:
            session._restore(checkpoint)
        return session

    def _restore(self, checkpoint) -> None:
        if checkpoint.settings.get("fingerprint") != self.fingerprint():
            raise DataError(
                f"{self.name} is not the data the checkpoint was trained on (the training "
                "rows differ); resume with the same data file"
            )
        restored = checkpoint.network()
        if restored.sizes != self.network.sizes:
            raise ConfigError(f"the checkpoint's network {restored.sizes} does not fit the data")
        np.copyto(self.network.params, restored.params)
        checkpoint.restore_optimizer(self.optimizer)
        self.history = checkpoint.history()
        self.rng = checkpoint.generator()

    def fingerprint(self) -> str:
        """SHA-256 of the preprocessed training rows (checks a resume uses the same data)."""
        digest = hashlib.sha256()
        for array in (self.X[self.train_rows], self.y[self.train_rows]):
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        return digest.hexdigest()

    @property
    def classification(self) -> bool:
        return self.prep.task == "classification"

    def split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.X[rows], self.y[rows]

    def describe(self) -> str:
        s = self.settings
        arch = "-".join(map(str, self.network.sizes))
        batch = "full batch" if s["batch_size"] is None else f"batches of {s['batch_size']}"
        rate = "" if s["solver"] == "lbfgs" else f", η = {s['learning_rate']:g}"
        start = f" from epoch {len(self.history)}" if len(self.history) else ""
        lines = [self.task_note] if self.task_note else []
        units = f"{s['activation']} network" if s["hidden"] else "network (no hidden layer)"
        if len(self.val_rows) == 0 and s["validation"] > 0:
            rows = len(self.train_rows)
            lines.append(f"note: --validation {s['validation']:g} of {rows} rows holds out none")
        lines.append(
            f"training a {arch} {units} on {self.name} "
            f"({len(self.train_rows)} training rows, {len(self.val_rows)} validation) with "
            f"{SOLVER_NAMES[s['solver']]} ({batch}{rate}, λ = {s['l2']:g}){start} to epoch "
            f"{s['epochs']}"
        )
        return "\n".join(lines)

    def fit(
        self,
        checkpoint: str | None,
        every: int,
        progress: bool,
        track_sharpness: int = 0,
        backend=None,
    ) -> History:
        """Train to ``settings['epochs']`` epochs; Ctrl-C raises ``TrainingInterrupted``
        with the best θ so far in the network and, in the checkpoint, the state after the
        last finished epoch (to resume from). With
        ``track_sharpness`` N, λ_max(∇²J) is recorded every N epochs; ``backend`` (e.g. a
        ``DaskBackend``) computes the full-batch gradient sums."""
        s = self.settings
        X, y = self.split(self.train_rows)
        callbacks = []
        if track_sharpness:
            from ..diagnostics import SharpnessTracker

            callbacks.append(SharpnessTracker(every=track_sharpness, data=(X, y)))
        if progress:
            from ..progress import ProgressBar

            callbacks.append(ProgressBar())
        if checkpoint:
            from ..checkpoint import CheckpointWriter

            state = {
                "run": {k: v for k, v in s.items() if k != "epochs"},
                "epochs": s["epochs"],
                "preprocessing": self.prep.to_dict(),
                "fingerprint": self.fingerprint(),
            }
            callbacks.append(CheckpointWriter(checkpoint, every, state))
        epochs = s["epochs"] - len(self.history)
        try:
            if s["solver"] == "lbfgs":
                from ..lbfgs import fit_lbfgs

                self.history = fit_lbfgs(
                    self.network, X, y, l2=s["l2"], max_iter=epochs, callbacks=callbacks,
                    history=self.history,
                )  # fmt: skip
            else:
                validation = self.split(self.val_rows) if len(self.val_rows) else None
                self.history = fit(
                    self.network, X, y, l2=s["l2"], optimizer=self.optimizer, epochs=epochs,
                    batch_size=s["batch_size"], validation=validation, callbacks=callbacks,
                    seed=self.rng, history=self.history, backend=backend,
                )  # fmt: skip
        except TrainingInterrupted as stop:
            self.history = stop.history
            raise
        return self.history

    def metrics(self) -> dict[str, dict[str, float]]:
        """J, L_S and accuracy (or MSE, MAE, R² in the target's units) at the final θ, for
        the training and validation rows."""
        from .report import regression_metrics

        objective = Objective(self.network, l2=self.settings["l2"])
        table = {}
        for part, rows in (("training", self.train_rows), ("validation", self.val_rows)):
            if len(rows) == 0:
                continue
            X, y = self.split(rows)
            J, _ = objective.evaluate(X, y, with_grad=False)
            row = {"objective J": J, "loss L_S": objective.last.loss}
            if self.classification:
                row["accuracy"] = objective.last.accuracy
            else:
                predicted = self.prep.decode(self.network.forward(X)[:, 0])
                row.update(regression_metrics(self.prep.decode(y[:, 0]), predicted))
            table[part] = row
        return table

    def summary(self) -> dict:
        s = self.settings
        return {
            "command": "deltaprop train",
            "deltaprop_version": __version__,
            "settings": {k: v for k, v in s.items()},
            "epochs_run": len(self.history),
            "stop_reason": self.history.stop_reason,
            "seconds": self.history.records[-1]["time"] if len(self.history) else 0.0,
            "training_rows": len(self.train_rows),
            "validation_rows": len(self.val_rows),
            "metrics": self.metrics(),
        }

    def save(self, path) -> None:
        from ..serialization import save

        save(TrainedModel(self.network, self.summary()), path, preprocessing=self.prep.to_dict())

    def plot(self, path) -> None:
        from ..plots import TrainingView, save_figure, training_figure

        view = TrainingView(
            self.history,
            classification=self.classification,
            class_names=self.prep.classes,
            title=f"{'-'.join(map(str, self.network.sizes))} {self.settings['activation']} "
            f"on {self.name}",
        )
        if not self.prep.categories and len(self.prep.features) <= 2:
            raw = self.frame[self.prep.features].to_numpy(dtype=np.float64)[self.train_rows]
            keep = ~np.isnan(raw).any(axis=1)
            view.X, view.feature_names = raw[keep], self.prep.features
            target = self.y[self.train_rows][keep]
            view.y = target if self.classification else self.prep.decode(target[:, 0])
            view.predict = self._predict_raw
        save_figure(training_figure(view), path)

    def _predict_raw(self, raw: np.ndarray) -> np.ndarray:
        """Probabilities, or values in the target's units, for inputs in their own units."""
        import pandas as pd

        f = self.network.forward(self.prep.transform(pd.DataFrame(raw, columns=self.prep.features)))
        return f if self.classification else self.prep.decode(f[:, 0])


def _check_classes_learnt(prep: Preprocessing, frame, val_rows: np.ndarray) -> None:
    """A class that falls only in the validation rows cannot be learnt: say so at once."""
    if prep.task != "classification":
        return
    held_out = set(label_names(frame[prep.target].to_numpy()[val_rows]))
    unlearnt = sorted(map(str, held_out - set(prep.classes)))
    if unlearnt:
        raise DataError(
            f"class(es) {', '.join(map(repr, unlearnt[:5]))} of target {prep.target!r} fall "
            "only in the rows held out for validation, so they cannot be learnt; use more rows "
            "of those classes, another --seed or a smaller --validation"
        )


def _check_labels(frame, target: str, task: str) -> None:
    """Classification needs class labels: a target of real numbers is refused at once."""
    values = frame[target].dropna()
    if task != "classification" or values.dtype.kind != "f":
        return
    fractional = values[values != values.round()]
    if len(fractional):
        raise DataError(
            f"target {target!r} holds real numbers (e.g. {fractional.iloc[0]:g}), not class "
            "labels; use --task regression, or turn the target into classes first"
        )
