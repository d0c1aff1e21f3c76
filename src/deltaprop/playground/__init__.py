"""``deltaprop playground``: a local web page that trains real deltaprop networks live.

Needs the ``playground`` extra (Starlette and uvicorn): ``pip install 'deltaprop[playground]'``.
"""

from __future__ import annotations

import socket
import threading
import time
import webbrowser

from ..errors import ConfigError

__all__ = ["create_app", "serve"]

WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def create_app(*args, **kwargs):
    """The playground's ASGI app (see ``deltaprop.playground.app.create_app``)."""
    from .app import create_app

    return create_app(*args, **kwargs)


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True) -> None:
    """Serve the playground on ``host:port`` until Ctrl-C; open it in the browser if asked.

    Binds to the loopback address by default; any other host serves the page (and its
    training sessions) to whoever can reach that address.
    """
    try:
        import uvicorn
    except ImportError:
        raise ConfigError(
            "the playground needs Starlette and uvicorn; pip install 'deltaprop[playground]'"
        ) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({err.strerror}); pass another --port or --host"
        ) from None
    sock.listen(128)  # connections wait in the backlog until uvicorn serves them
    port = sock.getsockname()[1]
    extra = ["*"] if host in WILDCARD_HOSTS else [host]
    app = create_app(hosts=extra)
    config = uvicorn.Config(app, log_level="warning", ws_max_size=1 << 20)
    server = uvicorn.Server(config)
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"
    print(f"deltaprop playground: {url}  (Ctrl-C to stop)", flush=True)
    if open_browser:
        threading.Thread(target=_open_when_ready, args=(server, url), daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C is how the server is meant to stop
        pass
    print("deltaprop playground: stopped", flush=True)


def _open_when_ready(server, url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    webbrowser.open(url)
