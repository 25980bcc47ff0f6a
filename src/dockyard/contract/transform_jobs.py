"""Batch transform jobs on the wire: request shapes, statuses, and the effective-parameter rule."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from dockyard.contract import names
from dockyard.contract.errors import InvalidTransition, ValidationError
from dockyard.contract.instance_types import instance_type
from dockyard.contract.models import ModelName
from dockyard.contract.shapes import ListShape, Timestamp, WireShape
from dockyard.contract.training_jobs import JobName, Tag

BatchStrategy = Literal["SingleRecord", "MultiRecord"]
SplitType = Literal["None", "Line", "RecordIO", "TFRecord"]

MIB = 1024 * 1024
MAX_PAYLOAD_IN_MB = 100
# Used when neither the request nor the container's /execution-parameters says otherwise (the
# service's own default strategy is unconfirmed; SageMaker local mode uses MultiRecord).
DEFAULT_BATCH_STRATEGY: BatchStrategy = "MultiRecord"
DEFAULT_MAX_PAYLOAD_IN_MB = 6
DEFAULT_MAX_CONCURRENT_TRANSFORMS = 1


class TransformJobStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


_T = TransformJobStatus
TERMINAL_STATUSES = frozenset({_T.COMPLETED, _T.FAILED, _T.STOPPED})
# A stop ends Stopped, or Failed if stopping itself goes wrong. A job that reached Stopping never
# reports Completed, even if its last object finished meanwhile: the user asked it to stop.
TRANSFORM_TRANSITIONS: dict[TransformJobStatus, frozenset[TransformJobStatus]] = {
    _T.IN_PROGRESS: frozenset({_T.COMPLETED, _T.FAILED, _T.STOPPING}),
    _T.STOPPING: frozenset({_T.STOPPED, _T.FAILED}),
    _T.COMPLETED: frozenset(),
    _T.FAILED: frozenset(),
    _T.STOPPED: frozenset(),
}
assert set(TRANSFORM_TRANSITIONS) == set(TransformJobStatus)


def check_transform_transition(current: TransformJobStatus, target: TransformJobStatus) -> None:
    if target not in TRANSFORM_TRANSITIONS[current]:
        raise InvalidTransition(f"a transform job cannot go from {current} to {target}")


# ---------------------------------------------------------------------------------------------
# Request shapes


def _input_uri(value: str) -> str:
    # As for training channels, dockyard also reads file:// URIs and absolute local paths.
    if value.startswith(("s3://", "file://", "/")) or names.S3_URI.match(value):
        return value
    raise ValueError("Member must be an s3:// URI, a file:// URI or an absolute local path")


class TransformS3DataSource(WireShape):
    s3_data_type: Literal["S3Prefix", "ManifestFile", "AugmentedManifestFile"]
    s3_uri: Annotated[str, Field(max_length=1024)]

    @field_validator("s3_uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        return _input_uri(value)

    @field_validator("s3_data_type")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value == "AugmentedManifestFile":
            raise ValueError(
                "Member S3DataType AugmentedManifestFile is not supported by dockyard; put the "
                "records in JSON Lines objects under an S3Prefix (or list the objects in a "
                "ManifestFile) and pick attributes with DataProcessing.InputFilter"
            )
        return value


class TransformDataSource(WireShape):
    s3_data_source: TransformS3DataSource


class TransformInput(WireShape):
    data_source: TransformDataSource
    content_type: Annotated[str, Field(max_length=256)] | None = None
    compression_type: Literal["None", "Gzip"] = "None"
    split_type: SplitType = "None"

    @field_validator("split_type")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value == "TFRecord":
            raise ValueError(
                "Member SplitType TFRecord is not supported by dockyard; use SplitType RecordIO "
                "(MXNet RecordIO framing) or Line, or SplitType None to send each object whole "
                "and let the container read the TFRecord file itself"
            )
        return value

    @property
    def s3(self) -> TransformS3DataSource:
        return self.data_source.s3_data_source


class TransformOutput(WireShape):
    s3_output_path: Annotated[str, Field(max_length=1024)]
    accept: Annotated[str, Field(max_length=256)] | None = None
    assemble_with: Literal["None", "Line"] = "None"
    kms_key_id: Annotated[str, Field(max_length=2048)] | None = None

    @field_validator("s3_output_path")
    @classmethod
    def _uri(cls, value: str) -> str:
        # As for the inputs (and training's output), a local folder works too.
        return _input_uri(value)


class TransformResources(WireShape):
    instance_type: str
    instance_count: Annotated[int, Field(ge=1)]
    volume_kms_key_id: Annotated[str, Field(max_length=2048)] | None = None

    @field_validator("instance_type")
    @classmethod
    def _known(cls, value: str) -> str:
        try:
            instance_type(value)
        except ValidationError as exc:
            raise ValueError(exc.message) from None
        return value


class ModelClientConfig(WireShape):
    invocations_timeout_in_seconds: Annotated[int, Field(ge=1, le=3600)] = 600
    invocations_max_retries: Annotated[int, Field(ge=0, le=3)] = 3


JsonPathText = Annotated[str, Field(max_length=63)]


class DataProcessing(WireShape):
    """The filters' syntax and the content types they apply to are checked by
    `engine.data_processing.check_data_processing`, which owns the JSONPath parser."""

    input_filter: JsonPathText = "$"
    output_filter: JsonPathText = "$"
    join_source: Literal["None", "Input"] = "None"


TransformEnvironment = Annotated[
    dict[
        Annotated[str, Field(max_length=1024, pattern=names.ENV_KEY.pattern)],
        Annotated[str, Field(max_length=10240)],
    ],
    Field(max_length=16),
]


class CreateTransformJobRequest(WireShape):
    transform_job_name: JobName
    model_name: ModelName
    transform_input: TransformInput
    transform_output: TransformOutput
    transform_resources: TransformResources
    # 0 and unset both mean "ask the container's /execution-parameters".
    max_concurrent_transforms: Annotated[int, Field(ge=0)] | None = None
    # 0 means unlimited; unset means "ask the container".
    max_payload_in_mb: Annotated[
        Annotated[int, Field(ge=0, le=MAX_PAYLOAD_IN_MB)] | None, Field(alias="MaxPayloadInMB")
    ] = None
    batch_strategy: BatchStrategy | None = None
    model_client_config: ModelClientConfig | None = None
    environment: TransformEnvironment = {}
    data_processing: DataProcessing | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = []
    # Accepted and kept so Describe can echo them; dockyard captures no data and tracks no
    # experiments.
    experiment_config: dict[str, Any] | None = None
    data_capture_config: dict[str, Any] | None = None

    # BatchStrategy MultiRecord with SplitType None is accepted on purpose: each object is one
    # record, so both strategies send the same requests. The developer guide says a strategy
    # needs a SplitType to take effect, not that the request fails, and notebooks often pass
    # strategy="MultiRecord" alone; refusing them would be a surprise. `notes` says it instead.

    @field_validator("max_payload_in_mb")
    @classmethod
    def _payload_budget(cls, payload: int | None, info: ValidationInfo) -> int | None:
        # A field check (MaxConcurrentTransforms is declared first) so the error names a member.
        concurrent = info.data.get("max_concurrent_transforms")
        if concurrent and payload and concurrent * payload > MAX_PAYLOAD_IN_MB:
            raise ValueError(
                f"Member MaxConcurrentTransforms x MaxPayloadInMB must be at most "
                f"{MAX_PAYLOAD_IN_MB} ({concurrent} x {payload} = {concurrent * payload}); "
                "lower one of them"
            )
        return payload

    @property
    def invocations_timeout_seconds(self) -> int:
        return (self.model_client_config or ModelClientConfig()).invocations_timeout_in_seconds

    @property
    def invocations_max_retries(self) -> int:
        return (self.model_client_config or ModelClientConfig()).invocations_max_retries


def notes(request: CreateTransformJobRequest) -> list[str]:
    """Settings that are accepted but change nothing, in words for the job's log."""
    found = []
    if request.batch_strategy == "MultiRecord" and request.transform_input.split_type == "None":
        found.append(
            "BatchStrategy MultiRecord with SplitType None: each object is one record, so every "
            "request carries one whole object; set SplitType Line or RecordIO to batch records"
        )
    if request.data_capture_config is not None:
        found.append("DataCaptureConfig is ignored: dockyard does not capture batch data")
    if request.experiment_config is not None:
        found.append("ExperimentConfig is ignored: dockyard does not track experiments")
    if request.transform_output.kms_key_id or request.transform_resources.volume_kms_key_id:
        found.append("KMS keys are ignored: dockyard does not encrypt outputs or volumes")
    return found


class TransformJobNameRequest(WireShape):
    transform_job_name: JobName


class ListTransformJobsRequest(ListShape):
    last_modified_time_after: float | None = None
    last_modified_time_before: float | None = None
    status_equals: TransformJobStatus | None = None
    sort_by: Literal["Name", "CreationTime", "Status"] = "CreationTime"
    # The API reference gives Descending as ListTransformJobs' default (training: Ascending).
    sort_order: Literal["Ascending", "Descending"] = "Descending"


class TransformJobSummary(WireShape):
    transform_job_name: str
    transform_job_arn: str
    creation_time: Timestamp
    transform_end_time: Timestamp | None = None
    last_modified_time: Timestamp | None = None
    transform_job_status: TransformJobStatus
    failure_reason: str | None = None


class ListTransformJobsResponse(WireShape):
    transform_job_summaries: list[TransformJobSummary]
    next_token: str | None = None


class DescribeTransformJobResponse(WireShape):
    transform_job_name: str
    transform_job_arn: str
    transform_job_status: TransformJobStatus
    failure_reason: str | None = None
    model_name: str
    max_concurrent_transforms: int | None = None
    model_client_config: ModelClientConfig | None = None
    max_payload_in_mb: Annotated[int | None, Field(alias="MaxPayloadInMB")] = None
    batch_strategy: BatchStrategy | None = None
    environment: dict[str, str] | None = None
    transform_input: TransformInput
    transform_output: TransformOutput
    transform_resources: TransformResources
    data_processing: DataProcessing | None = None
    creation_time: Timestamp
    transform_start_time: Timestamp | None = None
    transform_end_time: Timestamp | None = None


class TransformJobState(WireShape):
    """What a transform job keeps beside its status."""

    failure_reason: str | None = None
    transform_start_time: float | None = None
    transform_end_time: float | None = None


# ---------------------------------------------------------------------------------------------
# What the job runs with


@dataclass(frozen=True)
class EffectiveParameters:
    batch_strategy: BatchStrategy
    max_payload_in_mb: int  # 0 = unlimited
    max_concurrent_transforms: int

    @property
    def max_payload_bytes(self) -> int:
        """The byte limit `engine.transform_records.batches` takes; 0 = unlimited."""
        return self.max_payload_in_mb * MIB


# /execution-parameters spells strategies in upper snake case; the API's spelling is taken too,
# because containers written from the API reference answer with it.
_STRATEGIES: dict[str, BatchStrategy] = {
    "SINGLE_RECORD": "SingleRecord",
    "MULTI_RECORD": "MultiRecord",
    "SingleRecord": "SingleRecord",
    "MultiRecord": "MultiRecord",
}


def _whole(value: object, low: int, high: int | None = None) -> int | None:
    """An integer in range, or None: a container's malformed answer is ignored, not fatal."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if value < low or (high is not None and value > high):
        return None
    return value


def effective_parameters(
    request: CreateTransformJobRequest, execution_parameters: object = None
) -> EffectiveParameters:
    """Each parameter from the request, else the container's /execution-parameters answer (the
    parsed JSON, or None when the route failed), else the default. Values the container gets
    wrong (a string, a negative number, an unknown strategy) are skipped one by one."""
    answer: Mapping[str, Any] = (
        execution_parameters if isinstance(execution_parameters, Mapping) else {}
    )
    strategy = request.batch_strategy
    if strategy is None:
        given = answer.get("BatchStrategy")
        strategy = _STRATEGIES.get(given) if isinstance(given, str) else None
    payload = request.max_payload_in_mb
    if payload is None:
        payload = _whole(answer.get("MaxPayloadInMB"), 0, MAX_PAYLOAD_IN_MB)
    concurrent = request.max_concurrent_transforms or None  # 0 = ask the container
    if concurrent is None:
        concurrent = _whole(answer.get("MaxConcurrentTransforms"), 1)
    return EffectiveParameters(
        batch_strategy=strategy or DEFAULT_BATCH_STRATEGY,
        max_payload_in_mb=DEFAULT_MAX_PAYLOAD_IN_MB if payload is None else payload,
        max_concurrent_transforms=concurrent or DEFAULT_MAX_CONCURRENT_TRANSFORMS,
    )


_ENV_STRATEGY = {"SingleRecord": "SINGLE_RECORD", "MultiRecord": "MULTI_RECORD"}


def transform_environment(
    request: CreateTransformJobRequest, model_environment: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The serving container's environment: the model's, then the job's Environment over it,
    then the platform's batch variables over both.

    SAGEMAKER_BATCH is always set; the other three only when the request sets them, as the
    developer guide says (local mode always sets SAGEMAKER_MAX_CONCURRENT_TRANSFORMS=1 because it
    runs one request at a time; dockyard honours the real value). The variables are fixed when
    the container starts, before /execution-parameters is asked, so they can carry only what the
    user chose: passing dockyard's defaults would look like a user's choice, and a container
    that answers /execution-parameters from them would never get to state its own preference."""
    env = dict(model_environment or {})
    env.update(request.environment)
    env["SAGEMAKER_BATCH"] = "true"
    if request.max_payload_in_mb is not None:
        env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(request.max_payload_in_mb)
    if request.batch_strategy is not None:
        env["SAGEMAKER_BATCH_STRATEGY"] = _ENV_STRATEGY[request.batch_strategy]
    if request.max_concurrent_transforms:
        env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(request.max_concurrent_transforms)
    return env


# ---------------------------------------------------------------------------------------------
# ManifestFile inputs


def parse_manifest(data: bytes | str, where: str = "the manifest") -> list[str]:
    """The object URIs a ManifestFile lists, in its order.

    The format is SageMaker's: a JSON array whose first element is `{"prefix": "s3://b/p/"}`
    and whose other elements are keys relative to it; each URI is the prefix and the key
    concatenated, exactly as S3 keys are (no slash is added)."""
    try:
        entries = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{where} is not JSON ({exc}); {_MANIFEST_SHAPE}") from None
    if not isinstance(entries, list) or not entries:
        raise ValidationError(f"{where} is not a non-empty JSON array; {_MANIFEST_SHAPE}")
    head = entries[0]
    prefix = head.get("prefix") if isinstance(head, dict) else None
    if not isinstance(prefix, str) or not prefix:
        raise ValidationError(
            f'{where} must start with {{"prefix": "s3://..."}}; ' + _MANIFEST_SHAPE
        )
    try:
        _input_uri(prefix)
    except ValueError:
        raise ValidationError(
            f"{where} has prefix {prefix!r}, which is not an s3:// or file:// URI"
        ) from None
    uris = []
    for number, key in enumerate(entries[1:], start=2):
        if not isinstance(key, str) or not key or "://" in key:
            raise ValidationError(
                f"{where}: element {number} ({json.dumps(key)[:60]}) must be a key relative to "
                f'the prefix, such as "data/part-1.csv"'
            )
        uris.append(prefix + key)
    if not uris:
        raise ValidationError(f"{where} lists no objects after its prefix; {_MANIFEST_SHAPE}")
    return uris


_MANIFEST_SHAPE = 'a ManifestFile looks like [{"prefix": "s3://bucket/in/"}, "a.csv", "b/c.csv"]'
