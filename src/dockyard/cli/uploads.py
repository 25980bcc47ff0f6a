"""Local paths in the CLI's options made readable by the server (client/local_data.py): read in
place by the local server, uploaded through the S3 API for one named by DOCKYARD_ENDPOINT_URL; a
path that does not exist is one error line."""

from __future__ import annotations

from dockyard.cli.errors import CliError
from dockyard.client import Client
from dockyard.client.local_data import server_code_uri, server_data_uri


def data_for_server(client: Client, uri: str, key_prefix: str, what: str) -> str:
    try:
        return server_data_uri(client, uri, key_prefix, what)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def code_for_server(client: Client, source_dir: str, key_prefix: str) -> str:
    try:
        return server_code_uri(client, source_dir, key_prefix)
    except ValueError as exc:
        raise CliError(str(exc)) from None
