"""Endpoints: CreateEndpoint, UpdateEndpoint (blue/green), DeleteEndpoint, and bringing every
endpoint back after a server restart. Each status change goes through `_transition`, which
checks the transition table; the instances themselves are a Deployment's business."""

from __future__ import annotations

import functools
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.contract.endpoints import (
    STOP_GRACE_SECONDS,
    CreateEndpointRequest,
    EndpointState,
    EndpointStatus,
    ListEndpointsRequest,
    ProductionVariantSummary,
    UpdateEndpointRequest,
    UpdateEndpointWeightsAndCapacitiesRequest,
    VariantOverride,
    check_endpoint_transition,
)
from dockyard.contract.errors import DockyardError, InvalidTransition, ValidationError
from dockyard.engine.context import EngineContext
from dockyard.engine.deployments import Deployment, InstanceState, VariantPlan, variant_plans
from dockyard.engine.instances import InstanceFailed
from dockyard.engine.logs import LogWriter
from dockyard.engine.models import EndpointConfigs, Models
from dockyard.engine.paging import Page, resource_page
from dockyard.engine.resources import NamedResources
from dockyard.engine.router import Router, Variant
from dockyard.storage.records import ENDPOINTS, Listed, Record

logger = logging.getLogger(__name__)

ENDPOINT = ENDPOINTS.name
LOG_GROUP = "/aws/sagemaker/Endpoints"
_E = EndpointStatus
_MAX_REASON = 1024


def log_group(endpoint: str) -> str:
    return f"{LOG_GROUP}/{endpoint}"


@dataclass(frozen=True)
class EndpointView:
    """What DescribeEndpoint shows: the stored endpoint, and its variants while it serves."""

    record: Record[CreateEndpointRequest, EndpointState]
    variants: list[ProductionVariantSummary] | None


class Endpoints(NamedResources[CreateEndpointRequest, EndpointState]):
    kind, label = ENDPOINTS, "endpoint"

    def __init__(
        self, ctx: EngineContext, models: Models, configs: EndpointConfigs, router: Router
    ) -> None:
        super().__init__(ctx)
        self.models = models
        self.configs = configs
        self.router = router
        self._live: dict[str, Deployment] = {}  # the deployment the router sends requests to
        self._starting: dict[str, Deployment] = {}  # a deployment being created or updated
        self._lock = threading.Lock()
        self._writers: dict[str, LogWriter] = {}

    # -- the API ----------------------------------------------------------------------------

    def create(self, request: CreateEndpointRequest) -> str:
        name = request.endpoint_name
        self._plans(request.endpoint_config_name)  # the config and its models exist
        now = time.time()
        record = Record(
            name=name,
            arn=self.arn(name),
            creation_time=now,
            state=EndpointState(endpoint_config_name=request.endpoint_config_name),
            status=_E.CREATING,
            last_modified_time=now,
            request=request,
        )
        self.ctx.metadata.insert_resource(
            ENDPOINTS, record, f'Cannot create already existing endpoint "{record.arn}".'
        )
        self._in_background(name, lambda: self._deploy_new(name, request.endpoint_config_name))
        return record.arn

    def update(self, request: UpdateEndpointRequest) -> str:
        name = request.endpoint_name
        record = self.record(name)
        if record.status != _E.IN_SERVICE:
            raise ValidationError(
                f'Cannot update endpoint "{record.arn}" while it is {record.status}; wait '
                "until it is InService"
            )
        self._plans(request.endpoint_config_name)
        self._begin(name, _E.UPDATING, pending_endpoint_config_name=request.endpoint_config_name)
        self._in_background(name, lambda: self._update(name, request.endpoint_config_name))
        return record.arn

    def update_weights_and_capacities(
        self, request: UpdateEndpointWeightsAndCapacitiesRequest
    ) -> str:
        name = request.endpoint_name
        record = self.record(name)
        if record.status != _E.IN_SERVICE:
            raise ValidationError(
                f'Cannot update endpoint "{record.arn}" while it is {record.status}; wait '
                "until it is InService"
            )
        deployment = self._live.get(name)
        known = {variant.name for variant in deployment.variants()} if deployment else set()
        for desired in request.desired_weights_and_capacities:
            if desired.variant_name not in known:
                raise ValidationError(
                    f"The variant {desired.variant_name} does not exist on endpoint {name}; its "
                    f"variants are: {', '.join(sorted(known))}"
                )
        self._begin(name, _E.UPDATING)
        self._in_background(name, functools.partial(self._resize, name, request))
        return record.arn

    def delete(self, name: str) -> None:
        record = self.record(name)
        if record.status == _E.DELETING:
            return
        self._transition(name, _E.DELETING)
        self._in_background(name, lambda: self._delete(name))

    def describe(self, name: str) -> EndpointView:
        record = self.record(name)
        deployment = self._live.get(name)
        variants = deployment.describe_variants() if deployment is not None else None
        return EndpointView(record, variants)

    def instances(self, name: str) -> list[InstanceState]:
        """The endpoint's instances: the live deployment's, then those of one being deployed
        beside it (UpdateEndpoint). Raises the error `record` raises for an unknown endpoint."""
        self.record(name)
        with self._lock:
            deployments = [d for d in (self._live.get(name), self._starting.get(name)) if d]
        return [s for deployment in deployments for s in deployment.instance_states()]

    def list(self, request: ListEndpointsRequest) -> Page[Listed[EndpointState]]:
        return resource_page(self.ctx.metadata, ENDPOINTS, request)

    # -- the server's life ------------------------------------------------------------------

    def recover(self) -> None:
        """Bring back every endpoint a previous server ran: its instances died with it."""
        for record in self.ctx.metadata.resources_of_kind(ENDPOINTS):
            config = record.state.endpoint_config_name
            name, status = record.name, record.status
            work: Callable[[], None]
            if status == _E.DELETING:
                work = functools.partial(self._delete, name)
            elif status == _E.CREATING:
                work = functools.partial(self._deploy_new, name, config)
            elif status in (_E.UPDATING, _E.ROLLING_BACK):
                work = functools.partial(self._restore, name, config, interrupted=True)
            elif status in (_E.IN_SERVICE, _E.SYSTEM_UPDATING, _E.OUT_OF_SERVICE):
                if status == _E.IN_SERVICE:
                    self._transition(name, _E.SYSTEM_UPDATING)
                work = functools.partial(self._restore, name, config)
            else:
                continue  # Failed, UpdateRollbackFailed: only DeleteEndpoint helps
            self._in_background(name, work)

    def instance_states(self) -> tuple[InstanceState, ...]:
        """Every instance of every endpoint, live or being deployed (Prometheus' series)."""
        with self._lock:
            deployments = [*self._live.values(), *self._starting.values()]
        return tuple(s for deployment in deployments for s in deployment.instance_states())

    def shutdown(self) -> None:
        """Stop every instance; statuses stay, so the next server brings the endpoints back."""
        with self._lock:
            deployments = [*self._live.values(), *self._starting.values()]
            self._live.clear()
            self._starting.clear()
        for deployment in deployments:
            deployment.stop(grace=5.0)
        for writer in self._writers.values():
            writer.close()

    # -- work done in the background --------------------------------------------------------

    # Each piece of background work ends the endpoint in a status a user can act on, whatever
    # goes wrong: an exception nobody expected (Popen's "embedded null byte", a race on /proc)
    # is logged with its traceback and becomes the FailureReason, as a DockyardError does.

    def _deploy_new(self, name: str, config: str) -> None:
        try:
            deployment = self._start_deployment(name, config)
        except Exception as failed:  # an instance failed, or the config/model is gone
            self._transition(name, _E.FAILED, failure_reason=_reason(failed, name))
            return
        if deployment is None:
            return
        self._go_live(name, deployment)
        self._transition(name, _E.IN_SERVICE, failure_reason=None)

    def _restore(self, name: str, config: str, interrupted: bool = False) -> None:
        try:
            deployment = self._start_deployment(name, config)
        except Exception as failed:
            if not interrupted:
                self._transition(name, _E.OUT_OF_SERVICE, failure_reason=_reason(failed, name))
                return
            self._transition(name, _E.ROLLING_BACK, failure_reason=_reason(failed, name))
            self._transition(name, _E.UPDATE_ROLLBACK_FAILED)
            return
        if deployment is None:
            return
        self._go_live(name, deployment)
        reason = (
            "The update was interrupted by a restart of the dockyard server; the endpoint "
            f"serves {config} again. Run UpdateEndpoint again."
            if interrupted
            else None
        )
        self._transition(
            name, _E.IN_SERVICE, failure_reason=reason, pending_endpoint_config_name=None
        )

    def _update(self, name: str, config: str) -> None:
        try:
            deployment = self._start_deployment(name, config)
        except Exception as failed:
            self._transition(name, _E.ROLLING_BACK, failure_reason=_reason(failed, name))
            self._transition(name, _E.IN_SERVICE, pending_endpoint_config_name=None)
            return
        if deployment is None:
            return
        old = self._go_live(name, deployment)
        self._transition(
            name,
            _E.IN_SERVICE,
            endpoint_config_name=config,
            pending_endpoint_config_name=None,
            failure_reason=None,
            variant_overrides={},  # the new configuration's weights and counts apply
        )
        if old is not None:
            # Blue/green: the old instances get no new request; let those in flight finish.
            old.drain(timeout=STOP_GRACE_SECONDS)
            old.stop(grace=STOP_GRACE_SECONDS)

    def _resize(self, name: str, request: UpdateEndpointWeightsAndCapacitiesRequest) -> None:
        deployment = self._live.get(name)
        record = self.ctx.metadata.resource(ENDPOINTS, name)
        if deployment is None or record is None:
            return
        # Kept in the endpoint's state, so a restart brings the endpoint back at this size.
        overrides = dict(record.state.variant_overrides)
        reason = None
        for desired in request.desired_weights_and_capacities:
            variant = desired.variant_name
            try:
                deployment.resize(variant, desired.desired_weight, desired.desired_instance_count)
            except Exception as failed:
                reason = _reason(failed, name)
            entry = overrides.get(variant, VariantOverride())
            overrides[variant] = VariantOverride(
                weight=entry.weight if desired.desired_weight is None else desired.desired_weight,
                count=(
                    entry.count
                    if desired.desired_instance_count is None
                    else desired.desired_instance_count
                ),
            )
        self._transition(name, _E.IN_SERVICE, variant_overrides=overrides, failure_reason=reason)

    def _delete(self, name: str) -> None:
        try:
            self.router.withdraw(name)
            with self._lock:
                deployments = [self._live.pop(name, None), self._starting.pop(name, None)]
            for deployment in deployments:
                if deployment is not None:
                    deployment.stop(grace=STOP_GRACE_SECONDS)
            shutil.rmtree(self._folder(name), ignore_errors=True)
            writer = self._writers.pop(name, None)
            if writer is not None:
                writer.close()
        finally:
            # Deleting has no way back: the endpoint goes even if stopping it went wrong.
            self.ctx.metadata.delete_resource(ENDPOINTS, name)

    def _start_deployment(self, name: str, config: str) -> Deployment | None:
        """Start `config`'s instances; None when the endpoint was deleted meanwhile."""
        plans = self._plans(config)
        record = self.ctx.metadata.resource(ENDPOINTS, name)
        state = record.state if record is not None else None
        if state is not None and state.endpoint_config_name == config:
            for plan in plans:  # weights and counts set since creation
                override = state.variant_overrides.get(plan.name, VariantOverride())
                if override.weight is not None:
                    plan.weight = override.weight
                if override.count is not None:
                    plan.instance_count = override.count
        folder = self._folder(name) / f"{config}-{time.time_ns()}"
        deployment = Deployment(
            self.ctx,
            name,
            config,
            plans,
            folder,
            self._writer(name),
            lambda variants: self._publish(name, variants),
        )
        with self._lock:
            self._starting[name] = deployment
        try:
            deployment.start()
        except InstanceFailed:
            if self._status(name) in (None, _E.DELETING):
                return None  # stopped by DeleteEndpoint
            raise
        finally:
            with self._lock:
                if self._starting.get(name) is deployment:
                    del self._starting[name]
        if self._status(name) in (None, _E.DELETING):
            deployment.stop(grace=0)
            return None
        return deployment

    def _go_live(self, name: str, deployment: Deployment) -> Deployment | None:
        """Send the endpoint's requests to `deployment` from now on; the old one is returned."""
        with self._lock:
            old = self._live.get(name)
            self._live[name] = deployment
            if old is not None:
                old.live = False
            deployment.live = True
        self.router.publish(name, deployment.variants())
        return old

    def _publish(self, name: str, variants: Sequence[Variant]) -> None:
        with self._lock:
            if name in self._live:
                self.router.publish(name, variants)

    # -- helpers --------------------------------------------------------------------------------

    def _plans(self, config_name: str) -> Sequence[VariantPlan]:
        config = self.configs.record(config_name).request
        models = {
            variant.model_name: self.models.record(variant.model_name).request
            for variant in config.production_variants
        }
        return variant_plans(config, models)

    def _transition(self, name: str, status: EndpointStatus, **state: Any) -> None:
        """The one way an endpoint's status changes: checked against the transition table in
        the same transaction that writes it (staying in a status only updates the state)."""

        def check(record: Listed[EndpointState]) -> None:
            if record.status != status:
                check_endpoint_transition(EndpointStatus(record.status or _E.CREATING), status)

        if isinstance(state.get("failure_reason"), str):
            state["failure_reason"] = state["failure_reason"][:_MAX_REASON]
        self.ctx.metadata.update_resource(ENDPOINTS, name, status=status, state=state, check=check)

    def _begin(self, name: str, status: EndpointStatus, **state: Any) -> None:
        """A status change an API call makes. Another call may have changed the status since it
        was read (a DeleteEndpoint meanwhile): then the caller hears why, not InternalFailure."""
        try:
            self._transition(name, status, **state)
        except InvalidTransition:
            record = self.record(name)
            raise ValidationError(
                f'Cannot update endpoint "{record.arn}" while it is {record.status}; wait '
                "until it is InService"
            ) from None

    def _status(self, name: str) -> str | None:
        record = self.ctx.metadata.resource(ENDPOINTS, name)
        return None if record is None else record.status

    def _in_background(self, name: str, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            except Exception:
                logger.exception("endpoint %s: background work failed", name)

        thread = threading.Thread(target=run, name=f"endpoint-{name}", daemon=True)
        thread.start()

    def _writer(self, name: str) -> LogWriter:
        with self._lock:
            writer = self._writers.get(name)
            if writer is None:
                writer = self._writers[name] = LogWriter(self.ctx.metadata, log_group(name))
            return writer

    def _folder(self, name: str) -> Path:
        return self.ctx.settings.home / "endpoints" / name


def _reason(failed: Exception, endpoint: str) -> str:
    """A FailureReason; an unexpected exception is logged with its traceback for the operator."""
    if isinstance(failed, DockyardError):
        return str(failed)[:_MAX_REASON]
    logger.error("endpoint %s: unexpected error", endpoint, exc_info=failed)
    return (
        f"InternalFailure: {type(failed).__name__}: {failed}. The dockyard server's log has "
        "the details"
    )[:_MAX_REASON]
