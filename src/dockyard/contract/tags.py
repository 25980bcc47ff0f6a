"""Tag operations' shapes: AddTags, ListTags, DeleteTags (botocore's model checks the limits)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from dockyard.contract.errors import ValidationError
from dockyard.contract.shapes import WireShape
from dockyard.contract.training_jobs import Tag

# dockyard's own tag on CreateTrainingJob / CreateModel: which runtime runs the hosts (a tag, not an
# Environment key, so the container never sees it and the same request runs on SageMaker).
RUNTIME_TAG = "dockyard:runtime"
RUNTIME_NAMES = ("process", "docker")


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


def requested_runtime(tags: list[Tag]) -> str | None:
    """The runtime a request's `dockyard:runtime` tag names, or None (the server chooses)."""
    for tag in tags:
        if tag.key == RUNTIME_TAG:
            if tag.value not in RUNTIME_NAMES:
                raise ValidationError(
                    f"Tag {RUNTIME_TAG}={tag.value!r} names no runtime: use one of "
                    f"{', '.join(RUNTIME_NAMES)}"
                )
            return tag.value
    return None
