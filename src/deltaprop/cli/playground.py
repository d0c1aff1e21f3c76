"""``deltaprop playground``: the local web page that trains real networks live."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--no-browser", is_flag=True, help="do not open the page in a browser")
def playground(host: str, port: int, no_browser: bool) -> None:
    """Open the playground: train networks live in the browser (Ctrl-C stops the server)."""
    from ..playground import serve  # imported here: the server needs the [playground] extra

    serve(host, port, open_browser=not no_browser)
