"""Servers the benchmarks run against on loopback: dockyard's API in a thread of this process,
and moto_server."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from common import free_port, wait_for_port
from dockyard.api.app import create_app
from dockyard.engine.core import Engine

VENV_BIN = Path(sys.executable).parent


@contextlib.contextmanager
def api_server(engine: Engine) -> Iterator[str]:
    """The real ASGI app on uvicorn in a thread of this process, as tests/conftest.py does."""
    port = engine.settings.port
    config = uvicorn.Config(
        create_app(engine, close_engine=False), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="bench-api", daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
