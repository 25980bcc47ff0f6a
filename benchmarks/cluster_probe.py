"""Where a job's or an instance's time goes on each backend: the placement's steps (place,
prepare, load, prepare_image, start, collect, release; on Ray also the actors' start and the
placement group's removal) timed by wrapping the backends' classes while the probe is on.
Nothing in src/ changes, and the classes are as they were when it is off."""

from __future__ import annotations

import contextlib
import functools
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.backends import local as local_backend
from dockyard.backends import ray_backend

# Each step as the tables name it, in the order a job goes through them.
PLACE = "place: placement group made and ready (local: capacity gate)"
ACTORS = "place: actors started, their nodes known"
PREPARE = "prepare: the host's volume made and mounted"
LOAD = "load: the staged /opt/ml copied onto the volume"
IMAGE = "prepare_image: the image resolved and made ready"
START = "start: network made, sandbox started"
RUNS = "the host runs, its exit seen by the engine"
HEALTH = "health check: GET /ping until InService is seen"
COLLECT = "collect: /opt/ml/model and output copied back"
RELEASE = "release (all of it)"
CLOSE = "release: each actor closes its host, then is killed"
REMOVE_GROUP = "release: placement group removed (until Ray says REMOVED)"
ENGINE = "the engine's own work (the rest of the total)"

# The same, in a few words, for the lines that list them.
SHORT = {
    PLACE: "placement group",
    ACTORS: "actors' start",
    PREPARE: "volume (prepare)",
    LOAD: "load",
    IMAGE: "image",
    START: "network + sandbox start",
    RUNS: "host run until its exit is seen",
    HEALTH: "health check",
    COLLECT: "collect",
    RELEASE: "release",
    ENGINE: "engine",
}

_METHODS = {
    "prepare": PREPARE,
    "load": LOAD,
    "prepare_image": IMAGE,
    "start": START,
    "collect": COLLECT,
    "release": RELEASE,
}
# The top-level steps: what they do not cover is the engine's own work.
TOP_LEVEL = (PLACE, ACTORS, PREPARE, LOAD, IMAGE, START, RUNS, HEALTH, COLLECT, RELEASE)


@dataclass
class Call:
    what: str
    start: float
    end: float
    node: str | None = None  # the address of the node a placement's first host went to


@dataclass
class PlacementProbe:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def on(self) -> Iterator[PlacementProbe]:
        """The backends' classes wrapped until the block ends."""
        with contextlib.ExitStack() as undo:
            for owner in (local_backend.LocalPlacement, ray_backend.RayPlacement):
                for method, what in _METHODS.items():
                    undo.enter_context(self._wrapped(owner, method, what))
            undo.enter_context(self._wrapped(local_backend.LocalBackend, "place", PLACE))
            undo.enter_context(self._wrapped(ray_backend.RayBackend, "place", PLACE))
            undo.enter_context(self._wrapped(ray_backend.RayPlacement, "start_actors", ACTORS))
            # Module functions that release looks up by name when it runs.
            undo.enter_context(self._wrapped(ray_backend, "_close_actor", CLOSE))
            undo.enter_context(self._wrapped(ray_backend, "_remove_group", REMOVE_GROUP))
            yield self

    def take(self) -> list[Call]:
        with self.lock:
            taken, self.calls = self.calls, []
        return taken

    @contextlib.contextmanager
    def _wrapped(self, owner: Any, name: str, what: str) -> Iterator[None]:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = None
            try:
                result = original(*args, **kwargs)
                return result
            finally:
                self._record(what, start, _node_of(result) if what == PLACE else None)

        setattr(owner, name, timed)
        try:
            yield
        finally:
            setattr(owner, name, original)

    def _record(self, what: str, start: float, node: str | None) -> None:
        with self.lock:
            self.calls.append(Call(what, start, time.perf_counter(), node))


def _node_of(placement: Any) -> str | None:
    if placement is None:
        return None
    return str(placement.node_of(placement.hosts[0]).address)


@dataclass
class Run:
    """One job or endpoint start: its total and the probe's calls during it."""

    total_ms: float
    calls: list[Call]
    start: float

    @property
    def node(self) -> str | None:
        return next((c.node for c in self.calls if c.node is not None), None)

    def steps(self) -> dict[str, float]:
        """ms in each step; PLACE on Ray is until the actors start (ACTORS is its own row); RUNS
        is from start's return to collect's call (a job), HEALTH from start's return to the end
        (an endpoint, which collects nothing); ENGINE is the total minus the top-level steps."""
        out: dict[str, float] = {}
        for call in self.calls:
            out[call.what] = out.get(call.what, 0.0) + (call.end - call.start) * 1000
        actors = [c for c in self.calls if c.what == ACTORS]
        if actors and PLACE in out:
            out[PLACE] -= out[ACTORS]
        starts = [c for c in self.calls if c.what == START]
        collects = [c for c in self.calls if c.what == COLLECT]
        if starts and collects:
            out[RUNS] = (collects[0].start - starts[-1].end) * 1000
        elif starts:
            out[HEALTH] = self.total_ms - (starts[-1].end - self.start) * 1000
        out[ENGINE] = self.total_ms - sum(out.get(step, 0.0) for step in TOP_LEVEL)
        return out


def step_medians(runs: Sequence[Run]) -> dict[str, float]:
    """Each step's median over `runs` (over the runs that had it)."""
    per_step: dict[str, list[float]] = {}
    for run in runs:
        for what, ms in run.steps().items():
            per_step.setdefault(what, []).append(ms)
    order = [*TOP_LEVEL, CLOSE, REMOVE_GROUP, ENGINE]
    return {what: statistics.median(per_step[what]) for what in order if what in per_step}


def timed_run(probe: PlacementProbe, action: Callable[[], float | None]) -> Run:
    """`action` timed, with the probe's calls made meanwhile; an action that returns its own
    ms (an endpoint's create, timed until InService is seen) gives the total."""
    probe.take()
    start = time.perf_counter()
    own = action()
    total = (time.perf_counter() - start) * 1000 if own is None else own
    return Run(total, probe.take(), start)
