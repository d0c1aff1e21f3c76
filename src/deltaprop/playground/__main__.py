"""``python -m deltaprop.playground [--host H] [--port P] [--no-browser]``: the same as
``deltaprop playground``."""

import argparse
import sys

from ..errors import ConfigError
from . import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deltaprop playground", description="Train real networks live in the browser."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    args = parser.parse_args(argv)
    try:
        serve(args.host, args.port, open_browser=not args.no_browser)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the server took over the signal
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
