"""Two servers on one database: two metadata stores on the same SQLite file or PostgreSQL
database, many threads creating, updating and transitioning the same and different records at
once. Nothing is lost, nothing is doubled, nothing breaks, and the only errors are the
documented ones (a name taken, a transition the table refuses, a tag limit, a resource gone)."""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dockyard.contract.errors import (
    ConflictError,
    InvalidTransition,
    NotFoundError,
    ResourceInUse,
    ResourceLimitExceeded,
    ValidationError,
)
from dockyard.contract.training_jobs import (
    PRIMARY_OF,
    SECONDARY_TRANSITIONS,
    SecondaryStatus,
    check_transition,
)
from dockyard.storage.metadata import MetadataStore, MetricPoint
from dockyard.storage.records import ENDPOINTS, MODELS, TRAINING_JOBS
from tests.storage.metadata_records import first_transition, record, training_job

THREADS = 8
Stores = tuple[MetadataStore, MetadataStore]


@pytest.fixture
def stores(metadata_url: str) -> Iterator[Stores]:
    """Two stores as two servers would open them: each its own engine and connection pool."""
    first, second = MetadataStore(metadata_url), MetadataStore(metadata_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def _race(
    stores: Stores, work: Callable[[MetadataStore, int], None], threads: int = THREADS
) -> None:
    """Run `work(store, i)` in `threads` threads at once, alternating the stores; re-raise the
    first error a thread did not expect."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            work(stores[i % 2], i)
        except BaseException as exc:  # reported below, with its traceback
            errors.append(exc)

    running = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(timeout=240)
        assert not thread.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


def test_creates_of_the_same_and_different_names(stores: Stores) -> None:
    shared = [f"shared-{n}" for n in range(20)]
    created: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def work(store: MetadataStore, i: int) -> None:
        rng = random.Random(i)
        names = [*shared, *(f"own-{i}-{n}" for n in range(5))]
        rng.shuffle(names)
        for name in names:
            try:
                store.insert_resource(MODELS, record(MODELS, name), "exists")
                store.insert_training_job(training_job(name), first_transition())
                with lock:
                    created.append(name)
            except (ValidationError, ResourceInUse) as exc:
                assert isinstance(exc, ValidationError), "the model went in, the job did not"
                with lock:
                    refused.append(name)

    _race(stores, work)
    owned = {f"own-{i}-{n}" for i in range(THREADS) for n in range(5)}
    assert sorted(created) == sorted([*shared, *owned])  # each name created exactly once
    assert sorted(refused) == sorted(shared * (THREADS - 1))
    first, second = stores
    for store in stores:
        listed = store.list_resources(MODELS, limit=1000)
        assert sorted(r.name for r in listed) == sorted([*shared, *owned])
        jobs = store.resources_of_kind(TRAINING_JOBS)
        assert sorted(r.name for r in jobs) == sorted([*shared, *owned])
    for name in shared:
        assert first.transitions(name) == [first_transition()]  # no second first transition
        assert second.resource(MODELS, name) == record(MODELS, name)


def test_transitions_of_the_same_jobs_at_once_follow_the_table(stores: Stores) -> None:
    jobs = [f"job-{n}" for n in range(6)]
    for name in jobs:
        stores[0].insert_training_job(training_job(name), first_transition())
    applied: dict[str, int] = dict.fromkeys(jobs, 0)
    lock = threading.Lock()
    terminal = {s for s, after in SECONDARY_TRANSITIONS.items() if not after}

    def work(store: MetadataStore, i: int) -> None:
        rng = random.Random(i)
        if i == THREADS - 1:  # one thread writes metrics and messages meanwhile
            for k in range(60):
                name = jobs[k % len(jobs)]
                store.add_metric_points(name, [MetricPoint("loss", float(k), float(k))])
                store.set_transition_message(name, f"message {k}")
            return
        for _ in range(300):
            open_jobs = [n for n in jobs if store.training_job(n).state.secondary_status
                         not in terminal]  # fmt: skip
            if not open_jobs:
                return
            name, target = rng.choice(open_jobs), rng.choice(list(SecondaryStatus))

            def check(current: str, target: SecondaryStatus = target) -> str:
                return check_transition(SecondaryStatus(current), target).value

            try:
                store.transition(
                    name,
                    target.value,
                    1000.0 + rng.random(),
                    None,
                    check,
                    final=not SECONDARY_TRANSITIONS[target],
                )
            except InvalidTransition:
                continue
            with lock:
                applied[name] += 1

    _race(stores, work)
    for name in jobs:
        steps = stores[1].transitions(name)
        statuses = [SecondaryStatus(t.status) for t in steps]
        assert statuses[0] is SecondaryStatus.STARTING
        for before, after in itertools.pairwise(statuses):
            assert after in SECONDARY_TRANSITIONS[before], statuses
        assert len(steps) == applied[name] + 1  # every approved transition, once
        for earlier, later in itertools.pairwise(steps):
            assert earlier.end_time == later.start_time  # each closed by the next, no overlap
        assert [t for t in steps if t.end_time is None] == []  # all ended: the last is final
        job = stores[0].training_job(name)
        assert statuses[-1] in terminal and job.state.secondary_status is statuses[-1]
        assert job.status == PRIMARY_OF[statuses[-1]].value
    assert sum(len(stores[1].metric_series(name, "loss")) for name in jobs) == 60


def test_updates_of_one_resource_at_once_lose_nothing(stores: Stores) -> None:
    """A compare-and-set counter in the endpoint's state, beside writers of another field of
    that state: each write reads the state it changes, so no increment is lost."""
    stores[0].insert_resource(ENDPOINTS, record(ENDPOINTS, "e"), "exists")
    increments = 25
    done = [0] * THREADS

    def count(store: MetadataStore) -> int:
        found = store.resource(ENDPOINTS, "e")
        assert found is not None
        override = found.state.variant_overrides.get("AllTraffic")
        return 0 if override is None or override.count is None else int(override.count)

    def work(store: MetadataStore, i: int) -> None:
        if i % 4 == 3:  # writers of the failure reason only
            for k in range(increments):
                store.update_resource(ENDPOINTS, "e", state={"failure_reason": f"{i}-{k}"})
            return
        while done[i] < increments:
            seen = count(store)

            def unchanged(current: Any, seen: int = seen) -> None:
                override = current.state.variant_overrides.get("AllTraffic")
                if (0 if override is None else override.count) != seen:
                    raise ConflictError("changed meanwhile")

            try:
                store.update_resource(
                    ENDPOINTS,
                    "e",
                    state={"variant_overrides": {"AllTraffic": {"count": seen + 1}}},
                    check=unchanged,
                )
            except ConflictError:
                continue
            done[i] += 1

    _race(stores, work)
    assert count(stores[0]) == count(stores[1]) == sum(done) == 6 * increments
    final = stores[1].resource(ENDPOINTS, "e")
    assert final is not None and final.state.failure_reason is not None


def test_tags_at_once_keep_the_limit_and_the_keys(stores: Stores) -> None:
    model = record(MODELS, "m")
    shared = record(MODELS, "shared")
    for stored in (model, shared):
        stores[0].insert_resource(MODELS, stored, "exists")
    outcome: dict[int, str] = {}

    def work(store: MetadataStore, i: int) -> None:
        try:
            store.add_tags(model.arn, [(f"t{i}-{k}", "v") for k in range(10)], 50)
            outcome[i] = "added"
        except ResourceLimitExceeded:
            outcome[i] = "refused"
        for k in range(20):  # the same key from every thread: one row, never a duplicate
            store.add_tags(shared.arn, [("owner", f"{i}-{k}"), (f"k{k % 3}", str(i))], 50)

    _race(stores, work)
    added = sorted(i for i, result in outcome.items() if result == "added")
    assert len(added) == 5 and len(outcome) == THREADS
    tags = stores[1].tags(model.arn)
    assert sorted(key for key, _ in tags) == sorted(f"t{i}-{k}" for i in added for k in range(10))
    assert [key for key, _ in stores[0].tags(shared.arn)] == ["owner", "k0", "k1", "k2"]


def test_tags_added_while_their_resource_is_deleted_are_not_left_behind(stores: Stores) -> None:
    models = [record(MODELS, f"m-{n}") for n in range(10)]
    for stored in models:
        stores[0].insert_resource(MODELS, stored, "exists")

    def work(store: MetadataStore, i: int) -> None:
        for stored in models:
            if i == 0:
                assert store.delete_resource(MODELS, stored.name)
                continue
            with contextlib.suppress(NotFoundError):  # deleted first: refused, as the API does
                store.add_tags(stored.arn, [(f"k{i}", "v")], 50)

    _race(stores, work, threads=4)
    for stored in models:
        assert stores[1].resource(MODELS, stored.name) is None
        assert stores[1].tags(stored.arn) == []


def test_a_follower_of_a_log_stream_misses_no_line(stores: Stores) -> None:
    """Writers on both servers append to one stream while a reader follows it as GetLogEvents'
    forward token does (the events after the last id it saw)."""
    writers, batches, size = 4, 40, 5
    seen: list[tuple[int, str]] = []
    finished = threading.Event()
    group, stream = "/aws/sagemaker/TrainingJobs", "job/algo-1-1"

    def follow(store: MetadataStore) -> None:
        after = None
        while True:
            last_round = finished.is_set()
            events = store.log_events(group, stream, after=after)
            seen.extend((e.sequence, e.message) for e in events)
            if events:
                after = events[-1].sequence
            elif last_round:
                return
            else:
                time.sleep(0.002)

    def work(store: MetadataStore, i: int) -> None:
        if i == writers:
            follow(store)
            return
        for b in range(batches):
            lines = [(1_796_208_297_000 + b, f"writer {i} batch {b} line {n}") for n in range(size)]
            store.append_log_events(group, stream, lines)

    def run(store: MetadataStore, i: int) -> None:
        try:
            work(store, i)
        finally:
            if i < writers:
                with lock:
                    left[0] -= 1
                    if left[0] == 0:
                        finished.set()

    lock, left = threading.Lock(), [writers]
    _race(stores, run, threads=writers + 1)
    written = {f"writer {i} batch {b} line {n}" for i in range(writers) for b in range(batches)
               for n in range(size)}  # fmt: skip
    messages = [message for _, message in seen]
    assert len(messages) == len(set(messages)) == len(written)  # each once, none missed
    assert set(messages) == written
    ids = [sequence for sequence, _ in seen]
    assert ids == sorted(ids)
    stored = stores[1].log_events(group, stream, limit=100_000)
    assert [(e.sequence, e.message) for e in stored] == seen
