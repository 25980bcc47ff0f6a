"""The server process: open the engine, serve the app with uvicorn, record where it listens."""

from __future__ import annotations

import gc
import json
import logging
import os
import sys

import uvicorn

from dockyard.api.app import create_app
from dockyard.api.keys import (
    KeysError,
    check_bind,
    home_credentials_file,
    keys_configured,
    server_keys,
)
from dockyard.api.validation import service_model
from dockyard.contract.errors import MetadataUnavailable
from dockyard.engine.core import Engine
from dockyard.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Serve until interrupted. `server.json` under the home lets clients find this server.
    Raises KeysError, before anything starts, when the keys do not allow serving here, and
    MetadataUnavailable when the metadata database cannot be opened."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    check_bind(settings)
    keys = server_keys(settings)
    if keys_configured(settings):
        log.info("accepting requests signed by the keys of: %s", ", ".join(keys.users()))
    else:
        log.info(
            "accepting requests signed by the key pair in %s (`dockyard credentials` prints it)",
            home_credentials_file(settings),
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
    app = create_app(engine, keys=keys)
    for service in ("sagemaker", "sagemaker-runtime", "logs", "sts", "ecr"):
        service_model(service)  # loaded now, with the rest of what lives as long as the server
    # What the server holds from start to end (botocore's service models above all) is never
    # garbage: frozen out of the collector, a full collection no longer walks it. Unfrozen, one
    # full collection paused every request ~130 ms at 1,000 stored jobs (17 ms frozen), which
    # is the control plane's p99 at 200 req/s.
    gc.freeze()
    try:
        uvicorn.run(
            app,
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
    try:
        serve(Settings())
    except (KeysError, MetadataUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
