"""The serving path as pure functions: request bytes and headers in, a ``Result`` out."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import codecs
from .errors import ServingError
from .handlers import Context, Handlers

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


@dataclass(frozen=True)
class Result:
    """An HTTP answer: status, body, its content type and any extra headers."""

    status: int
    body: bytes = b""
    content_type: str = TEXT
    headers: tuple[tuple[str, str], ...] = ()


def error(status: int, message: str) -> Result:
    return Result(status, message.encode() + b"\n", TEXT)


def _as_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    raise TypeError(
        f"the handler returned {type(body).__name__}; output_fn/transform_fn must return bytes "
        "or str, or a (body, content_type) tuple"
    )


def _status_of(exc: BaseException) -> int | None:
    """The status a handler asked for: ours, or any exception with a 4xx/5xx ``status_code``."""
    if isinstance(exc, ServingError):
        return exc.status
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) and 400 <= status <= 599 else None


def invoke(
    body: bytes,
    content_type: str | None,
    accept: str | None,
    handlers: Handlers,
    *,
    request_headers: Mapping[str, str] | None = None,
) -> Result:
    """Run one invocation through the user's handlers; never raises."""
    headers = dict(request_headers or {})
    context = Context(
        request_headers=headers, custom_attributes=headers.get(CUSTOM_ATTRIBUTES.lower())
    )
    mime, _ = codecs.parse_media_type(content_type)
    wanted = accept.strip() if accept and accept.strip() not in ("*/*", "") else None
    accept_value = wanted or handlers.default_accept
    try:
        data = codecs.body_for_handler(body, content_type)
        produced = handlers.transform_fn(handlers.model, data, mime, accept_value, context)
        if isinstance(produced, tuple) and len(produced) == 2:
            out, out_type = produced
        else:
            out, out_type = produced, None
        payload = _as_bytes(out)
        if not out_type:
            ranges = codecs.parse_accept(accept_value, handlers.default_accept)
            concrete = [r for r in ranges if not r.endswith("/*")]
            out_type = concrete[0] if concrete else handlers.default_accept
    except Exception as exc:
        status = _status_of(exc)
        if status is not None:
            message = exc.message if isinstance(exc, ServingError) else str(exc)
            return error(status, message)
        log.exception("the inference handler failed")
        return error(500, f"the inference handler failed: {type(exc).__name__}: {exc}")
    extra: tuple[tuple[str, str], ...] = ()
    if context.response_custom_attributes is not None:
        extra = ((CUSTOM_ATTRIBUTES, str(context.response_custom_attributes)),)
    return Result(200, payload, str(out_type), extra)


def ping(handlers: Handlers | None) -> Result:
    """Healthy (200, empty body) once the handlers are loaded."""
    return Result(200, b"", TEXT) if handlers is not None else error(503, "the model is loading")


def execution_parameters(handlers: Handlers, workers: int, max_payload_mb: int) -> Result:
    """Batch transform parameters: the user's execution_parameters_fn, or the defaults."""
    params: Mapping[str, Any] = {
        "MaxConcurrentTransforms": workers,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": max_payload_mb,
    }
    if handlers.execution_parameters_fn is not None:
        try:
            params = handlers.execution_parameters_fn()
            body = json.dumps(params).encode()
        except Exception as exc:
            log.exception("execution_parameters_fn failed")
            return error(500, f"execution_parameters_fn failed: {type(exc).__name__}: {exc}")
        return Result(200, body, codecs.JSON)
    return Result(200, json.dumps(params).encode(), codecs.JSON)
