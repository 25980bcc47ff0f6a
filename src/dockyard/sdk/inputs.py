"""Channel configurations for `fit()`: where a channel's data is and how it is delivered."""

from __future__ import annotations

from typing import Any

from dockyard.sdk._compat import deprecated_alias


class ShuffleConfig:
    """Shuffle a channel's objects with this seed (CreateTrainingJob's ShuffleConfig)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed


class TrainingInput:
    """One channel of a training job. `s3_data` is an s3:// URI, a file:// URI or a local path
    (dockyard reads local data in place; see Estimator.fit). `config` is the Channel sent to
    CreateTrainingJob, without its ChannelName."""

    def __init__(
        self,
        s3_data: str,
        distribution: str | None = None,
        compression: str | None = None,
        content_type: str | None = None,
        record_wrapping: str | None = None,
        s3_data_type: str = "S3Prefix",
        instance_groups: list[str] | None = None,
        input_mode: str | None = None,
        attribute_names: list[str] | None = None,
        target_attribute_name: str | None = None,
        shuffle_config: ShuffleConfig | None = None,
        hub_access_config: dict[str, Any] | None = None,
        model_access_config: dict[str, Any] | None = None,
    ) -> None:
        source: dict[str, Any] = {"S3DataType": s3_data_type, "S3Uri": s3_data}
        # As the SDK does: FullyReplicated unless told otherwise, except for AutoML targets.
        if distribution is None and target_attribute_name is None:
            distribution = "FullyReplicated"
        if distribution is not None:
            source["S3DataDistributionType"] = distribution
        if instance_groups is not None:
            source["InstanceGroupNames"] = instance_groups
        if attribute_names is not None:
            source["AttributeNames"] = attribute_names
        # hub_access_config / model_access_config concern AWS-hosted models: accepted, not sent.
        self.config: dict[str, Any] = {"DataSource": {"S3DataSource": source}}
        optional = {
            "CompressionType": compression,
            "ContentType": content_type,
            "RecordWrapperType": record_wrapping,
            "InputMode": input_mode,
            "TargetAttributeName": target_attribute_name,
        }
        self.config.update({key: value for key, value in optional.items() if value is not None})
        if shuffle_config is not None:
            self.config["ShuffleConfig"] = {"Seed": shuffle_config.seed}

    @property
    def s3_data(self) -> str:
        return str(self.config["DataSource"]["S3DataSource"]["S3Uri"])

    def __repr__(self) -> str:
        return f"TrainingInput({self.config!r})"


s3_input = deprecated_alias(TrainingInput, "s3_input", "sagemaker.inputs.TrainingInput")
