"""Failures the CLI reports itself: one `error: ...` line on stderr and exit 1, like API errors."""

from __future__ import annotations

from typing import IO, Any

import click
from botocore.exceptions import ClientError


class CliError(click.ClickException):
    """Something the user can act on, found by the CLI rather than by the server."""

    def show(self, file: IO[Any] | None = None) -> None:
        # Same look as the API errors main() prints, not click's "Error: ..." with usage.
        click.echo(f"error: {self.format_message()}", err=True)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


def is_not_found(exc: ClientError) -> bool:
    """SageMaker reports a missing resource as ValidationException "Could not find ..." (or
    "Requested resource not found." for jobs), not as ResourceNotFound."""
    message = error_message(exc)
    return error_code(exc) == "ValidationException" and (
        "Could not find" in message or "not found" in message
    )
