"""ECR repositories as stored and shown: the CreateRepository request (camelCase on the wire, as
ECR's JSON has it) and the image ids of the image operations. botocore's ECR model has checked
every request before these read it."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from dockyard.contract.shapes import WireShape


class EcrShape(WireShape):
    """ECR's members are camelCase (`repositoryName`), SageMaker's PascalCase."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class ImageScanningConfiguration(EcrShape):
    scan_on_push: bool = False


class EncryptionConfiguration(EcrShape):
    encryption_type: str = "AES256"
    kms_key: str | None = None


class CreateRepositoryRequest(EcrShape):
    repository_name: str
    registry_id: str | None = None
    # ECR's Tag shape is {"Key", "Value"}: kept as sent.
    tags: list[dict[str, Any]] | None = None
    # Kept and shown; the registry does not enforce IMMUTABLE (a push may replace a tag).
    image_tag_mutability: str = "MUTABLE"
    image_scanning_configuration: ImageScanningConfiguration = ImageScanningConfiguration()
    encryption_configuration: EncryptionConfiguration = EncryptionConfiguration()


class ImageIdentifier(EcrShape):
    image_digest: str | None = None
    image_tag: str | None = None

    def shown(self) -> str:
        """As ECR's messages show an image id: `{imageDigest:'null', imageTag:'latest'}`."""
        return f"{{imageDigest:'{self.image_digest}', imageTag:'{self.image_tag}'}}".replace(
            "'None'", "'null'"
        )
