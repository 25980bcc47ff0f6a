"""Tags of SageMaker resources, kept per resource ARN: AddTags, ListTags, DeleteTags."""

from __future__ import annotations

from collections.abc import Sequence

from dockyard.contract.errors import NotFoundError, ValidationError
from dockyard.engine.paging import decode_token, encode_token
from dockyard.storage.metadata import MetadataStore

MAX_TAGS = 50  # per resource, as SageMaker allows
# Keys under aws: are AWS's own (aws:cloudformation:stack-name, ...); users cannot set them.
RESERVED_PREFIX = "aws:"


def check_keys(keys: Sequence[str]) -> None:
    """The rule botocore's model cannot say: user tags may not use AWS's prefix."""
    for key in keys:
        if key.lower().startswith(RESERVED_PREFIX):
            raise ValidationError(
                f"Tag key {key!r} starts with {RESERVED_PREFIX!r}, which AWS reserves for its "
                "own tags: choose another key"
            )


class Tags:
    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def _resource(self, arn: str) -> str:
        if not self.metadata.arn_exists(arn):
            raise NotFoundError(
                f"Resource {arn} not found: no training job, model, endpoint "
                "configuration, endpoint or transform job has that ARN."
            )
        return arn

    def add(self, arn: str, tags: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        check_keys([key for key, _ in tags])
        self.metadata.add_tags(self._resource(arn), tags, MAX_TAGS)
        return list(tags)

    def list(
        self, arn: str, next_token: str | None, max_results: int
    ) -> tuple[list[tuple[str, str]], str | None]:
        """One page of a resource's tags, in the order they were first added."""
        offset = decode_token(next_token)
        rows = self.metadata.tags(self._resource(arn), offset, max_results + 1)
        page = rows[:max_results]
        token = encode_token(offset + len(page)) if len(rows) > max_results else None
        return page, token

    def delete(self, arn: str, keys: Sequence[str]) -> None:
        """Keys the resource does not have are ignored, as in SageMaker."""
        self.metadata.delete_tags(self._resource(arn), keys)
