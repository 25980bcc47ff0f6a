"""`dockyard invoke`: one InvokeEndpoint call; the answer's bytes, and only them, on stdout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError

from dockyard.cli.errors import CliError, error_code
from dockyard.client import Client
from dockyard.settings import Settings


def read_body(value: str) -> bytes:
    """`@file` is the file's bytes, `-` is stdin's, anything else is the text itself."""
    if value == "-":
        return sys.stdin.buffer.read()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {path}: {exc.strerror}", param_hint="--body"
            ) from None
    return value.encode()


def model_error(exc: ClientError) -> CliError:
    """ModelError: the container answered non-2xx. Its own message is what helps; on one line,
    since a container may answer with several."""
    response: Any = exc.response  # ModelError adds members botocore types do not list
    status = response.get("OriginalStatusCode", "?")
    text = str(response.get("OriginalMessage") or response["Error"].get("Message", ""))
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return CliError(f"model error ({status}): {' | '.join(lines) or '(empty answer)'}")


@click.command()
@click.argument("name")
@click.option("--body", required=True, help="@FILE, - for stdin, or the text itself.")
@click.option("--content-type", help="MIME type of the body, e.g. text/csv.")
@click.option("--accept", help="MIME type wanted back.")
@click.option("--custom-attributes", help="X-Amzn-SageMaker-Custom-Attributes to pass on.")
@click.option("--target-variant", help="The production variant to send the request to.")
@click.option("--inference-id", help="An id to tag the request with.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the answer to this file instead of stdout.",
)
@click.option("--verbose", "-v", is_flag=True, help="Also print the answer's headers (to stderr).")
@click.pass_obj
def invoke(
    settings: Settings,
    name: str,
    body: str,
    content_type: str | None,
    accept: str | None,
    custom_attributes: str | None,
    target_variant: str | None,
    inference_id: str | None,
    output: Path | None,
    verbose: bool,
) -> None:
    """InvokeEndpoint on endpoint NAME; the answer goes to stdout (or --output)."""
    request: dict[str, Any] = {"EndpointName": name, "Body": read_body(body)}
    optional = {
        "ContentType": content_type,
        "Accept": accept,
        "CustomAttributes": custom_attributes,
        "TargetVariant": target_variant,
        "InferenceId": inference_id,
    }
    request.update({key: value for key, value in optional.items() if value is not None})
    try:
        response = Client(settings).runtime.invoke_endpoint(**request)
    except ClientError as exc:
        if error_code(exc) == "ModelError":
            raise model_error(exc) from None
        raise
    answer = response["Body"].read()
    if verbose:
        for key in ("InvokedProductionVariant", "ContentType", "CustomAttributes"):
            if response.get(key) is not None:
                click.echo(f"{key}: {response[key]}", err=True)
    if output is not None:
        output.write_bytes(answer)
        return
    sys.stdout.buffer.write(answer)
    sys.stdout.buffer.flush()
