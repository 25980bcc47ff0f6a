"""AWS JSON 1.1 on the wire: operation routing by X-Amz-Target and AWS-shaped error bodies."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from dockyard.contract.errors import HTTP_STATUS_BY_CODE, DockyardError

log = logging.getLogger(__name__)

JSON_11 = "application/x-amz-json-1.1"

Operation = Callable[[dict[str, Any]], dict[str, Any]]


def aws_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type=JSON_11,
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def aws_error(code: str, message: str, status: int | None = None) -> Response:
    """`{"__type", "message"}`, the body botocore parses into a ClientError."""
    return aws_response(
        {"__type": code, "message": message},
        status or HTTP_STATUS_BY_CODE.get(code, 400),
    )


def error_response(exc: Exception) -> Response:
    """The one mapping from exceptions to responses; nothing else reaches a client."""
    if isinstance(exc, DockyardError):
        return aws_error(exc.code, exc.message, exc.http_status)
    # Unexpected: log the traceback for the operator, tell the client only that it happened.
    log.error("internal error while serving a request", exc_info=exc)
    return aws_error("InternalFailure", "dockyard hit an internal error; see the server log", 500)
