"""What every named resource service shares: its ARNs and SageMaker's not-found answer."""

from __future__ import annotations

from typing import Generic

from dockyard.contract import names
from dockyard.contract.errors import NotFoundError
from dockyard.engine.context import EngineContext
from dockyard.storage.records import Kind, Record, Request, State


class NamedResources(Generic[Request, State]):
    kind: Kind[Request, State]  # the ARN's resource type and the metadata kind
    label = ""  # "model", "endpoint configuration", ...: for messages

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    def arn(self, name: str) -> str:
        settings = self.ctx.settings
        return names.arn(self.kind.name, name, settings.region, settings.account_id)

    def record(self, name: str) -> Record[Request, State]:
        """The stored resource; ValidationException "Could not find ..." as SageMaker answers."""
        found = self.ctx.metadata.resource(self.kind, name)
        if found is None:
            raise NotFoundError(f'Could not find {self.label} "{self.arn(name)}".')
        return found
