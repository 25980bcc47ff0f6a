"""The invocation router: picks an instance of an endpoint (a variant by weight, then the instance
with the fewest requests in flight), forwards the request to its /invocations over a keep-alive
connection made inside the instance's network, and retries only what is safe: a request that
never reached an instance goes to another; one whose instance closed the connection after getting
it may have killed that instance, so it gets one more instance and no third. Runs on the API
server's event loop; engine threads only swap whole routes in and out."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from dockyard.contract.errors import DockyardError, ServiceUnavailable, ValidationError
from dockyard.engine.instance_http import ConnectionLost, InstanceConnection, NotDelivered
from dockyard.engine.instances import Instance

log = logging.getLogger(__name__)

INVOCATION_TIMEOUT = 60.0  # seconds a container has to answer, as in SageMaker
_MAX_IDLE = 64  # keep-alive connections kept per instance
# Instances a request may be delivered to: a crash under one request is retried once (the instance
# may have died of something else), a second means the request itself is the likely cause.
MAX_DELIVERIES = 2
_MAX_ATTEMPTS = 64  # tries of any kind for one request (stale keep-alive connections included)
# Headers the container gets from InvokeEndpoint, and the ones its answer may carry back.
FORWARDED_HEADERS = frozenset(
    {
        b"content-type",
        b"accept",
        b"x-amzn-sagemaker-custom-attributes",
        b"x-amzn-sagemaker-inference-id",
        b"x-amzn-sagemaker-target-model",
    }
)
RETURNED_HEADERS = frozenset({b"content-type", b"x-amzn-sagemaker-custom-attributes"})


class NoInstanceReady(ServiceUnavailable):
    """No instance of the endpoint can take the request now (all starting or being replaced)."""


class ContainerFailure(DockyardError):
    """The container took the request and gave no answer; the runtime API reports it as
    SageMaker reports a container's failure: ModelError (424) with OriginalStatusCode 0. Never a
    5xx: botocore retries those by itself, and would send the request to the model again.
    `variant`, `instance`: the last instance that had the request (its metrics count it), and
    `variant_instances` how many instances that variant had."""

    code = "ModelError"
    variant = ""
    instance = ""
    variant_instances = 1

    def delivered_to(self, variant: Variant, instance: Instance) -> ContainerFailure:
        self.variant, self.instance = variant.name, instance.name
        self.variant_instances = len(variant.instances)
        return self


class InvocationTimeout(ContainerFailure):
    """The container did not answer within the invocation timeout."""


class RequestCrashedInstances(ContainerFailure):
    """The request was delivered, and every instance that got it closed the connection without
    an answer (MAX_DELIVERIES of them, or every one there was): it is not sent again."""


@dataclass(frozen=True)
class Variant:
    """A production variant as the router sees it: replaced whole, never changed in place."""

    name: str
    weight: float
    instances: tuple[Instance, ...]


@dataclass
class Route:
    endpoint: str
    variants: tuple[Variant, ...]
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def variant(self, target: str | None) -> Variant:
        if target is not None:
            for variant in self.variants:
                if variant.name == target:
                    return variant
            known = ", ".join(v.name for v in self.variants)
            raise ValidationError(
                f"Target variant {target} does not exist on endpoint {self.endpoint}; "
                f"its variants are: {known}"
            )
        serving = [v for v in self.variants if v.instances]
        if not serving:
            raise NoInstanceReady(f"endpoint {self.endpoint} has no instance ready; retry shortly")
        if len(serving) == 1:
            return serving[0]
        weights = [v.weight for v in serving]
        # All weights 0 would leave nothing to choose by: then every variant counts the same.
        return random.choices(serving, weights if any(weights) else None)[0]

    def instance(self, variant: Variant, skip: set[str]) -> Instance | None:
        """The instance with the fewest requests in flight; ties go round the instances."""
        candidates = [i for i in variant.instances if i.name not in skip]
        if not candidates:
            return None
        start = next(self._turn) % len(candidates)
        best = candidates[start]
        for offset in range(1, len(candidates)):
            other = candidates[(start + offset) % len(candidates)]
            if other.in_flight < best.in_flight:
                best = other
        return best


@dataclass(frozen=True)
class Invocation:
    body: bytes
    headers: list[tuple[bytes, bytes]]  # only FORWARDED_HEADERS, lower-case names
    target_variant: str | None = None


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]  # only RETURNED_HEADERS
    body: bytes
    variant: str
    instance: str
    # The instance's part of the request, in microseconds (SageMaker's ModelLatency: from
    # sending the request to the container to having its whole answer).
    model_microseconds: int = 0
    variant_instances: int = 1  # instances the variant had (InvocationsPerInstance)


class Router:
    def __init__(self, timeout: float = INVOCATION_TIMEOUT) -> None:
        self.timeout = timeout
        self._routes: dict[str, Route] = {}

    def publish(self, endpoint: str, variants: Sequence[Variant]) -> None:
        """Make `variants` the endpoint's serving instances (a whole swap: blue/green)."""
        self._routes[endpoint] = Route(endpoint, tuple(variants))

    def withdraw(self, endpoint: str) -> None:
        self._routes.pop(endpoint, None)

    def route(self, endpoint: str) -> Route | None:
        return self._routes.get(endpoint)

    async def invoke(self, endpoint: str, invocation: Invocation) -> Reply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        skip: set[str] = set()  # instances not to try again for this request
        lost_on: list[str] = []  # instances the request reached, which then closed the connection
        delivered: tuple[Variant, Instance] | None = None  # the last of them
        last_error = ""
        for _ in range(_MAX_ATTEMPTS):
            route = self._routes.get(endpoint)
            if route is None:
                raise NoInstanceReady(f"endpoint {endpoint} is not serving")
            variant = route.variant(invocation.target_variant)
            instance = route.instance(variant, skip)
            if instance is None:
                break
            reused = bool(instance.idle)
            connection: InstanceConnection | None = None
            instance.in_flight += 1
            began = time.perf_counter_ns()
            try:
                connection = (
                    instance.idle.pop() if reused else await InstanceConnection.open(instance)
                )
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    status, headers, body = await connection.exchange(
                        invocation.headers, invocation.body
                    )
            except NotDelivered as lost:
                # Safe to send anywhere. A stale kept-alive connection says nothing about the
                # instance: the next try opens a new one (to it or another).
                last_error = f"{instance.name}: {lost}"
                if connection is not None:
                    connection.close()
                _drop_idle(instance)
                if not reused:
                    skip.add(instance.name)
                continue
            except ConnectionLost as lost:
                if connection is not None:
                    connection.close()
                _drop_idle(instance)
                skip.add(instance.name)
                lost_on.append(f"{instance.name}: {lost}")
                delivered = (variant, instance)
                if len(lost_on) >= MAX_DELIVERIES:
                    crashed = _crashed(endpoint, lost_on, "it was not sent to a third")
                    raise crashed.delivered_to(variant, instance) from None
                log.warning(
                    "endpoint %s: %s lost a request it had been sent (%s); sending it to one more "
                    "instance",
                    endpoint,
                    instance.name,
                    lost,
                )
                continue
            except TimeoutError:
                if connection is not None:
                    connection.close()
                raise InvocationTimeout(
                    "Your invocation timed out while waiting for a response from container "
                    f"{instance.name} of variant {variant.name} ({self.timeout:g} s)"
                ).delivered_to(variant, instance) from None
            finally:
                instance.in_flight -= 1
            model_microseconds = (time.perf_counter_ns() - began) // 1000
            if connection.reusable and len(instance.idle) < _MAX_IDLE:
                instance.idle.append(connection)
            else:
                connection.close()
            instance.served += 1
            returned = [(name, value) for name, value in headers if name in RETURNED_HEADERS]
            return Reply(
                status,
                returned,
                body,
                variant.name,
                instance.name,
                model_microseconds,
                len(variant.instances),
            )
        if lost_on:
            # It crashed the one instance it reached and no other could take it: still the
            # model's failure, not a reason for the client to send it again.
            crashed = _crashed(endpoint, lost_on, "no other instance could take it")
            assert delivered is not None  # set with every lost_on
            raise crashed.delivered_to(*delivered)
        raise NoInstanceReady(
            f"no instance of endpoint {endpoint} could be reached"
            + (f" (last error: {last_error})" if last_error else "")
        )


def _crashed(endpoint: str, lost_on: list[str], then: str) -> RequestCrashedInstances:
    count = "1 instance" if len(lost_on) == 1 else f"{len(lost_on)} instances"
    return RequestCrashedInstances(
        f"The request reached {count} of endpoint {endpoint} and got no answer: "
        + "; ".join(lost_on)
        + f". The request likely crashes the model (see the endpoint's log); {then}"
    )


def _drop_idle(instance: Instance) -> None:
    """After a failed connection the others to that instance are likely dead too."""
    idle, instance.idle = instance.idle, []
    for connection in idle:
        connection.close()
