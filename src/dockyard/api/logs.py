"""The CloudWatch Logs subset over SageMaker's log groups: DescribeLogGroups,
DescribeLogStreams, GetLogEvents and FilterLogEvents."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from dockyard.api.protocol import Operation
from dockyard.contract import names
from dockyard.contract.errors import DockyardError, ValidationError
from dockyard.contract.shapes import WireShape
from dockyard.engine import log_filters
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


class GroupRequest(LogsShape):
    """The group by name or by identifier (its name or ARN), as the newer API allows."""

    log_group_name: str | None = None
    log_group_identifier: str | None = None

    def group(self) -> str:
        if (self.log_group_name is None) == (self.log_group_identifier is None):
            raise InvalidParameterException(
                "Give exactly one of logGroupName and logGroupIdentifier"
            )
        if self.log_group_name is not None:
            return self.log_group_name
        identifier = str(self.log_group_identifier)
        if identifier.startswith("arn:"):
            # arn:aws:logs:<region>:<account>:log-group:<name>[:*]
            return identifier.split(":log-group:", 1)[-1].removesuffix(":*")
        return identifier


class DescribeLogGroupsRequest(LogsShape):
    log_group_name_prefix: str = ""
    log_group_name_pattern: str | None = None
    next_token: str | None = None
    limit: Annotated[int, Field(ge=1, le=50)] = 50


class DescribeLogStreamsRequest(GroupRequest):
    log_stream_name_prefix: str = ""
    order_by: str = "LogStreamName"
    descending: bool = False
    next_token: str | None = None
    limit: Annotated[int, Field(ge=1, le=50)] = 50


class GetLogEventsRequest(GroupRequest):
    log_stream_name: str
    start_time: int | None = None
    end_time: int | None = None
    next_token: str | None = None
    limit: Annotated[int, Field(ge=1, le=10000)] = 10000
    start_from_head: bool = False


class FilterLogEventsRequest(GroupRequest):
    log_stream_names: list[str] | None = None
    log_stream_name_prefix: str = ""
    start_time: int | None = None
    end_time: int | None = None
    filter_pattern: str | None = None
    next_token: str | None = None
    limit: Annotated[int, Field(ge=1, le=10000)] = 10000


class ResourceNotFoundException(DockyardError):
    code = "ResourceNotFoundException"


class InvalidParameterException(DockyardError):
    code = "InvalidParameterException"


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
    settings = engine.settings

    def group_arn(name: str) -> str:
        return f"arn:aws:logs:{settings.region}:{settings.account_id}:log-group:{name}"

    def describe_log_groups(body: dict[str, Any]) -> dict[str, Any]:
        """The two job groups always exist; an endpoint's from its first line on."""
        request = DescribeLogGroupsRequest.from_wire(body)
        if request.log_group_name_prefix and request.log_group_name_pattern is not None:
            raise InvalidParameterException(
                "logGroupNamePrefix and logGroupNamePattern are mutually exclusive"
            )
        # name -> (creation time, stored bytes)
        found = {
            group.name: (group.creation_time, group.stored_bytes)
            for group in metadata.log_groups(request.log_group_name_prefix)
        }
        for name in KNOWN_GROUPS:
            if name.startswith(request.log_group_name_prefix):
                found.setdefault(name, (0, 0))
        groups = sorted(found.items())
        if request.log_group_name_pattern:
            # Case-insensitive substring, as CloudWatch matches logGroupNamePattern.
            wanted = request.log_group_name_pattern.lower()
            groups = [group for group in groups if wanted in group[0].lower()]
        start = _offset(request.next_token)
        page = groups[start : start + request.limit]
        out: dict[str, Any] = {
            "logGroups": [
                {
                    "logGroupName": name,
                    "creationTime": creation_time,
                    "metricFilterCount": 0,
                    "storedBytes": stored_bytes,
                    "arn": group_arn(name) + ":*",
                    "logGroupArn": group_arn(name),
                    "logGroupClass": "STANDARD",
                }
                for name, (creation_time, stored_bytes) in page
            ]
        }
        if start + request.limit < len(groups):
            out["nextToken"] = str(start + request.limit)
        return out

    def describe_log_streams(body: dict[str, Any]) -> dict[str, Any]:
        request = DescribeLogStreamsRequest.from_wire(body)
        group = request.group()
        _check_group(group)
        if request.order_by == "LastEventTime" and request.log_stream_name_prefix:
            raise InvalidParameterException(
                "Cannot order by LastEventTime with a logStreamNamePrefix."
            )
        streams = metadata.log_streams(group, request.log_stream_name_prefix)
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
                    "arn": f"{group_arn(group)}:log-stream:{s.name}",
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
        group = request.group()
        _check_group(group)
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
            group,
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

    def filter_log_events(body: dict[str, Any]) -> dict[str, Any]:
        """Events across the group's streams in time order. The pattern's required terms narrow
        the query; the exact, case-sensitive match is checked here, so a page may hold fewer
        than `limit` events and still have a nextToken (as CloudWatch's pages may)."""
        request = FilterLogEventsRequest.from_wire(body)
        group = request.group()
        _check_group(group)
        if request.log_stream_names is not None and request.log_stream_name_prefix:
            raise InvalidParameterException(
                "logStreamNames and logStreamNamePrefix are mutually exclusive"
            )
        pattern = log_filters.parse(request.filter_pattern)
        scanned = metadata.filter_log_events(
            group,
            streams=request.log_stream_names,
            stream_prefix=request.log_stream_name_prefix,
            start_time=request.start_time,
            end_time=request.end_time,
            contains=pattern.required,
            after=_filter_token(request.next_token),
            limit=request.limit,
        )
        out: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": e.stream,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion_time,
                    "eventId": f"{e.timestamp}-{e.sequence}",
                }
                for e in scanned
                if pattern.matches(e.message)
            ]
        }
        if len(scanned) == request.limit:
            out["nextToken"] = f"{scanned[-1].timestamp}/{scanned[-1].sequence}"
        return out

    return {
        "DescribeLogGroups": describe_log_groups,
        "DescribeLogStreams": describe_log_streams,
        "GetLogEvents": get_log_events,
        "FilterLogEvents": filter_log_events,
    }


def _filter_token(token: str | None) -> tuple[int, int] | None:
    """FilterLogEvents' tokens: `<timestamp>/<event id>` of the last event scanned."""
    if not token:
        return None
    timestamp, _, sequence = token.partition("/")
    return _token_number(timestamp, signed=True), _token_number(sequence)
