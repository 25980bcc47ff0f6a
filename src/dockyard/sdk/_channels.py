"""`fit()` inputs as CreateTrainingJob's InputDataConfig, local data made readable by the server:
a local path or file:// URI goes as an absolute file:// URI to a server on this machine (read in
place, no copy) and is uploaded to the object store for a server elsewhere."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.client.local_data import server_data_uri
from dockyard.sdk.inputs import TrainingInput

if TYPE_CHECKING:
    from dockyard.sdk.session import Session

DEFAULT_CHANNEL = "training"
MODEL_CONTENT_TYPE = "application/x-sagemaker-model"

Inputs = str | TrainingInput | Mapping[str, "str | TrainingInput"] | None


def server_uri(session: Session, uri: str, key_prefix: str) -> str:
    """A URI the server can read (client.local_data.server_data_uri), uploads going through the
    session (its default bucket and prefix)."""

    def upload(path: Path, prefix: str) -> str:
        return session.upload_data(str(path), key_prefix=prefix)

    return server_data_uri(session.client, uri, key_prefix, "input", upload)


def input_data_config(
    session: Session,
    inputs: Inputs,
    *,
    job_name: str,
    model_uri: str | None = None,
    model_channel_name: str = "model",
) -> list[dict[str, Any]]:
    """The channels of `inputs` (a URI or a TrainingInput for the `training` channel, or a dict
    of channel name to either), plus the model channel of incremental training."""
    if inputs is None:
        named: dict[str, str | TrainingInput] = {}
    elif isinstance(inputs, str | TrainingInput):
        named = {DEFAULT_CHANNEL: inputs}
    elif isinstance(inputs, Mapping):
        named = dict(inputs)
    else:
        raise TypeError(
            "inputs must be an s3:// or file:// URI, a local path, a TrainingInput, or a dict of "
            f"channel name to one of those; got {type(inputs).__name__} (dockyard does not "
            "support FileSystemInput or RecordSet)"
        )
    if model_uri is not None:
        named[model_channel_name] = TrainingInput(
            model_uri, input_mode="File", content_type=MODEL_CONTENT_TYPE
        )
    channels = []
    for name, value in named.items():
        if isinstance(value, str):
            value = TrainingInput(value)
        elif not isinstance(value, TrainingInput):
            raise TypeError(
                f"channel {name}: expected a URI, a local path or a TrainingInput, "
                f"got {type(value).__name__}"
            )
        channel = copy.deepcopy(value.config)
        source = channel["DataSource"]["S3DataSource"]
        source["S3Uri"] = server_uri(session, source["S3Uri"], f"{job_name}/input/{name}")
        channels.append({"ChannelName": name, **channel})
    return channels


def job_input_mode(inputs: Inputs, default: str) -> str:
    """TrainingInputMode: a single TrainingInput's input_mode wins over the estimator's, as in
    the SDK."""
    if isinstance(inputs, TrainingInput) and "InputMode" in inputs.config:
        return str(inputs.config["InputMode"])
    return default
