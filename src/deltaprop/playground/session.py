"""One browser tab's training session: the real engine (``Network``, ``fit``, optimizers)
stepped in short time slices, with divergence caught and the last good parameters kept."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, DivergenceError
from ..network import Network
from ..objective import Objective
from ..optimizers import Adam, GradientDescent, Momentum, Optimizer
from ..training import Budget, Callback, TrainingState, fit
from .data import Problem, Table, build_problem
from .settings import Settings, parse_settings

SOLVERS = {"gd": GradientDescent, "momentum": Momentum, "adam": Adam}
LIVE = {"learning_rate", "l2", "batch_size"}  # changed without restarting the run
EXPLODE = 1e3  # J above this many times max(J at the start, 1) counts as divergence
MAX_EPOCHS_PER_SLICE = 100_000


class Diverged(Exception):
    """A step made the objective non-finite or explode; the message is for the page and
    ``records`` are the good epochs trained before it."""

    def __init__(self, records: list[dict], message: str) -> None:
        super().__init__(message)
        self.records = records


class _Guard(Callback):
    """Keeps the last parameters whose J was finite and not exploding; stops on the first bad J.

    A record's J was measured at the parameters the epoch started from
    (``params_before_step``), so those are the ones known to be good.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        s = self.session
        J = record["objective"]
        if s.reference is None:
            s.reference = max(J, 1.0)
        if J > EXPLODE * s.reference:
            s.bad_objective = J
            state.stop = True
            return
        np.copyto(s.good_params, state.extra["params_before_step"])
        s.good_epoch = s.epoch + len(state.history) - 1


class Session:
    """Settings → data (``Problem``) → network and optimizer; ``advance`` trains a slice."""

    def __init__(self, uploads: dict[str, Table] | None = None) -> None:
        self.uploads = uploads if uploads is not None else {}
        self.settings = Settings()
        self.problem = build_problem(self.settings, None)
        self.reset()

    def configure(self, data: dict) -> str:
        """Apply new settings: "live" (η, λ, batch size: training goes on), "view" (other
        plotted columns, same network) or "rebuilt" (new data or network, epoch 0)."""
        settings = parse_settings(data, self.settings)
        changed = {k for k, v in settings.to_dict().items() if v != getattr(self.settings, k)}
        if changed <= LIVE | {"view"}:
            self._check_batch(settings, self.problem)
            problem = self.problem
            if "view" in changed:  # built before anything changes: it may fail
                problem = build_problem(settings, self.uploads.get(settings.upload))
            self.optimizer.learning_rate = settings.learning_rate
            self.settings, self.problem = settings, problem
            if "l2" in changed:  # J moves with λ: measure "exploding" from here
                self.reference = None
            return "view" if "view" in changed else "live"
        problem = build_problem(settings, self.uploads.get(settings.upload))
        self._check_batch(settings, problem)
        self.settings, self.problem = settings, problem
        self.reset()
        return "rebuilt"

    def reset(self) -> None:
        """A fresh network and optimizer from the seed; epoch 0, paused."""
        s, p = self.settings, self.problem
        sizes = [p.X.shape[1], *s.hidden, p.n_outputs]
        self.network = Network(sizes, activation=s.activation, output=p.output, seed=s.seed)
        self.optimizer: Optimizer = SOLVERS[s.solver](s.learning_rate)
        self.rng = np.random.default_rng(s.seed)
        self.epoch = 0
        self.playing = False
        self.reference: float | None = None
        self.bad_objective = math.nan
        self.good_params = self.network.params.copy()
        self.good_epoch = 0
        self.X_train, self.y_train, self.X_test, self.y_test = p.split()

    def _check_batch(self, settings: Settings, problem: Problem) -> None:
        n_train = int((~problem.test).sum())
        if settings.batch_size != "full" and settings.batch_size > n_train:
            raise ConfigError(
                f"batch size {settings.batch_size} exceeds the {n_train} training points; "
                "choose a smaller batch or 'full'"
            )

    def advance(self, seconds: float | None = None, epochs: int = 1) -> list[dict]:
        """Train for ``epochs`` epochs or until ``seconds`` have passed; returns the records.

        Raises ``Diverged`` (after restoring the last good parameters and pausing) when J
        becomes non-finite or explodes.
        """
        s = self.settings
        budget = [Budget(seconds=seconds)] if seconds is not None else []
        validation = (self.X_test, self.y_test) if len(self.X_test) else None
        if seconds is not None:
            epochs = MAX_EPOCHS_PER_SLICE
        objective = math.nan  # the bad J, if the slice diverged
        try:
            records = fit(
                self.network, self.X_train, self.y_train, l2=s.l2, optimizer=self.optimizer,
                epochs=epochs, batch_size=None if s.batch_size == "full" else s.batch_size,
                validation=validation, callbacks=[_Guard(self), *budget], seed=self.rng,
            ).records  # fmt: skip
        except DivergenceError as err:  # non-finite: fit kept the records before it
            records, objective = err.history.records, math.inf
        if not math.isnan(self.bad_objective):  # exploded: the guard stopped fit
            records, objective = records[:-1], self.bad_objective
        elif math.isnan(objective) and records:  # J at the last step's θ is in no record yet
            with np.errstate(over="ignore", invalid="ignore"):  # reported as a divergence
                final = Objective(self.network, l2=s.l2).value(self.X_train, self.y_train)
            if not math.isfinite(final) or final > EXPLODE * self.reference:
                objective = final if math.isfinite(final) else math.inf
            else:  # checked: the next slice starts from known-good parameters
                np.copyto(self.good_params, self.network.params)
                self.good_epoch = self.epoch + len(records)
        first = self.epoch
        self.epoch += len(records)
        numbered = [{"epoch": first + i + 1, **r} for i, r in enumerate(records)]
        if not math.isnan(objective):
            # the good parameters' own record is sent again by the slice that resumes there
            self._diverged(objective, numbered[: max(self.good_epoch - first, 0)])
        return numbered

    def _diverged(self, objective: float, records: list[dict]) -> None:
        np.copyto(self.network.params, self.good_params)
        self.epoch = self.good_epoch  # the steps after the good parameters are undone
        self.playing = False
        eta = self.optimizer.learning_rate
        self.optimizer = SOLVERS[self.settings.solver](eta)  # its state may hold inf/NaN
        bad = "not finite" if not math.isfinite(objective) else f"{objective:.3g}"
        self.bad_objective = math.nan
        raise Diverged(
            records,
            f"Training diverged at epoch {self.epoch + 1}: the objective J became {bad} with "
            f"learning rate η = {eta:g}. Training was paused and the last good parameters "
            f"(epoch {self.good_epoch}) were kept. Try a smaller learning rate, e.g. "
            f"η = {eta / 10:g}.",
        )
