"""The server process: open the engine, serve the app with uvicorn, record where it listens."""

from __future__ import annotations

import json
import logging
import os

import uvicorn

from dockyard.api.app import create_app
from dockyard.engine.core import Engine
from dockyard.settings import Settings


def serve(settings: Settings) -> None:
    """Serve until interrupted. `server.json` under the home lets clients find this server."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    engine = Engine.open(settings)
    marker = settings.server_file
    record = {
        "pid": os.getpid(),
        "url": f"http://{settings.host}:{settings.port}",
        "home": str(settings.home),
    }
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(marker)
    try:
        uvicorn.run(
            create_app(engine),
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        try:
            if json.loads(marker.read_text()).get("pid") == os.getpid():
                marker.unlink()
        except (OSError, ValueError):
            pass


def main() -> None:
    serve(Settings())


if __name__ == "__main__":
    main()
