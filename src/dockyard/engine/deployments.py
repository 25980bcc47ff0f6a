"""A deployment: the running instances of one endpoint configuration. It starts every variant's
instances and waits for /ping, then keeps them up — an instance that exits or stops answering is
replaced — until it is stopped. UpdateEndpoint runs a second deployment beside the first."""

from __future__ import annotations

import functools
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.contract.endpoints import (
    DEFAULT_STARTUP_SECONDS,
    STOP_GRACE_SECONDS,
    DeployedImage,
    ProductionVariantSummary,
)
from dockyard.contract.models import (
    ContainerDefinition,
    CreateEndpointConfigRequest,
    CreateModelRequest,
)
from dockyard.engine.context import EngineContext
from dockyard.engine.instances import (
    Instance,
    InstanceFailed,
    PreparedModel,
    prepare_model,
    start_instance,
)
from dockyard.engine.logs import LogWriter
from dockyard.engine.router import Variant

logger = logging.getLogger(__name__)

PING_INTERVAL = 5.0  # seconds between health checks of a running instance
UNHEALTHY_AFTER = 3  # failed pings in a row that get an instance replaced
_RETRY_PAUSE = 2.0


@dataclass
class VariantPlan:
    """One production variant of the configuration, with its model's container."""

    name: str
    model_name: str
    model: CreateModelRequest
    instance_count: int
    weight: float
    startup_seconds: float
    instance_type: str
    volume_gb: int | None = None

    @property
    def container(self) -> ContainerDefinition:
        return self.model.container


def variant_plans(
    config: CreateEndpointConfigRequest, models: Mapping[str, CreateModelRequest]
) -> list[VariantPlan]:
    """The variants of an endpoint config with their models (by name)."""
    plans = []
    for variant in config.production_variants:
        model = models[variant.model_name]
        plans.append(
            VariantPlan(
                name=variant.variant_name,
                model_name=variant.model_name,
                model=model,
                instance_count=variant.initial_instance_count,
                weight=variant.initial_variant_weight,
                startup_seconds=float(
                    variant.container_startup_health_check_timeout_in_seconds
                    or DEFAULT_STARTUP_SECONDS
                ),
                instance_type=variant.instance_type or "local",
            )
        )
    return plans


@dataclass(frozen=True)
class InstanceState:
    endpoint: str
    variant: str
    instance: str
    # starting (not yet past /ping), healthy (passed it; its deployment not yet the live one),
    # serving (in the router's rotation), exited (its container ended; being replaced)
    state: str
    in_flight: int  # requests the router has sent it and not had answered
    served: int = 0  # requests it answered
    started_at: float = 0.0  # epoch seconds its container started
    node: str = ""  # where it runs, as its backend describes the node

    @property
    def healthy(self) -> bool:
        """Whether the router sends it requests now: a live deployment publishes exactly its
        instances that passed /ping and have not exited (see `variants`)."""
        return self.state == "serving"


@dataclass
class _VariantState:
    plan: VariantPlan
    model: PreparedModel | None = None
    instances: list[Instance] = field(default_factory=list)
    failed_pings: dict[str, int] = field(default_factory=dict)
    next_number: int = 1


class Deployment:
    """Instances of one configuration of `endpoint`. `on_change` is called with the router's
    view whenever the set of healthy instances changes (only while the deployment is live)."""

    def __init__(
        self,
        ctx: EngineContext,
        endpoint: str,
        config_name: str,
        plans: Sequence[VariantPlan],
        folder: Path,
        logs: LogWriter,
        on_change: Callable[[list[Variant]], None],
    ) -> None:
        self.ctx = ctx
        self.endpoint = endpoint
        self.config_name = config_name
        self.folder = folder
        self._logs = logs
        self._on_change = on_change
        self._variants = [_VariantState(plan) for plan in plans]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._epoch = int(time.time())
        self.live = False  # True while the router sends this deployment's instances requests

    # -- starting -------------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare every variant and start its instances; return when all pass /ping. Raises
        InstanceFailed (everything started is stopped again) with a FailureReason."""
        try:
            for state in self._variants:
                plan = state.plan
                state.model = prepare_model(
                    self.ctx,
                    plan.model,
                    self.folder / plan.name,
                    functools.partial(self._platform_log, plan.name),
                )
            starts = [
                (state, state.next_number + i)
                for state in self._variants
                for i in range(state.plan.instance_count)
            ]
            for state in self._variants:
                state.next_number += state.plan.instance_count
            with ThreadPoolExecutor(max_workers=min(8, len(starts))) as pool:
                futures = [pool.submit(self._start_one, state, n) for state, n in starts]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                # The first failure is the reason; the instances still starting need not use
                # up the rest of their start-up window before the endpoint says Failed.
                failure = next((f.exception() for f in done if f.exception() is not None), None)
                if failure is not None:
                    self._stopping.set()
            if failure is not None:
                raise failure
        except BaseException:
            self.stop(grace=0)
            raise
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"endpoint-{self.endpoint}", daemon=True
        )
        self._supervisor.start()

    def _start_one(self, state: _VariantState, number: int) -> Instance:
        plan = state.plan
        assert state.model is not None
        name = f"{plan.name}-{number}"
        stream = f"{plan.name}/{name}-{self._epoch}"
        if self._stopping.is_set():
            raise InstanceFailed(f"{name} was stopped while starting")
        instance = start_instance(
            self.ctx,
            state.model,
            name=name,
            variant=plan.name,
            folder=self.folder / plan.name / str(number),
            env={},
            on_line=lambda line: self._logs.write(stream, line),
            instance_type=plan.instance_type,
            volume_gb=plan.volume_gb,
        )
        with self._lock:
            state.instances.append(instance)
        self._watch(instance)
        try:
            instance.wait_healthy(plan.startup_seconds, self._stopping)
        except InstanceFailed:
            with self._lock:
                if instance in state.instances:
                    state.instances.remove(instance)
            instance.kill()
            raise
        self._platform_log(plan.name, f"{name} passed the ping health check")
        with self._lock:
            state.failed_pings[name] = 0
        return instance

    def _watch(self, instance: Instance) -> None:
        def wait() -> None:
            instance.host.wait()
            self._wake.set()

        threading.Thread(target=wait, name=f"watch-{instance.name}", daemon=True).start()

    # -- the router's view ------------------------------------------------------------------

    def variants(self) -> list[Variant]:
        with self._lock:
            return [
                Variant(
                    state.plan.name,
                    state.plan.weight,
                    # Healthy once: in rotation until replaced (a slow ping under load is no crash).
                    tuple(i for i in state.instances if i.name in state.failed_pings),
                )
                for state in self._variants
            ]

    def instances(self) -> list[Instance]:
        with self._lock:
            return [i for state in self._variants for i in state.instances]

    def instance_states(self) -> list[InstanceState]:
        """Each instance of the deployment and where it is in its life (Prometheus, the console)."""
        with self._lock:
            return [
                InstanceState(
                    self.endpoint,
                    state.plan.name,
                    i.name,
                    "exited" if i.exited
                    else "serving" if self.live and i.name in state.failed_pings
                    else "healthy" if i.name in state.failed_pings
                    else "starting",
                    i.in_flight,
                    i.served,
                    i.started_at,
                    i.node.describe(),
                )
                for state in self._variants
                for i in state.instances
            ]  # fmt: skip

    def describe_variants(self) -> list[ProductionVariantSummary]:
        out = []
        for variant in self.variants():
            state = next(s for s in self._variants if s.plan.name == variant.name)
            image = state.plan.container.image
            out.append(
                ProductionVariantSummary(
                    variant_name=variant.name,
                    deployed_images=[DeployedImage(specified_image=image, resolved_image=image)],
                    current_weight=variant.weight,
                    desired_weight=variant.weight,
                    current_instance_count=len(variant.instances),
                    desired_instance_count=state.plan.instance_count,
                )
            )
        return out

    def _publish(self) -> None:
        if self.live:
            self._on_change(self.variants())

    # -- keeping instances up ---------------------------------------------------------------

    def _supervise(self) -> None:
        last_ping = time.monotonic()
        while not self._stopping.is_set():
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                last_ping = self._supervise_once(last_ping)
            except Exception:
                # An endpoint that nobody watches any more would look healthy for ever: log the
                # traceback and keep watching.
                logger.exception("endpoint %s: supervising its instances failed", self.endpoint)
                self._stopping.wait(_RETRY_PAUSE)

    def _supervise_once(self, last_ping: float) -> float:
        """Replace instances that exited; ping the others every PING_INTERVAL."""
        for state in self._variants:
            with self._lock:
                # Instances still starting are watched by their own start.
                dead = [i for i in state.instances if i.exited and i.name in state.failed_pings]
            for instance in dead:
                self._replace(
                    state,
                    instance,
                    f"{instance.name} exited with code {instance.host.returncode}",
                )
        if time.monotonic() - last_ping >= PING_INTERVAL:
            last_ping = time.monotonic()
            self._check_health()
        return last_ping

    def _check_health(self) -> None:
        for state in self._variants:
            with self._lock:
                running = [
                    i for i in state.instances if not i.exited and i.name in state.failed_pings
                ]
            for instance in running:
                if instance.ping():
                    with self._lock:
                        state.failed_pings[instance.name] = 0
                    continue
                with self._lock:
                    count = state.failed_pings.get(instance.name, 0) + 1
                    state.failed_pings[instance.name] = count
                if count >= UNHEALTHY_AFTER:
                    self._replace(
                        state, instance, f"{instance.name} failed {count} health checks in a row"
                    )

    def _replace(self, state: _VariantState, instance: Instance, why: str) -> None:
        """Take `instance` out of the router at once, then start another in its place."""
        with self._lock:
            if instance not in state.instances:
                return
            state.instances.remove(instance)
            state.failed_pings.pop(instance.name, None)
        self._publish()
        self._platform_log(state.plan.name, f"{why}; replacing it")
        threading.Thread(target=self._retire, args=(instance,), name="retire", daemon=True).start()
        threading.Thread(
            target=self._start_replacement, args=(state,), name="replace", daemon=True
        ).start()

    def _start_replacement(self, state: _VariantState) -> None:
        while not self._stopping.is_set():
            with self._lock:
                number = state.next_number
                state.next_number += 1
            try:
                self._start_one(state, number)
            except InstanceFailed as failed:
                self._platform_log(state.plan.name, f"replacement failed: {failed}; retrying")
                self._stopping.wait(_RETRY_PAUSE)
                continue
            except Exception:
                logger.exception("replacing an instance of %s failed", self.endpoint)
                self._stopping.wait(_RETRY_PAUSE)
                continue
            self._publish()
            return

    # -- weights and capacities (UpdateEndpointWeightsAndCapacities) --------------------------

    def resize(self, variant: str, weight: float | None, count: int | None) -> None:
        """Give `variant` a new weight at once and `count` instances: new ones join the router
        once they pass /ping; surplus ones (the newest) leave it first, then finish what they
        have in flight and stop. Raises InstanceFailed when a new instance does not start."""
        state = next(s for s in self._variants if s.plan.name == variant)
        if weight is not None:
            state.plan.weight = weight
            self._publish()
        if count is None or count == state.plan.instance_count:
            return
        with self._lock:
            current = len(state.instances)
            surplus = sorted(state.instances, key=lambda i: int(i.name.rsplit("-", 1)[1]))
            leaving = surplus[count:] if count < current else []
            for instance in leaving:
                state.instances.remove(instance)
                state.failed_pings.pop(instance.name, None)
            numbers = list(range(state.next_number, state.next_number + max(0, count - current)))
            state.next_number += len(numbers)
            state.plan.instance_count = count
        if leaving:
            self._publish()
            for instance in leaving:
                self._platform_log(variant, f"{instance.name} leaves (scaled in to {count})")
            retire = [threading.Thread(target=self._drain_and_retire, args=(i,)) for i in leaving]
            for thread in retire:
                thread.start()
            for thread in retire:
                thread.join()
        if numbers:
            with ThreadPoolExecutor(max_workers=min(8, len(numbers))) as pool:
                errors = [
                    f.exception() for f in [pool.submit(self._start_one, state, n) for n in numbers]
                ]
            self._publish()
            failure = next((e for e in errors if e is not None), None)
            if failure is not None:
                raise failure

    def _drain_and_retire(self, instance: Instance) -> None:
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while instance.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        self._retire(instance)

    def _retire(self, instance: Instance) -> None:
        instance.stop(grace=STOP_GRACE_SECONDS)
        shutil.rmtree(instance.folder, ignore_errors=True)

    # -- stopping -------------------------------------------------------------------------------

    def drain(self, timeout: float) -> None:
        """Wait until no request is in flight on this deployment's instances (after the router
        stopped sending new ones), at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(i.in_flight == 0 for i in self.instances()):
                return
            time.sleep(0.01)

    def stop(self, grace: float) -> None:
        """Stop every instance (SIGTERM, SIGKILL after `grace`) and remove the folders."""
        self._stopping.set()
        self._wake.set()
        self.live = False
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout=10)
        instances = self.instances()
        with self._lock:
            for state in self._variants:
                state.instances.clear()
        if instances:
            with ThreadPoolExecutor(max_workers=len(instances)) as pool:
                list(pool.map(lambda i: i.stop(grace), instances))
        shutil.rmtree(self.folder, ignore_errors=True)

    def _platform_log(self, variant: str, message: str) -> None:
        logger.info("endpoint %s: %s", self.endpoint, message)
        self._logs.write(f"{variant}/dockyard-{self._epoch}", message)
