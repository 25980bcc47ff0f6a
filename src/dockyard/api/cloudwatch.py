"""The CloudWatch API subset (GetMetricStatistics, GetMetricData, ListMetrics) over the
training and endpoint metrics dockyard records; reached by requests signed for `monitoring`,
in any of CloudWatch's three protocols (cloudwatch_wire.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from dockyard.api import cloudwatch_wire as wire
from dockyard.api.limits import read_body
from dockyard.api.sigv4 import AuthError, RequestHead
from dockyard.api.validation import Problem, check_structure, raise_for
from dockyard.contract.errors import (
    CloudWatchError,
    DockyardError,
    SerializationError,
    ValidationError,
)
from dockyard.engine.core import Engine
from dockyard.engine.metric_queries import (
    MAX_METRIC_DATA_DATAPOINTS,
    Datapoint,
    DataQuery,
    Metric,
    MetricQueries,
    request_fingerprint,
)

log = logging.getLogger(__name__)

Operation = Callable[[dict[str, Any]], dict[str, Any]]
RECENTLY_ACTIVE = {"PT3H": 3 * 3600.0}  # ListMetrics' RecentlyActive, in seconds
MAX_QUERIES = 500  # GetMetricData's limit of MetricDataQueries a request


class CloudWatchApp:
    """Answers the requests the signature layer routed here (credential scope `monitoring`)."""

    def __init__(self, engine: Engine) -> None:
        self.max_bytes = engine.settings.max_request_bytes
        self.max_json_depth = engine.settings.max_json_depth
        self.operations = operations(MetricQueries(engine.metadata, engine.endpoint_metrics))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        protocol = wire.wire_of(scope["path"], request.headers.get)
        response = await self._answer(request, protocol)
        await response(scope, receive, send)

    async def _answer(self, request: Request, protocol: wire.Wire) -> Response:
        try:
            body = await read_body(request, self.max_bytes)
            form = wire.query_form(request.url.query, body) if protocol is wire.Wire.QUERY else {}
            name = wire.operation_name(protocol, request.url.path, request.headers.get, form)
            operation = self.operations.get(name)
            if operation is None:
                code = (
                    "InvalidAction" if protocol is wire.Wire.QUERY else "UnknownOperationException"
                )
                return wire.error(
                    protocol,
                    code,
                    f"{name[:64]!r} is not a CloudWatch operation dockyard serves: it serves "
                    f"{', '.join(sorted(self.operations))}",
                    400,
                )
            model = wire.model().operation_model(name)
            try:
                params = wire.read_request(protocol, model, body, form, self.max_json_depth)
            except SerializationError as exc:
                if protocol is not wire.Wire.QUERY:
                    raise  # a body that is not CBOR or JSON at all
                # A form value of the wrong type is a bad parameter value to a query API.
                raise CloudWatchError("InvalidParameterValue", exc.message) from None
            result = await run_in_threadpool(_checked, name, operation, params)
            return wire.answer(protocol, model, result)
        except AuthError:
            raise  # the signature layer answers it
        except DockyardError as exc:  # CloudWatch's own codes, and dockyard's (a body too large)
            return wire.error(protocol, exc.code, exc.message, exc.http_status)
        except Exception:
            log.exception("internal error while serving a CloudWatch request")
            return wire.error(
                protocol,
                "InternalServiceError",
                "dockyard hit an internal error; see the server log",
                500,
            )


# The query protocol's names of the signature refusals (the codes AWS's query services use);
# the JSON and CBOR forms keep the JSON services' names, as every other JSON API here.
_QUERY_AUTH_CODES = {
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "IncompleteSignatureException": "IncompleteSignature",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
}


def refusal(
    head: RequestHead,
) -> Callable[[AuthError], tuple[int, list[tuple[bytes, bytes]], bytes]]:
    """A signature refusal in the form of the protocol the request speaks."""
    protocol = wire.wire_of(head.path, head.header)

    def refuse(error: AuthError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        code = error.code
        if protocol is wire.Wire.QUERY:
            code = _QUERY_AUTH_CODES.get(code, code)
        return wire.error_parts(protocol, code, error.message, error.http_status)

    return refuse


def _checked(name: str, operation: Operation, params: dict[str, Any]) -> dict[str, Any]:
    """Checked against botocore's model first, refused with CloudWatch's codes."""
    shape = wire.model().operation_model(name).input_shape
    problems: list[Problem] = []
    if shape is not None:
        check_structure(shape, params, "", problems)
    try:
        raise_for(problems)
    except (SerializationError, ValidationError) as exc:
        missing = all(p.constraint == "Member must not be null" for p in problems)
        raise CloudWatchError(
            "MissingParameter" if missing else "InvalidParameterValue", exc.message
        ) from None
    return operation(params)


def operations(queries: MetricQueries) -> dict[str, Operation]:
    def get_metric_statistics(params: dict[str, Any]) -> dict[str, Any]:
        statistics = params.get("Statistics") or []
        extended = params.get("ExtendedStatistics") or []
        if not statistics and not extended:
            raise CloudWatchError(
                "MissingParameter",
                "The parameter Statistics or ExtendedStatistics must be specified.",
            )
        if statistics and extended:
            raise CloudWatchError(
                "InvalidParameterCombination",
                "The parameters Statistics and ExtendedStatistics are mutually exclusive: "
                "send one of them.",
            )
        metric = Metric.of(params["Namespace"], params["MetricName"], _dimensions(params))
        datapoints = queries.statistics(
            metric,
            params["StartTime"],
            params["EndTime"],
            params["Period"],
            [*statistics, *extended],
            params.get("Unit"),
        )
        return {
            "Label": metric.metric_name,
            "Datapoints": [_datapoint(d, extended) for d in datapoints],
        }

    def get_metric_data(params: dict[str, Any]) -> dict[str, Any]:
        queries_in = params["MetricDataQueries"]
        if not queries_in:
            raise CloudWatchError(
                "MissingParameter", "The parameter MetricDataQueries must hold at least one query."
            )
        if len(queries_in) > MAX_QUERIES:
            raise CloudWatchError(
                "InvalidParameterValue",
                f"The collection MetricDataQueries must not have a size greater than "
                f"{MAX_QUERIES}; it has {len(queries_in)}: split the request",
            )
        asked = [_data_query(q, i) for i, q in enumerate(queries_in, 1)]
        ids = [q.id for q in asked]
        if len(set(ids)) < len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise CloudWatchError(
                "InvalidParameterValue",
                f"The Id of each MetricDataQuery must be unique; sent more than once: {twice}",
            )
        results, token = queries.metric_data(
            asked,
            params["StartTime"],
            params["EndTime"],
            descending=params.get("ScanBy", "TimestampDescending") == "TimestampDescending",
            max_datapoints=params.get("MaxDatapoints", MAX_METRIC_DATA_DATAPOINTS),
            next_token=params.get("NextToken"),
            fingerprint=request_fingerprint(params),
        )
        answer: dict[str, Any] = {
            "MetricDataResults": [
                {
                    "Id": r.id,
                    "Label": r.label,
                    "Timestamps": r.timestamps,
                    "Values": r.values,
                    "StatusCode": "Complete" if r.complete else "PartialData",
                }
                for r in results
            ],
            "Messages": [],
        }
        if token is not None:
            answer["NextToken"] = token
        return answer

    def list_metrics(params: dict[str, Any]) -> dict[str, Any]:
        active = params.get("RecentlyActive")
        now = time.time()
        metrics, token = queries.list_metrics(
            params.get("Namespace"),
            params.get("MetricName"),
            [(f["Name"], f.get("Value")) for f in params.get("Dimensions") or []],
            params.get("NextToken"),
            request_fingerprint(params),
            active_between=(now - RECENTLY_ACTIVE[active], now) if active else None,
        )
        answer: dict[str, Any] = {"Metrics": [_metric(m) for m in metrics]}
        if token is not None:
            answer["NextToken"] = token
        return answer

    return {
        "GetMetricStatistics": get_metric_statistics,
        "GetMetricData": get_metric_data,
        "ListMetrics": list_metrics,
    }


def _dimensions(params: Mapping[str, Any], where: str = "Dimensions") -> dict[str, str]:
    dimensions: dict[str, str] = {}
    for d in params.get("Dimensions") or []:
        if d["Name"] in dimensions:
            raise CloudWatchError(
                "InvalidParameterValue",
                f"The dimension {d['Name'][:64]!r} appears twice in {where}: a metric has each "
                "dimension once",
            )
        dimensions[d["Name"]] = d["Value"]
    return dimensions


def _data_query(query: Mapping[str, Any], index: int) -> DataQuery:
    where = f"MetricDataQueries.member.{index}"
    if query.get("Expression") is not None:
        raise CloudWatchError(
            "InvalidParameterValue",
            f"{where} has an Expression: dockyard does not evaluate metric math or search "
            "expressions; ask for each metric with a MetricStat and compute on the results",
        )
    stat = query.get("MetricStat")
    if stat is None:
        raise CloudWatchError(
            "MissingParameter", f"{where} needs a MetricStat (or, on AWS, an Expression)."
        )
    metric = stat["Metric"]
    if "Namespace" not in metric or "MetricName" not in metric:
        raise CloudWatchError(
            "MissingParameter", f"{where}.MetricStat.Metric needs a Namespace and a MetricName."
        )
    query_id = query["Id"]
    if not (query_id[:1].islower() and query_id.replace("_", "a").isalnum() and query_id.isascii()):
        raise CloudWatchError(
            "InvalidParameterValue",
            f"The value {query_id[:64]!r} for parameter {where}.Id must start with a lower-case "
            "letter and hold only letters, digits and underscores.",
        )
    return DataQuery(
        id=query_id,
        metric=Metric.of(metric["Namespace"], metric["MetricName"], _dimensions(metric, where)),
        period=stat["Period"],
        stat=stat["Stat"],
        unit=stat.get("Unit"),
        label=query.get("Label"),
        return_data=query.get("ReturnData", True),
    )


def _datapoint(point: Datapoint, extended: list[str]) -> dict[str, Any]:
    shown: dict[str, Any] = {"Timestamp": point.timestamp, "Unit": point.unit}
    for name, value in point.statistics.items():
        if name in extended:
            shown.setdefault("ExtendedStatistics", {})[name] = value
        else:
            shown[name] = value
    return shown


def _metric(metric: Metric) -> dict[str, Any]:
    return {
        "Namespace": metric.namespace,
        "MetricName": metric.metric_name,
        "Dimensions": [{"Name": n, "Value": v} for n, v in metric.dimensions],
    }
