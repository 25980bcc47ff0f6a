"""Training jobs on the wire: request and response shapes, statuses and allowed transitions."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dockyard.contract import names
from dockyard.contract.errors import InvalidTransition
from dockyard.contract.shapes import ListShape, Timestamp, WireShape

JobName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=names.MAX_NAME_LENGTH,
        pattern=names.JOB_NAME.pattern,
    ),
]
S3UriText = Annotated[str, Field(max_length=1024, pattern=names.S3_URI.pattern)]


class TrainingJobStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


class SecondaryStatus(StrEnum):
    STARTING = "Starting"
    PENDING = "Pending"
    DOWNLOADING = "Downloading"
    TRAINING = "Training"
    UPLOADING = "Uploading"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"
    COMPLETED = "Completed"
    FAILED = "Failed"
    INTERRUPTED = "Interrupted"
    RESTARTING = "Restarting"  # a host was lost and RetryStrategy asks for another attempt


TERMINAL_STATUSES = frozenset(
    {TrainingJobStatus.COMPLETED, TrainingJobStatus.FAILED, TrainingJobStatus.STOPPED}
)

_S = SecondaryStatus
_T = TrainingJobStatus

# The secondary status drives the job; each one belongs to one primary status (the API model's
# documented grouping), except Uploading after a stop (see primary_status). Stopping can interrupt
# any running phase; Uploading follows a stop too, because artifacts written in the grace period
# are kept.
PRIMARY_OF: dict[SecondaryStatus, TrainingJobStatus] = {
    _S.STARTING: _T.IN_PROGRESS,
    _S.PENDING: _T.IN_PROGRESS,
    _S.DOWNLOADING: _T.IN_PROGRESS,
    _S.TRAINING: _T.IN_PROGRESS,
    _S.UPLOADING: _T.IN_PROGRESS,
    _S.INTERRUPTED: _T.IN_PROGRESS,
    _S.RESTARTING: _T.IN_PROGRESS,
    _S.STOPPING: _T.STOPPING,
    _S.COMPLETED: _T.COMPLETED,
    _S.FAILED: _T.FAILED,
    _S.STOPPED: _T.STOPPED,
    _S.MAX_RUNTIME_EXCEEDED: _T.STOPPED,
}

_RUNNING = {_S.STARTING, _S.PENDING, _S.DOWNLOADING, _S.TRAINING}
SECONDARY_TRANSITIONS: dict[SecondaryStatus, frozenset[SecondaryStatus]] = {
    _S.STARTING: frozenset({_S.PENDING, _S.DOWNLOADING, _S.STOPPING, _S.FAILED}),
    _S.PENDING: frozenset({_S.STARTING, _S.DOWNLOADING, _S.STOPPING, _S.FAILED}),
    _S.DOWNLOADING: frozenset({_S.TRAINING, _S.STOPPING, _S.FAILED}),
    _S.TRAINING: frozenset({_S.UPLOADING, _S.STOPPING, _S.FAILED, _S.RESTARTING}),
    _S.RESTARTING: frozenset({_S.PENDING, _S.DOWNLOADING, _S.STOPPING, _S.FAILED}),
    _S.UPLOADING: frozenset({_S.COMPLETED, _S.FAILED, _S.STOPPED, _S.MAX_RUNTIME_EXCEEDED}),
    _S.STOPPING: frozenset({_S.UPLOADING, _S.STOPPED, _S.MAX_RUNTIME_EXCEEDED, _S.FAILED}),
    _S.INTERRUPTED: frozenset({_S.FAILED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.STOPPED: frozenset(),
    _S.MAX_RUNTIME_EXCEEDED: frozenset(),
}
assert all(s in SECONDARY_TRANSITIONS for s in SecondaryStatus)
assert set(SECONDARY_TRANSITIONS) >= _RUNNING


def check_transition(current: SecondaryStatus, target: SecondaryStatus) -> TrainingJobStatus:
    """Raise InvalidTransition unless the table allows it; return the job's primary status once
    at `target` (see primary_status)."""
    if target not in SECONDARY_TRANSITIONS[current]:
        raise InvalidTransition(f"a training job cannot go from {current} to {target}")
    return primary_status(current, target)


def primary_status(current: SecondaryStatus, target: SecondaryStatus) -> TrainingJobStatus:
    """The primary status of a job moving from `current` to `target`. A stopped job's artifacts
    are uploaded too, but its status stays Stopping until it is Stopped (StopTrainingJob: "SageMaker
    changes the status of the job to Stopping. After SageMaker stops the job, it sets the status to
    Stopped"): a client that saw Stopping never sees InProgress again."""
    if current is _S.STOPPING and target is _S.UPLOADING:
        return _T.STOPPING
    return PRIMARY_OF[target]


# ---------------------------------------------------------------------------------------------
# Request shapes


class MetricDefinition(WireShape):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    regex: Annotated[str, Field(min_length=1, max_length=500)]

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"Member must be a valid regular expression ({exc})") from None
        return value


class AlgorithmSpecification(WireShape):
    training_input_mode: Literal["File", "Pipe", "FastFile"] = "File"
    training_image: Annotated[str, Field(max_length=255)] | None = None
    algorithm_name: str | None = None
    metric_definitions: Annotated[list[MetricDefinition], Field(max_length=40)] = []
    enable_sage_maker_metrics_time_series: bool | None = None
    container_entrypoint: Annotated[list[str], Field(min_length=1, max_length=100)] | None = None
    container_arguments: Annotated[list[str], Field(min_length=1, max_length=100)] | None = None

    @model_validator(mode="after")
    def _image(self) -> AlgorithmSpecification:
        if not self.training_image:
            raise ValueError(
                "Member must name a TrainingImage (dockyard runs no AWS-owned algorithms)"
            )
        return self


class S3DataSource(WireShape):
    s3_data_type: Literal["S3Prefix", "ManifestFile", "AugmentedManifestFile"] = "S3Prefix"
    s3_uri: Annotated[str, Field(max_length=1024)]
    s3_data_distribution_type: Literal["FullyReplicated", "ShardedByS3Key"] = "FullyReplicated"
    attribute_names: list[str] | None = None

    @field_validator("s3_uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        # dockyard also takes file:// URIs and plain local paths, which the server reads.
        if value.startswith(("s3://", "file://", "/")) or names.S3_URI.match(value):
            return value
        raise ValueError("Member must be an s3:// URI, a file:// URI or an absolute local path")


class FileSystemDataSource(WireShape):
    file_system_id: str
    file_system_access_mode: Literal["rw", "ro"]
    file_system_type: Literal["EFS", "FSxLustre"]
    directory_path: str


class DataSource(WireShape):
    s3_data_source: S3DataSource | None = None
    file_system_data_source: FileSystemDataSource | None = None

    @model_validator(mode="after")
    def _one(self) -> DataSource:
        if self.file_system_data_source is not None:
            raise ValueError("Member FileSystemDataSource (EFS/FSx) is not supported by dockyard")
        if self.s3_data_source is None:
            raise ValueError("Member must have S3DataSource")
        return self


class ShuffleConfig(WireShape):
    seed: int


class Channel(WireShape):
    channel_name: Annotated[str, Field(pattern=names.CHANNEL_NAME.pattern)]
    data_source: DataSource
    content_type: Annotated[str, Field(max_length=256)] | None = None
    compression_type: Literal["None", "Gzip"] | None = None
    record_wrapper_type: Literal["None", "RecordIO"] | None = None
    input_mode: Literal["File", "Pipe", "FastFile"] | None = None
    shuffle_config: ShuffleConfig | None = None

    @property
    def s3(self) -> S3DataSource:
        assert self.data_source.s3_data_source is not None
        return self.data_source.s3_data_source


class OutputDataConfig(WireShape):
    s3_output_path: Annotated[str, Field(max_length=1024)]
    kms_key_id: str | None = None
    compression_type: Literal["GZIP", "NONE"] | None = None

    @field_validator("s3_output_path")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not value.startswith("s3://") or not names.S3_URI.match(value):
            raise ValueError("Member must be an s3:// URI such as s3://bucket/output")
        return value


class InstanceGroup(WireShape):
    instance_type: str
    instance_count: int
    instance_group_name: str


class ResourceConfig(WireShape):
    instance_type: str | None = None
    instance_count: Annotated[int, Field(ge=1)] = 1
    volume_size_in_gb: Annotated[int | None, Field(alias="VolumeSizeInGB")] = None
    volume_kms_key_id: str | None = None
    keep_alive_period_in_seconds: Annotated[int, Field(ge=0, le=21600)] | None = None
    instance_groups: list[InstanceGroup] | None = None

    @model_validator(mode="after")
    def _type(self) -> ResourceConfig:
        if self.instance_groups:
            raise ValueError("Member InstanceGroups (heterogeneous clusters) is not supported yet")
        if not self.instance_type:
            raise ValueError("Member must have InstanceType")
        return self


class StoppingCondition(WireShape):
    max_runtime_in_seconds: Annotated[int, Field(ge=1, le=names.MAX_RUNTIME_SECONDS)] = (
        names.DEFAULT_MAX_RUNTIME_SECONDS
    )
    max_wait_time_in_seconds: int | None = None
    max_pending_time_in_seconds: int | None = None


class CheckpointConfig(WireShape):
    s3_uri: Annotated[str, Field(max_length=1024)]
    local_path: str | None = None

    @field_validator("s3_uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not value.startswith("s3://"):
            raise ValueError("Member must be an s3:// URI")
        return value


class Tag(WireShape):
    key: str
    value: str


class RetryStrategy(WireShape):
    maximum_retry_attempts: Annotated[int, Field(ge=1, le=30)]


HyperParameters = Annotated[
    dict[
        Annotated[str, Field(max_length=names.MAX_HYPERPARAMETER_KEY_LENGTH)],
        Annotated[str, Field(max_length=names.MAX_HYPERPARAMETER_VALUE_LENGTH)],
    ],
    Field(max_length=names.MAX_HYPERPARAMETERS),
]
Environment = Annotated[
    dict[
        Annotated[
            str,
            Field(max_length=names.MAX_ENVIRONMENT_KEY_LENGTH, pattern=names.ENV_KEY.pattern),
        ],
        Annotated[str, Field(max_length=names.MAX_ENVIRONMENT_VALUE_LENGTH)],
    ],
    Field(max_length=names.MAX_ENVIRONMENT_ENTRIES),
]


class CreateTrainingJobRequest(WireShape):
    training_job_name: JobName
    role_arn: Annotated[str, Field(min_length=20, max_length=2048, pattern=names.ROLE_ARN.pattern)]
    algorithm_specification: AlgorithmSpecification
    output_data_config: OutputDataConfig
    resource_config: ResourceConfig
    stopping_condition: StoppingCondition = StoppingCondition()
    hyper_parameters: HyperParameters = {}
    input_data_config: Annotated[list[Channel], Field(min_length=1, max_length=20)] | None = None
    environment: Environment = {}
    checkpoint_config: CheckpointConfig | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = []
    retry_strategy: RetryStrategy | None = None
    enable_network_isolation: bool | None = None
    enable_inter_container_traffic_encryption: bool | None = None
    enable_managed_spot_training: bool | None = None

    @field_validator("input_data_config")
    @classmethod
    def _unique_channels(cls, value: list[Channel] | None) -> list[Channel] | None:
        seen: set[str] = set()
        for channel in value or []:
            if channel.channel_name in seen:
                raise ValueError(
                    f"Member channel names must be unique; {channel.channel_name!r} repeats"
                )
            seen.add(channel.channel_name)
        return value

    @property
    def channels(self) -> list[Channel]:
        return list(self.input_data_config or [])

    def input_mode_of(self, channel: Channel) -> str:
        return channel.input_mode or self.algorithm_specification.training_input_mode


# ---------------------------------------------------------------------------------------------
# Response shapes


class SecondaryStatusTransition(WireShape):
    status: SecondaryStatus
    start_time: Timestamp
    end_time: Timestamp | None = None
    status_message: str | None = None


class MetricData(WireShape):
    metric_name: str
    value: float
    timestamp: Timestamp


class ModelArtifacts(WireShape):
    s3_model_artifacts: str


class TrainingJobSummary(WireShape):
    training_job_name: str
    training_job_arn: str
    creation_time: Timestamp
    training_end_time: Timestamp | None = None
    last_modified_time: Timestamp | None = None
    training_job_status: TrainingJobStatus
    secondary_status: SecondaryStatus | None = None


class ListTrainingJobsRequest(ListShape):
    last_modified_time_after: float | None = None
    last_modified_time_before: float | None = None
    status_equals: TrainingJobStatus | None = None
    sort_by: Literal["Name", "CreationTime", "Status"] = "CreationTime"
    sort_order: Literal["Ascending", "Descending"] = "Ascending"
    # No dockyard job has a warm pool or a training plan: either filter matches no job.
    warm_pool_status_equals: str | None = None
    training_plan_arn_equals: str | None = None


class ListTrainingJobsResponse(WireShape):
    training_job_summaries: list[TrainingJobSummary]
    next_token: str | None = None


class TrainingJobNameRequest(WireShape):
    training_job_name: JobName


class DescribeTrainingJobResponse(WireShape):
    training_job_name: str
    training_job_arn: str
    model_artifacts: ModelArtifacts
    training_job_status: TrainingJobStatus
    secondary_status: SecondaryStatus
    failure_reason: str | None = None
    hyper_parameters: dict[str, str]
    algorithm_specification: AlgorithmSpecification
    role_arn: str
    input_data_config: list[Channel] | None = None
    output_data_config: OutputDataConfig
    resource_config: ResourceConfig
    stopping_condition: StoppingCondition
    creation_time: Timestamp
    training_start_time: Timestamp | None = None
    training_end_time: Timestamp | None = None
    last_modified_time: Timestamp
    secondary_status_transitions: list[SecondaryStatusTransition]
    final_metric_data_list: list[MetricData] | None = None
    enable_network_isolation: bool
    enable_inter_container_traffic_encryption: bool
    enable_managed_spot_training: bool
    checkpoint_config: CheckpointConfig | None = None
    training_time_in_seconds: int | None = None
    billable_time_in_seconds: int | None = None
    environment: dict[str, str] | None = None
    retry_strategy: RetryStrategy | None = None


# ---------------------------------------------------------------------------------------------
# What a training job keeps beside its status


class TrainingJobState(WireShape):
    secondary_status: SecondaryStatus
    model_artifacts: str  # the s3:// URI its model.tar.gz is (or will be) written to
    failure_reason: str | None = None
    training_start_time: float | None = None
    training_end_time: float | None = None
    # Set by StopTrainingJob.
    stop_requested: bool = False
