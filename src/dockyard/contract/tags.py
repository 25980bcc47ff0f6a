"""Tag operations' shapes: AddTags, ListTags, DeleteTags (botocore's model checks the limits)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from dockyard.contract.shapes import WireShape
from dockyard.contract.training_jobs import Tag


class AddTagsRequest(WireShape):
    resource_arn: str
    tags: list[Tag]


class ListTagsRequest(WireShape):
    resource_arn: str
    next_token: str | None = None
    # The model sets a minimum (50) and no maximum; SageMaker's default is 50.
    max_results: Annotated[int, Field(ge=50)] = 50


class DeleteTagsRequest(WireShape):
    resource_arn: str
    tag_keys: list[str]


class TaggedCreate(WireShape):
    """The `Tags` member every Create* request may carry."""

    tags: list[Tag] = []
