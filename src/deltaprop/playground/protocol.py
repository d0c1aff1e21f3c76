"""The messages between a page and its session: JSON objects with a ``type``.

Page → server: configure {settings}, play, pause, step, reset, trace {index}, export, command.
Server → page: settings, dataset, frame, status, trace, export, command, diverged, error.
Every request is answered; a malformed one with an ``error`` message, never a crash.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

from ..errors import DeltapropError
from ..objective import Objective
from . import views
from .export import MODEL_NAME, model_bytes, train_command
from .session import Diverged, Session
from .trace import trace

MAX_MESSAGE = 64_000  # characters; settings and commands are small


class BadMessage(ValueError):
    """A message that is not one of the protocol's."""


def parse(text: object) -> dict:
    """The message as a dict with a known ``type``, or ``BadMessage``."""
    if not isinstance(text, str):
        raise BadMessage("messages must be JSON text, not binary frames")
    if len(text) > MAX_MESSAGE:
        raise BadMessage(f"message too long ({len(text)} characters; at most {MAX_MESSAGE})")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to be ours
        raise BadMessage("message is not valid JSON") from None
    if (
        not isinstance(message, dict)
        or not isinstance(message.get("type"), str)
        or (message["type"] not in HANDLERS)
    ):
        raise BadMessage(f"unknown message; send an object with type one of: {', '.join(HANDLERS)}")
    return message


class Conversation:
    """A session and what the page was last told; ``handle`` turns one message into replies."""

    def __init__(self, session: Session, private: Path) -> None:
        self.session = session
        self.private = private
        self.picked: int | None = None

    def opening(self) -> list[dict]:
        return self.rebuilt()

    def handle(self, message: dict) -> list[dict]:
        """The replies to a parsed message; refused input becomes an ``error`` reply."""
        return self._answer(HANDLERS[message["type"]], message)

    def advance(self, seconds: float) -> list[dict]:
        """One slice of play: the new records and a frame."""
        return self._answer(_advance, {"seconds": seconds})

    def _answer(self, handler, message: dict) -> list[dict]:
        try:
            return handler(self, message)
        except Diverged as err:
            diverged = {"type": "diverged", "message": str(err)}
            return [self.frame(err.records), diverged, self.status()]
        except (DeltapropError, ValueError) as err:
            return [{"type": "error", "message": str(err)}]

    # -- replies -----------------------------------------------------------------------
    def status(self) -> dict:
        return {"type": "status", "playing": self.session.playing, "epoch": self.session.epoch}

    def frame(self, records: list[dict]) -> dict:
        s = self.session
        out = {"type": "frame", "epoch": s.epoch, "records": _thin(records)}
        out.update(views.frame(s.network, s.problem))
        if self.picked is not None:
            out["trace"] = self.trace_reply()
        return out

    def rebuilt(self, fresh: bool = True) -> list[dict]:
        """Settings, points and a frame; ``fresh``: a new run (the page clears its curves)."""
        s = self.session
        self.picked = None if fresh else self.picked
        settings = {"type": "settings", "settings": s.settings.to_dict()}
        points = s.problem.points()
        dataset = {"type": "dataset", "fresh": fresh, **points, "bounds": views.bounds(s.problem)}
        return [settings, dataset, {**self.frame([]), "metrics": self.metrics()}, self.status()]

    def metrics(self) -> dict:
        """J, L_S and accuracy at the current parameters (shown before the first step)."""
        s = self.session
        objective = Objective(s.network, l2=s.settings.l2)
        out = {"objective": objective.value(s.X_train, s.y_train), "loss": objective.last.loss}
        if s.problem.task == "classification":
            out["accuracy"] = objective.last.accuracy
        if len(s.X_test):
            objective.value(s.X_test, s.y_test)
            out["val_loss"] = objective.last.loss
            if s.problem.task == "classification":
                out["val_accuracy"] = objective.last.accuracy
        return out

    def trace_reply(self) -> dict:
        s = self.session
        return {
            "index": self.picked,
            **trace(s.network, s.X_train[self.picked], s.y_train[self.picked]),
        }


def _thin(records: list[dict], limit: int = 400) -> list[dict]:
    """At most ``limit`` records (evenly spaced, always the last)."""
    step = math.ceil(len(records) / limit) if records else 1
    return records[::-1][::step][::-1]


def to_json(reply: dict) -> str:
    """JSON text the browser can parse: NaN and ±inf (which JSON lacks) become null."""
    try:
        return json.dumps(reply, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(reply), allow_nan=False)


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _configure(c: Conversation, m: dict) -> list[dict]:
    change = c.session.configure(m.get("settings"))
    if change == "live":
        return [{"type": "settings", "settings": c.session.settings.to_dict()}]
    return c.rebuilt(fresh=change == "rebuilt")


def _play(c: Conversation, m: dict) -> list[dict]:
    c.session.playing = True
    return [c.status()]


def _pause(c: Conversation, m: dict) -> list[dict]:
    c.session.playing = False
    return [c.status()]


def _step(c: Conversation, m: dict) -> list[dict]:
    c.session.playing = False
    return [c.frame(c.session.advance(epochs=1)), c.status()]


def _advance(c: Conversation, m: dict) -> list[dict]:
    return [c.frame(c.session.advance(seconds=m["seconds"]))]


def _reset(c: Conversation, m: dict) -> list[dict]:
    c.session.reset()
    return c.rebuilt()


def _trace(c: Conversation, m: dict) -> list[dict]:
    index = m.get("index")
    n = len(c.session.X_train)
    if index is None:
        c.picked = None
        return [{"type": "trace", "index": None}]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
        raise BadMessage(f"index must be a training point number 0..{n - 1}, got {index!r}")
    c.picked = index
    return [{"type": "trace", **c.trace_reply()}]


def _export(c: Conversation, m: dict) -> list[dict]:
    s = c.session
    blob = model_bytes(s.network, s.problem, c.private)
    return [
        {
            "type": "export",
            "filename": MODEL_NAME,
            "model": base64.b64encode(blob).decode("ascii"),
            "command": train_command(s.settings, s.problem, s.epoch),
        }
    ]


def _command(c: Conversation, m: dict) -> list[dict]:
    s = c.session
    return [{"type": "command", "command": train_command(s.settings, s.problem, s.epoch)}]


HANDLERS = {
    "configure": _configure,
    "play": _play,
    "pause": _pause,
    "step": _step,
    "reset": _reset,
    "trace": _trace,
    "export": _export,
    "command": _command,
}
