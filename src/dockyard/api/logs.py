"""The CloudWatch Logs subset the SageMaker SDK reads: DescribeLogStreams and GetLogEvents."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from dockyard.api.protocol import Operation
from dockyard.contract import names
from dockyard.contract.errors import DockyardError, ValidationError
from dockyard.contract.shapes import WireShape
from dockyard.engine.core import Engine
from dockyard.engine.endpoints import LOG_GROUP as ENDPOINT_LOG_GROUP
from dockyard.engine.logs import TRAINING_LOG_GROUP
from dockyard.engine.transform_jobs import LOG_GROUP as TRANSFORM_LOG_GROUP

KNOWN_GROUPS = (TRAINING_LOG_GROUP, TRANSFORM_LOG_GROUP)


class LogsShape(WireShape):
    # CloudWatch Logs members are camelCase, unlike SageMaker's PascalCase.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class DescribeLogStreamsRequest(LogsShape):
    log_group_name: str
    log_stream_name_prefix: str = ""
    order_by: str = "LogStreamName"
    descending: bool = False
    next_token: str | None = None
    limit: Annotated[int, Field(ge=1, le=50)] = 50


class GetLogEventsRequest(LogsShape):
    log_group_name: str
    log_stream_name: str
    start_time: int | None = None
    end_time: int | None = None
    next_token: str | None = None
    limit: Annotated[int, Field(ge=1, le=10000)] = 10000
    start_from_head: bool = False


class ResourceNotFoundException(DockyardError):
    code = "ResourceNotFoundException"


def _check_group(name: str) -> None:
    # Each endpoint has its own group, as in SageMaker; it outlives the endpoint.
    endpoint = name.removeprefix(ENDPOINT_LOG_GROUP + "/")
    if endpoint != name and names.JOB_NAME.fullmatch(endpoint):
        return
    if name not in KNOWN_GROUPS:
        raise ResourceNotFoundException("The specified log group does not exist.")


# Tokens carry numbers that go into SQL: beyond 64 bits they are not ours (and would overflow).
_MAX_TOKEN_NUMBER = 2**63 - 1


def _token_number(text: str, *, signed: bool = False) -> int:
    digits = text[1:] if signed and text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise ValidationError("The specified nextToken is invalid.")
    number = int(text)
    if abs(number) > _MAX_TOKEN_NUMBER:
        raise ValidationError("The specified nextToken is invalid.")
    return number


def _offset(token: str | None) -> int:
    return _token_number(token) if token else 0


def operations(engine: Engine) -> dict[str, Operation]:
    metadata = engine.metadata

    def describe_log_streams(body: dict[str, Any]) -> dict[str, Any]:
        request = DescribeLogStreamsRequest.from_wire(body)
        _check_group(request.log_group_name)
        streams = metadata.log_streams(request.log_group_name, request.log_stream_name_prefix)
        if request.order_by == "LastEventTime":
            streams.sort(key=lambda s: s.last_event)
        if request.descending:
            streams.reverse()
        start = _offset(request.next_token)
        page = streams[start : start + request.limit]
        out: dict[str, Any] = {
            "logStreams": [
                {
                    "logStreamName": s.name,
                    "creationTime": s.first_event,
                    "firstEventTimestamp": s.first_event,
                    "lastEventTimestamp": s.last_event,
                    "lastIngestionTime": s.last_ingestion,
                    "storedBytes": s.stored_bytes,
                    "arn": f"arn:aws:logs:{engine.settings.region}:{engine.settings.account_id}:"
                    f"log-group:{request.log_group_name}:log-stream:{s.name}",
                }
                for s in page
            ]
        }
        if start + request.limit < len(streams):
            out["nextToken"] = str(start + request.limit)
        return out

    def get_log_events(body: dict[str, Any]) -> dict[str, Any]:
        """Tokens are `f/<id>` and `b/<id>` around the page; like CloudWatch, a forward token
        comes back unchanged when there is nothing new, which is how readers know to wait."""
        request = GetLogEventsRequest.from_wire(body)
        _check_group(request.log_group_name)
        after = before = None
        from_head = request.start_from_head
        if request.next_token:
            kind, _, value = request.next_token.partition("/")
            if kind not in ("f", "b"):
                raise ValidationError("The specified nextToken is invalid.")
            if kind == "f":
                after, from_head = _token_number(value, signed=True), True
            else:
                before, from_head = _token_number(value, signed=True), False
        events = metadata.log_events(
            request.log_group_name,
            request.log_stream_name,
            after=after,
            before=before,
            start_time=request.start_time,
            end_time=request.end_time,
            limit=request.limit,
            from_head=from_head,
        )
        if events:
            forward, backward = events[-1].sequence, events[0].sequence
        else:
            forward = after if after is not None else (before - 1 if before is not None else 0)
            backward = before if before is not None else forward + 1
        return {
            "events": [
                {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}
                for e in events
            ],
            "nextForwardToken": f"f/{forward}",
            "nextBackwardToken": f"b/{backward}",
        }

    return {"DescribeLogStreams": describe_log_streams, "GetLogEvents": get_log_events}
