"""Serves the app in a process of its own, for tests that need several app instances at once
(rate limits shared through Redis). Usage: `python -m tests.security.serve_app '<overrides as
JSON>'`; prints the port it listens on (127.0.0.1), then serves until terminated."""

from __future__ import annotations

import json
import sys

from werkzeug.serving import make_server

from donations import create_app


def main() -> None:
    app = create_app("testing", json.loads(sys.argv[1]))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
