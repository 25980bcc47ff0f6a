"""The one way the faces (CLI, SDK) reach dockyard: boto3 clients pointed at the server, the object
store included (through its S3 API)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from dockyard.api.keys import AccessKey, face_key, home_credentials_file
from dockyard.client.local_server import start_background
from dockyard.client.objects import ApiObjects
from dockyard.settings import Settings

JSON_11 = "application/x-amz-json-1.1"


@dataclass
class Client:
    settings: Settings

    @cached_property
    def endpoint_url(self) -> str:
        """The configured server, or the local background one (started on first use)."""
        if self.settings.endpoint_url:
            return self.settings.endpoint_url.rstrip("/")
        return start_background(self.settings).url

    @property
    def server_reads_local_files(self) -> bool:
        """True for the background server of this DOCKYARD_HOME, which runs here and reads local
        data and code in place; a server named by DOCKYARD_ENDPOINT_URL may be on another
        machine, so they are uploaded through its S3 API first (client/local_data.py)."""
        return self.settings.endpoint_url is None

    @property
    def default_bucket(self) -> str:
        """`sagemaker-<region>-<account>`, as the SageMaker SDK names its default bucket."""
        return f"sagemaker-{self.settings.region}-{self.settings.account_id}"

    @cached_property
    def access_key(self) -> AccessKey:
        """DOCKYARD_ACCESS_KEY_ID / _SECRET_ACCESS_KEY, else the pair of this DOCKYARD_HOME."""
        return face_key(self.settings)

    @property
    def secret_location(self) -> str:
        """Where the secret of `access_key` is kept, for a hint that does not print it."""
        if self.settings.access_key_id:
            return "in DOCKYARD_SECRET_ACCESS_KEY"
        return f"in {home_credentials_file(self.settings)} (dockyard credentials prints it)"

    def _client(self, service: str, **config: Any) -> Any:
        url = self.endpoint_url  # first: a local server makes the home's pair as it starts
        key = self.access_key
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=url,
            region_name=self.settings.region,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"}, read_timeout=70, **config
            ),
        )

    def dockyard(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """One of dockyard's own operations (X-Amz-Target `Dockyard.*`), which botocore does not
        know, signed and answered like SageMaker's; errors raise botocore's ClientError."""
        url = self.endpoint_url + "/"
        request = AWSRequest(
            "POST",
            url,
            data=json.dumps(body).encode(),
            headers={"X-Amz-Target": f"Dockyard.{operation}", "Content-Type": JSON_11},
        )
        key = self.access_key
        credentials = Credentials(key.access_key_id, key.secret_access_key)
        SigV4Auth(credentials, "sagemaker", self.settings.region).add_auth(request)
        response = httpx.post(
            url, content=request.body, headers=dict(request.headers.items()), timeout=70
        )
        try:
            payload = response.json()
        except ValueError:
            payload = {"message": response.text}
        if response.status_code >= 400:
            code, message = payload.get("__type", "Error"), payload.get("message", "")
            raise ClientError({"Error": {"Code": code, "Message": message}}, operation)
        return dict(payload)

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

    @cached_property
    def s3(self) -> Any:
        """dockyard's S3 API, path-style (`/bucket/key`: the server's address is no DNS name)."""
        return self._client("s3", s3={"addressing_style": "path"})

    @cached_property
    def objects(self) -> ApiObjects:
        """The object store through the S3 API: what the CLI and the SDK upload and download."""
        return ApiObjects(self.s3)
