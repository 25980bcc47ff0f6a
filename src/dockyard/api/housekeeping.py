"""dockyard's own operations (X-Amz-Target `Dockyard.*`), beside SageMaker's: housekeeping that
SageMaker does for you, such as removing finished jobs' folders."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from dockyard.api.protocol import Operation
from dockyard.contract.shapes import WireShape
from dockyard.engine.core import Engine

TARGET = "Dockyard"


class PruneJobFoldersRequest(WireShape):
    older_than_hours: Annotated[float, Field(ge=0, le=1e6)] = 0.0


def operations(engine: Engine) -> dict[str, Operation]:
    def prune_job_folders(body: dict[str, Any]) -> dict[str, Any]:
        request = PruneJobFoldersRequest.from_wire(body)
        pruned = engine.job_folders.prune(request.older_than_hours)
        return {"PrunedJobs": pruned.jobs, "FreedBytes": pruned.freed_bytes}

    return {"PruneJobFolders": prune_job_folders}
