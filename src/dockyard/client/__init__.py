"""The one way the faces (CLI, SDK) reach dockyard: boto3 clients pointed at the server."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

from dockyard.api.keys import AccessKey, face_key
from dockyard.client.local_server import start_background
from dockyard.settings import Settings


@dataclass
class Client:
    settings: Settings

    @cached_property
    def endpoint_url(self) -> str:
        """The configured server, or the local background one (started on first use)."""
        if self.settings.endpoint_url:
            return self.settings.endpoint_url.rstrip("/")
        return start_background(self.settings).url

    @cached_property
    def access_key(self) -> AccessKey:
        """DOCKYARD_ACCESS_KEY_ID / _SECRET_ACCESS_KEY, else the pair of this DOCKYARD_HOME."""
        return face_key(self.settings)

    def _client(self, service: str) -> Any:
        url = self.endpoint_url  # first: a local server makes the home's pair as it starts
        key = self.access_key
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=url,
            region_name=self.settings.region,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=70),
        )

    @cached_property
    def sagemaker(self) -> Any:
        return self._client("sagemaker")

    @cached_property
    def logs(self) -> Any:
        return self._client("logs")

    @cached_property
    def runtime(self) -> Any:
        """sagemaker-runtime: InvokeEndpoint (rest-json, POST /endpoints/<name>/invocations)."""
        return self._client("sagemaker-runtime")
