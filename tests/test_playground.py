"""The playground's server through Starlette's test client: sessions, protocol, uploads, safety."""

import base64
import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import warnings
from contextlib import contextmanager

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("pandas")
with warnings.catch_warnings():  # Starlette suggests httpx2 for its test client
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from starlette.testclient import TestClient, WebSocketDenialResponse

import deltaprop as dp  # noqa: E402
from deltaprop.playground import create_app, serve  # noqa: E402
from deltaprop.playground import session as session_module  # noqa: E402
from deltaprop.playground.protocol import Conversation, to_json  # noqa: E402
from deltaprop.playground.session import Diverged, Session  # noqa: E402

BASE = "http://127.0.0.1:8765"
WS = "ws://127.0.0.1:8765/ws"
GOOD_CSV = "\n".join(
    ["length,width,weight,species"]
    + [
        f"{1 + i % 7},{2 + (i * 3) % 5},{0.5 * i},{'cat' if i % 7 < 3 else 'dog'}"
        for i in range(40)
    ]
).encode()


@pytest.fixture
def client():
    with TestClient(create_app(max_upload=4000), base_url=BASE) as c:
        yield c


@contextmanager
def opened(client, **headers):
    """A WebSocket and its opening messages (settings, dataset, frame, status) by type."""
    with client.websocket_connect(WS, headers=headers) as ws:
        yield ws, {m["type"]: m for m in (ws.receive_json() for _ in range(4))}


def ask(ws, message, until):
    """Send ``message`` (dict or raw text) and read replies up to one of type ``until``."""
    ws.send_text(message if isinstance(message, str) else json.dumps(message))
    replies = []
    while not replies or replies[-1]["type"] != until:
        replies.append(ws.receive_json())
    return replies


def upload(client, body=GOOD_CSV, name="pets.csv", kind="text/csv", **headers):
    return client.post(
        f"/api/upload?name={name}", content=body, headers={"content-type": kind, **headers}
    )


# -- page and static files ---------------------------------------------------------------
def test_page_and_modules_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "deltaprop playground" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = client.get("/static/js/main.js")
    assert script.status_code == 200 and "WebSocket" in script.text
    assert "javascript" in script.headers["content-type"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/js/../../app.py",
        "/static/%2e%2e/%2e%2e/serialization.py",
        "/static//etc/passwd",
        "/static/..\\app.py",
    ],
)
def test_path_traversal_never_leaves_the_static_folder(client, path):
    response = client.get(path)
    assert response.status_code in (400, 404)
    assert "import" not in response.text and "root:" not in response.text


def test_a_foreign_host_name_is_refused(client):
    # DNS rebinding: a foreign name resolving to 127.0.0.1 must not reach the app
    assert client.get("/", headers={"host": "evil.example:8765"}).status_code == 400


# -- WebSocket sessions ------------------------------------------------------------------
def test_websocket_from_a_foreign_origin_is_refused(client):
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect(WS, headers={"origin": "http://evil.example"}):
            pass
    assert denied.value.status_code == 403
    with opened(client, origin=BASE) as (socket_, opening):
        assert opening["status"]["epoch"] == 0


def test_opening_describes_data_network_and_starting_metrics(client):
    with opened(client) as (socket_, opening):
        data, frame = opening["dataset"], opening["frame"]
        assert data["task"] == "classification" and data["classes"] == ["0", "1", "2"]
        assert len(data["x"]) == 600 and sum(data["test"]) == 120
        assert frame["sizes"] == [2, 32, 32, 3] and frame["epoch"] == 0
        side = frame["side"]
        assert len(base64.b64decode(frame["classes"])) == side * side
        assert len(frame["units"]) == 2 and len(frame["units"][0]) == 12
        assert frame["metrics"]["objective"] > frame["metrics"]["loss"] > 0  # J = L_S + λ/2‖w‖²


def test_step_play_pause_and_reset(client):
    with opened(client) as (socket_, opening):
        start = opening["frame"]["metrics"]["objective"]
        frame, status = ask(socket_, {"type": "step"}, "status")
        assert frame["epoch"] == 1 and frame["records"][0]["epoch"] == 1
        assert frame["records"][0]["objective"] == pytest.approx(start)  # J at θ_0
        assert not status["playing"]
        assert ask(socket_, {"type": "play"}, "status")[-1]["playing"]
        epochs = [socket_.receive_json()["epoch"] for _ in range(3)]
        assert epochs == sorted(epochs) and epochs[0] > 1
        paused = ask(socket_, {"type": "pause"}, "status")[-1]
        assert not paused["playing"]
        after = ask(socket_, {"type": "step"}, "status")[0]
        assert after["epoch"] == paused["epoch"] + 1  # nothing trained while paused
        replies = ask(socket_, {"type": "reset"}, "status")
        assert [r["type"] for r in replies] == ["settings", "dataset", "frame", "status"]
        assert replies[2]["epoch"] == 0 and replies[1]["fresh"]
        assert replies[2]["metrics"]["objective"] == pytest.approx(start)  # same seed, same θ_0


def test_session_trains_exactly_like_fit():
    session = Session()
    session.advance(epochs=5)
    s = session.settings
    net = dp.Network([2, *s.hidden, 3], activation=s.activation, seed=s.seed)
    dp.fit(
        net, session.X_train, session.y_train, l2=s.l2,
        optimizer=dp.GradientDescent(s.learning_rate), epochs=5,
    )  # fmt: skip
    np.testing.assert_array_equal(session.network.params, net.params)


def test_live_settings_keep_training_and_others_rebuild(client):
    with opened(client) as (socket_, _):
        ask(socket_, {"type": "step"}, "status")
        replies = ask(
            socket_, {"type": "configure", "settings": {"learning_rate": 0.05}}, "settings"
        )
        assert len(replies) == 1 and replies[0]["settings"]["learning_rate"] == 0.05
        after = ask(socket_, {"type": "step"}, "status")[0]
        assert after["epoch"] == 2
        settings = {"hidden": [5, 4, 3], "activation": "tanh", "dataset": "sine", "solver": "adam"}
        replies = ask(socket_, {"type": "configure", "settings": settings}, "status")
        dataset, frame = replies[1], replies[2]
        assert dataset["task"] == "regression" and dataset["axes"] == ["x1"]
        assert frame["sizes"] == [2 - 1, 5, 4, 3, 1] and frame["epoch"] == 0
        assert len(base64.b64decode(frame["surface"])) == 4 * 200


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"hidden": [0]}, "hidden layers"),
        ({"hidden": [8] * 9}, "at most 8"),
        ({"hidden": [257]}, "[1, 256]"),
        ({"learning_rate": -1}, "learning rate η"),
        ({"learning_rate": "fast"}, "must be a number"),
        ({"l2": float("nan")}, "L2 penalty λ"),
        ({"batch_size": 10_000}, "exceeds"),
        ({"activation": "gelu"}, "relu, tanh"),
        ({"colour": "red"}, "unknown setting"),
        ({"dataset": "plane", "task": "classification"}, "regression dataset"),
        ({"dataset": "upload", "upload": "no-such-token"}, "upload it again"),
        ({"upload": "../../etc/passwd"}, "token"),
        ("not an object", "JSON object"),
        ({"n": float("inf")}, "number of points must be finite"),
        ({"hidden": [float("inf")]}, "must be finite"),
        ({"learning_rate": 10**400}, "(0, 1e+09]"),
    ],
)
def test_bad_settings_are_refused_with_a_message(client, settings, words):
    with opened(client) as (socket_, opening):
        message = json.dumps({"type": "configure", "settings": settings}, allow_nan=True)
        (reply,) = ask(socket_, message, "error")
        assert words in reply["message"]
        frame = ask(socket_, {"type": "step"}, "status")[0]  # the session is unchanged
        assert frame["sizes"] == opening["frame"]["sizes"] and frame["epoch"] == 1


@pytest.mark.parametrize(
    "message, words",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "unknown message"),
        ('{"type": "explode"}', "unknown message"),
        ('{"type": "_advance", "seconds": 100}', "unknown message"),
        ('{"type": "trace", "index": 100000}', "training point"),
        ('{"type": "trace", "index": "3"}', "training point"),
        ('{"type": "configure"}', "JSON object"),
        (" " * 70_000 + "{}", "too long"),
        ('{"type": ["play"]}', "unknown message"),
        ('{"type": "play", "x": ' + "[" * 5000 + "]" * 5000 + "}", "not valid JSON"),
    ],
)
def test_malformed_messages_are_answered_never_fatal(client, message, words):
    with opened(client) as (socket_, _):
        (reply,) = ask(socket_, message, "error")
        assert words in reply["message"]
        socket_.send_bytes(b"\x00\x01")
        assert "JSON text" in socket_.receive_json()["message"]
        assert ask(socket_, {"type": "step"}, "status")[0]["epoch"] == 1  # still serving


def test_divergence_pauses_and_keeps_the_last_good_parameters(client):
    with opened(client) as (socket_, _):
        ask(socket_, {"type": "configure", "settings": {"learning_rate": 1e4}}, "settings")
        replies = ask(socket_, {"type": "play"}, "diverged")
        warning = replies[-1]["message"]
        assert (
            "diverged" in warning and "smaller learning rate" in warning and "η = 1000" in warning
        )
        status = socket_.receive_json()
        assert status["type"] == "status" and not status["playing"]


def test_divergence_restores_finite_parameters():
    session = Session()
    session.configure({"learning_rate": 1e4})
    with pytest.raises(Diverged, match="last good parameters"):
        for _ in range(100):
            session.advance(epochs=1)
    objective = dp.Objective(session.network, l2=session.settings.l2)
    J = objective.value(session.X_train, session.y_train)
    assert np.isfinite(session.network.params).all() and J < 1e3
    assert not session.playing


def test_trace_is_the_kernels_backpropagation():
    session = Session()
    session.configure({"hidden": [5, 4], "activation": "tanh", "l2": 0.0})
    session.advance(epochs=3)
    conversation = Conversation(session, None)
    (reply,) = conversation.handle({"type": "trace", "index": 7})
    net, x, y = session.network, session.X_train[7], session.y_train[7]
    first, second, out = reply["layers"]
    a1 = net.weights[0] @ x + net.biases[0]
    np.testing.assert_allclose(first["a"], a1, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(first["z"], np.tanh(a1), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(out["z"], net.forward(x[None])[0], rtol=1e-3)
    # δ^(1) = σ′(a^(1)) ∘ (W^(2))ᵀ δ^(2), with the numbers shown
    delta1 = np.array(first["slope"]) * (net.weights[1].T @ np.array(second["delta"]))
    np.testing.assert_allclose(first["delta"], delta1, rtol=2e-3, atol=1e-6)
    # the gradient shown is ∇ℓ for this single point, as the objective computes it
    _, g = dp.Objective(net).value_and_grad(x[None], np.array([y]))
    grad_w, grad_b = net.split(g)
    np.testing.assert_allclose(first["grad_w"], grad_w[0], rtol=2e-3, atol=1e-7)
    np.testing.assert_allclose(out["grad_b"], grad_b[2], rtol=2e-3, atol=1e-7)
    assert reply["loss"] == pytest.approx(dp.Objective(net).value(x[None], np.array([y])), 1e-4)


def test_export_gives_the_model_file_and_the_train_command(client, tmp_path):
    session = Session()
    session.advance(epochs=4)
    (reply,) = Conversation(session, tmp_path).handle({"type": "export"})
    path = tmp_path / reply["filename"]
    path.write_bytes(base64.b64decode(reply["model"]))
    loaded = dp.load(path)
    np.testing.assert_array_equal(loaded.params, session.network.params)
    assert reply["command"] == (
        "deltaprop train spiral --hidden 32,32 --activation relu --solver gd "
        "--learning-rate 0.3 --l2 0.0001 --epochs 4 --batch-size full --validation 0.2 --seed 0"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [reply["filename"]]  # nothing left over


# -- uploads -----------------------------------------------------------------------------
def test_uploaded_csv_trains_and_its_model_predicts_with_the_cli(client, tmp_path):
    response = upload(client)
    assert response.status_code == 200
    table = response.json()
    assert table["rows"] == 40 and [c["name"] for c in table["columns"]][-1] == "species"
    assert [c["numeric"] for c in table["columns"]] == [True, True, True, False]
    with opened(client) as (socket_, _):
        settings = {"dataset": "upload", "upload": table["token"], "target": "species"}
        settings["view"] = ["weight", "length"]
        replies = ask(socket_, {"type": "configure", "settings": settings}, "status")
        dataset, frame = replies[1], replies[2]
        assert dataset["classes"] == ["cat", "dog"] and dataset["features"] == [
            "length", "width", "weight",
        ]  # fmt: skip
        assert dataset["axes"] == ["weight", "length"] and frame["sizes"] == [3, 32, 32, 2]
        assert abs(np.mean(dataset["x"])) < 0.2  # standardised inputs
        frames = ask(socket_, {"type": "step"}, "status")
        assert frames[0]["records"][0]["accuracy"] >= 0
        export = ask(socket_, {"type": "export"}, "export")[-1]
        assert (
            "deltaprop train pets.csv --target species --task classification" in export["command"]
        )
    model, data = tmp_path / "pets.safetensors", tmp_path / "pets.csv"
    model.write_bytes(base64.b64decode(export["model"]))
    data.write_bytes(GOOD_CSV)
    pytest.importorskip("click")
    from deltaprop.cli import main

    assert main(["predict", str(model), str(data), "--out", str(tmp_path / "p.csv")]) == 0
    predictions = (tmp_path / "p.csv").read_text().split()
    assert len(predictions) == 41 and set(predictions[1:]) <= {"cat", "dog"}


def test_upload_with_missing_values_is_refused_on_use(client):
    body = GOOD_CSV.replace(b"\n3,", b"\n,", 1)
    token = upload(client, body).json()["token"]
    with opened(client) as (socket_, _):
        settings = {"dataset": "upload", "upload": token, "target": "species"}
        (reply,) = ask(socket_, {"type": "configure", "settings": settings}, "error")
        assert "pets.csv: column 'length', row 3" in reply["message"]
    assert "is missing" in reply["message"]


@pytest.mark.parametrize(
    "body, name, kind, status, words",
    [
        (b"just one line", "a.csv", "text/csv", 400, "no data rows"),
        (b"a,b\n" + b"1,2\n" * 5, "a.csv", "text/csv", 400, "at least 10 rows"),
        (
            b"a,b\n" + b"1,2\n" * 5 + b"1,2,3,4,5\n" * 6,
            "a.csv",
            "text/csv",
            400,
            "could not be read",
        ),
        (b"a,b\n" + b"x,y\n" * 20, "a.csv", "text/csv", 400, "no numeric column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00" * 10, "a.csv", "text/csv", 400, "not a text file"),
        (b"a,b\n\xff\xfe,1\n" * 12, "a.csv", "text/csv", 400, "not UTF-8"),
        (GOOD_CSV, "a.png", "image/png", 415, "not a CSV"),
        (GOOD_CSV, "a.exe", "text/csv", 415, "not a CSV"),
        (GOOD_CSV, "a.csv", "application/octet-stream", 415, "not a CSV"),
        (GOOD_CSV * 200, "a.csv", "text/csv", 413, "larger than"),
    ],
)
def test_bad_uploads_are_refused_with_a_message(client, body, name, kind, status, words):
    response = upload(client, body, name, kind)
    assert response.status_code == status
    assert words in response.json()["error"]


def test_upload_from_a_foreign_origin_is_refused(client):
    response = upload(client, origin="http://evil.example")
    assert response.status_code == 403


def test_serve_reports_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(dp.ConfigError, match="pass another --port"):
            serve("127.0.0.1", busy.getsockname()[1], open_browser=False)


def test_non_finite_numbers_reach_the_page_as_null():
    text = to_json({"type": "frame", "records": [{"loss": float("nan"), "val_loss": 1.5}]})
    assert json.loads(text) == {"type": "frame", "records": [{"loss": None, "val_loss": 1.5}]}
    assert "NaN" not in to_json({"metrics": {"objective": float("inf")}})


def test_the_playground_command_serves_the_page():
    pytest.importorskip("click")
    process = subprocess.Popen(
        [sys.executable, "-m", "deltaprop", "playground", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as response:
            assert "deltaprop playground" in response.read().decode()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def test_a_non_finite_objective_is_caught_too(monkeypatch):
    monkeypatch.setattr(session_module, "EXPLODE", float("inf"))  # only inf/NaN count
    session = Session()
    session.configure({"dataset": "plane", "learning_rate": 1e6, "hidden": [64, 64]})
    with pytest.raises(Diverged, match="became not finite") as diverged:
        for _ in range(200):
            session.advance(epochs=1)
    assert np.isfinite(session.network.params).all()
    assert all(np.isfinite(r["objective"]) for r in diverged.value.records)


def test_one_step_too_far_is_a_divergence_not_a_broken_network():
    # the step's record holds J at the parameters before it; the parameters after the
    # last step of a slice are checked too
    session = Session()
    session.configure({"learning_rate": 1e9, "activation": "identity", "hidden": [256] * 8})
    objective = dp.Objective(session.network, l2=session.settings.l2)
    before = objective.value(session.X_train, session.y_train)
    with pytest.raises(Diverged) as diverged:
        session.advance(epochs=1)
    assert "not finite" in str(diverged.value) and session.epoch == 0
    assert diverged.value.records == []  # epoch 1's record is J at θ_0, sent again next time
    assert objective.value(session.X_train, session.y_train) == before


def test_after_a_divergence_the_epoch_counts_only_the_steps_kept():
    session = Session()
    session.advance(epochs=1)
    session.configure({"learning_rate": 50})
    with pytest.raises(Diverged) as diverged:
        for _ in range(20):
            session.advance(epochs=1)
    kept = int(re.search(r"parameters \(epoch (\d+)\) were kept", str(diverged.value))[1])
    assert session.epoch == kept and all(r["epoch"] <= kept for r in diverged.value.records)
    session.configure({"learning_rate": 0.01})
    assert session.advance(epochs=1)[0]["epoch"] == kept + 1


def test_raising_lambda_while_training_is_no_divergence():
    session = Session()
    session.configure({"learning_rate": 0.001})
    session.advance(epochs=2)
    assert session.configure({"l2": 50}) == "live"
    records = session.advance(epochs=20)
    assert len(records) == 20 and records[-1]["objective"] < records[0]["objective"]


def test_a_view_change_that_fails_changes_nothing(client):
    rows = "\n".join(["p,q,r,t"] + [f"{i},{i * i % 7},{i % 5},{i % 3}" for i in range(40)])
    with opened(client) as (socket_, _):
        token = upload(client, rows.encode(), "t.csv").json()["token"]
        view = {"dataset": "upload", "upload": token, "target": "t", "view": ["p", "q"]}
        ask(socket_, {"type": "configure", "settings": view}, "settings")
        for _ in range(16):  # later uploads push this one out of the server's memory
            upload(client, rows.encode(), "t.csv")
        replies = ask(socket_, {"type": "configure", "settings": {"view": ["q", "r"]}}, "error")
        assert "upload it again" in replies[-1]["message"]
        replies = ask(socket_, {"type": "reset"}, "status")
        settings = next(r for r in replies if r["type"] == "settings")["settings"]
        axes = next(r for r in replies if r["type"] == "dataset")["axes"]
        assert settings["view"] == ["p", "q"] and axes == ["p", "q"]


def test_internal_errors_stop_play_and_say_so(client, monkeypatch):
    from deltaprop.playground import protocol

    def broken(c, m):
        raise RuntimeError("a bug")

    monkeypatch.setitem(protocol.HANDLERS, "command", broken)
    with opened(client) as (socket_, _):
        replies = ask(socket_, {"type": "command"}, "status")
        assert [r["type"] for r in replies] == ["error", "status"]
        assert "internal error" in replies[0]["message"] and not replies[1]["playing"]


@pytest.mark.parametrize("kind", ["text/tab-separated-values", "text/x-csv", "application/x-csv"])
def test_tab_separated_and_other_csv_types_are_accepted(client, kind):
    body = GOOD_CSV.replace(b",", b"\t")
    response = upload(client, body, "pets.tsv", kind)
    assert response.status_code == 200, response.text
    assert [c["name"] for c in response.json()["columns"]][:2] == ["length", "width"]


def test_the_command_says_when_its_points_differ_from_the_page():
    from deltaprop.playground.export import train_command

    session = Session()
    assert "#" not in train_command(session.settings, session.problem, 5)
    session.configure({"seed": 4})
    assert "drawn with seed 0" in train_command(session.settings, session.problem, 5)
