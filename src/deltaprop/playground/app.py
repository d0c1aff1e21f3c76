"""The playground's web server: static page, CSV upload and one WebSocket per browser tab.

Safe by default: only local host names are served (no DNS rebinding), a request or
WebSocket from a foreign ``Origin`` is refused, uploads are size-limited and parsed in
memory, static files come only from the package's own folder, and no path from the client
is ever opened.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import tempfile
from collections import OrderedDict
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import DataError
from .data import Table, parse_csv
from .protocol import BadMessage, Conversation, parse, to_json
from .session import Session

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 5_000_000  # bytes
MAX_UPLOADS = 16  # kept in memory, oldest dropped first
SLICE_SECONDS = 0.05  # training time between two frames while playing (≈ 20 frames/s)
CSV_TYPES = {
    "text/csv", "text/plain", "text/tab-separated-values", "text/x-csv", "application/csv",
    "application/x-csv", "application/vnd.ms-excel", "",
}  # fmt: skip
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
log = logging.getLogger("deltaprop.playground")


def same_origin(conn: HTTPConnection) -> bool:
    """True without an Origin header (not a browser) or when it names this very server."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == conn.headers.get("host")


def create_app(hosts: list[str] | None = None, max_upload: int = MAX_UPLOAD) -> Starlette:
    """The ASGI app. ``hosts``: extra host names to serve besides the local ones."""
    uploads: OrderedDict[str, Table] = OrderedDict()
    private: dict[str, Path] = {}

    def folder() -> Path:
        """The private (0700) temp folder where model files are written before download."""
        if "dir" not in private:
            private["dir"] = Path(tempfile.mkdtemp(prefix="deltaprop-playground-"))
        return private["dir"]

    @asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            if "dir" in private:
                shutil.rmtree(private.pop("dir"), ignore_errors=True)

    async def index(request: Request):
        return FileResponse(STATIC / "index.html", headers=HEADERS)

    async def upload(request: Request):
        if not same_origin(request):
            return _refuse(403, "uploads are accepted only from this page")
        name = request.query_params.get("name", "upload.csv")[:200]
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in CSV_TYPES or not name.lower().endswith(CSV_SUFFIXES):
            return _refuse(415, f"{name} is not a CSV file; upload a .csv file of numbers")
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > max_upload:
            return _refuse(413, _too_big(name, max_upload))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_upload:
                return _refuse(413, _too_big(name, max_upload))
        try:
            table = await asyncio.to_thread(parse_csv, bytes(body), name, folder())
        except DataError as err:
            return _refuse(400, str(err))
        token = secrets.token_urlsafe(16)
        uploads[token] = table
        while len(uploads) > MAX_UPLOADS:
            uploads.popitem(last=False)
        return JSONResponse(table.describe(token), headers=HEADERS)

    async def socket(websocket: WebSocket):
        if not same_origin(websocket):
            await _deny(websocket)
            return
        await websocket.accept()
        await converse(websocket, Conversation(Session(uploads), folder()))

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/upload", upload, methods=["POST"]),
            WebSocketRoute("/ws", socket),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=LOCAL_HOSTS + (hosts or []))],
        lifespan=lifespan,
    )


async def _deny(websocket: WebSocket) -> None:
    """Refuse the handshake with 403 (a close before accepting where the server cannot)."""
    refusal = _refuse(403, "WebSockets are accepted only from this server's own page")
    try:
        await websocket.send_denial_response(refusal)
    except RuntimeError:
        await websocket.close(code=1008)


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=HEADERS)


def _too_big(name: str, limit: int) -> str:
    return f"{name} is larger than {limit / 1e6:g} MB; upload a smaller CSV file"


async def converse(websocket: WebSocket, conversation: Conversation) -> None:
    """Answer the page's messages in order; while playing, train a slice and send a frame
    between messages. Training runs in a worker thread so the server stays responsive."""
    inbox: asyncio.Queue = asyncio.Queue()
    reader = asyncio.create_task(_read(websocket, inbox))
    session = conversation.session
    try:
        await _send(websocket, await asyncio.to_thread(conversation.opening))
        while True:
            if session.playing and inbox.empty():
                replies = await asyncio.to_thread(_guarded, conversation, _advance, SLICE_SECONDS)
            else:
                text = await inbox.get()
                if text is None:
                    return
                replies = await asyncio.to_thread(_guarded, conversation, _parsed, text)
            await _send(websocket, replies)
    except WebSocketDisconnect:
        pass
    finally:
        reader.cancel()


def _parsed(conversation: Conversation, text) -> list[dict]:
    return conversation.handle(parse(text))


def _advance(conversation: Conversation, seconds: float) -> list[dict]:
    return conversation.advance(seconds)


def _guarded(conversation: Conversation, handler, argument) -> list[dict]:
    """The handler's replies; a malformed message or a bug becomes an ``error`` reply."""
    try:
        return handler(conversation, argument)
    except BadMessage as err:
        return [{"type": "error", "message": str(err)}]
    except Exception:  # a bug must not end the page's session
        log.exception("playground: message failed")
        conversation.session.playing = False  # and the page is told it stopped
        error = {"type": "error", "message": "internal error; the server log has the details"}
        return [error, conversation.status()]


async def _read(websocket: WebSocket, inbox: asyncio.Queue) -> None:
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            await inbox.put(text if isinstance(text, str) else b"")
    finally:
        await inbox.put(None)


async def _send(websocket: WebSocket, replies: list[dict]) -> None:
    for reply in replies:
        await websocket.send_text(to_json(reply))
