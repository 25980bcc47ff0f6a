"""The one way the faces (CLI, SDK) reach dockyard: boto3 clients pointed at the server."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

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

    def _client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=self.settings.region,
            # The embedded server accepts any credentials; boto3 insists on having some.
            aws_access_key_id="dockyard",
            aws_secret_access_key="dockyard",
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
