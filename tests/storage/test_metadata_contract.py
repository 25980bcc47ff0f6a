"""The metadata store's contract, every public method, run on each backend (a real SQLite file and
a real PostgreSQL database, en-US sorted): both answer the same. A new backend is done when this
suite and tests/storage/test_metadata_concurrency.py pass on it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from dockyard.contract.errors import (
    InvalidTransition,
    NotFoundError,
    ResourceInUse,
    ResourceLimitExceeded,
    ValidationError,
)
from dockyard.contract.training_jobs import SecondaryStatus, check_transition
from dockyard.storage.log_events import LogEvent, LogGroup, LogStream
from dockyard.storage.metadata import (
    _MIGRATIONS,
    EndpointMetricBucket,
    MetadataStore,
    MetricPoint,
    Transition,
)
from dockyard.storage.records import ENDPOINTS, MODELS, TRAINING_JOBS, TRANSFORM_JOBS, Kind
from dockyard.storage.tables import Base
from tests.storage.metadata_records import (
    BASE,
    RESOURCE_KINDS,
    first_transition,
    record,
    training_job,
)

TABLES = {"alembic_version", "resources", "status_transitions", "metric_points", "log_events",
          "tags", "endpoint_metric_buckets"}  # fmt: skip
NOW_MS = 1_796_208_297_291  # milliseconds since 1970: past 2**31, as every log time is


@pytest.fixture
def store(metadata_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore(metadata_url)
    try:
        yield opened
    finally:
        opened.close()


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _version(store: MetadataStore) -> str:
    with store.engine.connect() as connection:
        return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar())


def _allow(target: SecondaryStatus) -> Any:
    """The check the engine's lifecycle passes: the transition table decides."""
    return lambda current: check_transition(SecondaryStatus(current), target).value


# -- migrations ------------------------------------------------------------------------------


def test_migrations_from_empty_to_head_then_again(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    try:
        assert set(inspect(store.engine).get_table_names()) == TABLES
        assert _version(store) == _head()
        store.insert_resource(MODELS, record(MODELS, "kept"), "exists")
        store.migrate()  # a second run at head changes nothing
        assert _version(store) == _head()
        assert store.resource(MODELS, "kept") is not None
    finally:
        store.close()
    again = MetadataStore(metadata_url)  # every server start migrates
    try:
        assert _version(again) == _head()
        assert again.resource(MODELS, "kept") == record(MODELS, "kept")
    finally:
        again.close()


def test_the_migrations_make_the_tables_the_store_declares(store: MetadataStore) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    if store.engine.dialect.name == "sqlite":
        # Migration 0006 widens names and ARNs where a length is enforced; SQLite's is not.
        # Column changes come as a list of one (op, schema, table, column, info, old, new).
        assert {(c[2], c[3], str(c[5]), str(c[6])) for [c] in differences} == {
            ("resources", "name", "VARCHAR(63)", "VARCHAR(256)"),
            ("resources", "arn", "VARCHAR(256)", "VARCHAR(512)"),
        }
    else:
        assert differences == []


def test_servers_starting_together_on_an_empty_database_migrate_once(metadata_url: str) -> None:
    starting = threading.Barrier(4)
    opened: list[MetadataStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        starting.wait()
        try:
            opened.append(MetadataStore(metadata_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert [str(error) for error in errors] == [] and len(opened) == 4
        assert all(_version(store) == _head() for store in opened)
    finally:
        for store in opened:
            store.close()


# -- resources of every kind -----------------------------------------------------------------


@pytest.mark.parametrize("kind", RESOURCE_KINDS, ids=lambda kind: kind.name)
def test_create_get_update_delete(store: MetadataStore, kind: Kind[Any, Any]) -> None:
    stored = record(kind, "first-1")
    store.insert_resource(kind, stored, "exists")
    assert store.resource(kind, "first-1") == stored  # times to the microsecond, typed back
    assert store.resource(kind, "other") is None
    assert store.resource(TRAINING_JOBS, "first-1") is None  # names are per kind

    with pytest.raises(ValidationError, match=r"^already there$"):
        store.insert_resource(kind, record(kind, "first-1", created=BASE + 9), "already there")
    with pytest.raises(ResourceInUse, match="in use"):
        store.insert_resource(kind, record(kind, "first-1"), "in use", ResourceInUse)
    assert store.resource(kind, "first-1") == stored  # the refused one changed nothing

    if kind in (ENDPOINTS, TRANSFORM_JOBS):
        field = "failure_reason"
        store.update_resource(kind, "first-1", status="Failed", state={field: "why"}, at=BASE + 5)
        updated = store.resource(kind, "first-1")
        assert updated is not None and updated.status == "Failed"
        assert updated.state.failure_reason == "why" and updated.last_modified_time == BASE + 5

        def refuse(current: Any) -> None:
            assert current.status == "Failed" and current.state.failure_reason == "why"
            raise InvalidTransition("not from Failed")

        with pytest.raises(InvalidTransition):
            store.update_resource(kind, "first-1", status="InService", check=refuse)
        store.update_resource(kind, "first-1", state={field: None}, at=BASE + 6)  # None clears
        cleared = store.resource(kind, "first-1")
        assert cleared is not None and cleared.status == "Failed"
        assert cleared.state.failure_reason is None and cleared.last_modified_time == BASE + 6
    store.update_resource(kind, "absent", status="Failed")  # nothing to update: nothing happens
    assert store.resource(kind, "absent") is None

    store.add_tags(stored.arn, [("team", "ml")], 50)
    assert store.delete_resource(kind, "first-1") is True
    assert store.resource(kind, "first-1") is None and not store.arn_exists(stored.arn)
    assert store.tags(stored.arn) == []  # its tags went with it
    assert store.delete_resource(kind, "first-1") is False
    store.insert_resource(kind, stored, "exists")  # the name is free again
    assert store.tags(stored.arn) == []


# Names whose order differs between byte order and a locale's (en-US: a, a-c, ab, B).
LISTED = ["B-2", "a", "a-c", "ab", "Ab-3", "beta-1", "Beta-2", "alpha-9", "zz", "A0"]
STATUSES = ["InService", "Failed", "Creating", "OutOfService"]


def _listed_rows(store: MetadataStore) -> list[dict[str, Any]]:
    rows = []
    for i, name in enumerate(LISTED):
        created = BASE + (i % 4) * 10.5  # shared creation times: ties go by name
        modified = created + (7 * i) % 11
        status = STATUSES[i % len(STATUSES)]
        store.insert_resource(ENDPOINTS, record(ENDPOINTS, name, created, status, modified), "x")
        rows.append({"name": name, "created": created, "modified": modified, "status": status})
    return rows


def _expected(rows: list[dict[str, Any]], **query: Any) -> list[str]:
    contains = query.get("name_contains")
    chosen = [
        r
        for r in rows
        if (not contains or contains.lower() in r["name"].lower())
        and query.get("status_equals") in (None, r["status"])
        and r["created"] > query.get("creation_after", -1)
        and r["created"] < query.get("creation_before", 1e12)
        and r["modified"] > query.get("modified_after", -1)
        and r["modified"] < query.get("modified_before", 1e12)
    ]
    key = {"Name": "name", "Status": "status", "CreationTime": "created"}[
        query.get("sort_by", "CreationTime")
    ]
    # Python compares code points, as bytes of UTF-8 do; ties go by name, ascending (a stable
    # sort keeps them so in either direction).
    by_name = sorted(chosen, key=lambda r: r["name"])
    ordered = sorted(by_name, key=lambda r: r[key], reverse=query.get("descending", True))
    return [r["name"] for r in ordered]


QUERIES: list[dict[str, Any]] = [
    {},
    {"sort_by": "Name", "descending": False},
    {"sort_by": "Name"},
    {"sort_by": "Status", "descending": False},
    {"sort_by": "Status"},
    {"sort_by": "CreationTime", "descending": False},
    {"name_contains": "a-"},
    {"name_contains": "AB"},  # case is ignored
    {"name_contains": "beta", "sort_by": "Name", "descending": False},
    {"name_contains": "%"},  # LIKE's wildcards are plain characters
    {"name_contains": "_"},
    {"status_equals": "Failed"},
    {"creation_after": BASE + 10, "creation_before": BASE + 31},
    {"modified_after": BASE + 15, "sort_by": "Name", "descending": False},
    {"modified_before": BASE + 15},
]


@pytest.mark.parametrize("query", QUERIES, ids=str)
def test_list_filters_sorts_and_pages(store: MetadataStore, query: dict[str, Any]) -> None:
    rows = _listed_rows(store)
    expected = _expected(rows, **query)
    whole = [row.name for row in store.list_resources(ENDPOINTS, limit=100, **query)]
    assert whole == expected
    paged: list[str] = []
    for offset in range(0, len(LISTED) + 3, 3):
        paged += [
            row.name for row in store.list_resources(ENDPOINTS, offset=offset, limit=3, **query)
        ]
    assert paged == expected
    assert store.list_resources(MODELS, limit=100, **query) == []  # other kinds are apart


def test_status_counts(store: MetadataStore) -> None:
    assert store.status_counts(TRAINING_JOBS) == {}
    for name in ("job-1", "job-2", "job-3"):
        store.insert_training_job(training_job(name), first_transition())
    store.transition("job-2", "Failed", BASE + 1, "boom", _allow(SecondaryStatus.FAILED))
    store.insert_resource(MODELS, record(MODELS, "m"), "exists")  # another kind, not counted
    assert store.status_counts(TRAINING_JOBS) == {"InProgress": 2, "Failed": 1}
    assert store.status_counts(TRANSFORM_JOBS) == {}


def test_listed_rows_and_resources_of_kind(store: MetadataStore) -> None:
    _listed_rows(store)
    first = store.list_resources(ENDPOINTS, sort_by="Name", descending=False, limit=1)[0]
    assert (first.name, first.status, first.creation_time) == ("A0", "Failed", BASE + 10.5)
    assert first.arn == record(ENDPOINTS, "A0").arn and first.state.endpoint_config_name == "c"
    assert first.last_modified_time == BASE + 10.5 + 8
    failed = store.resources_of_kind(ENDPOINTS, ["Failed", "Creating"])
    assert sorted(r.name for r in failed) == sorted(
        n for i, n in enumerate(LISTED) if STATUSES[i % 4] in ("Failed", "Creating")
    )
    assert len(store.resources_of_kind(ENDPOINTS)) == len(LISTED)
    assert store.resources_of_kind(ENDPOINTS, []) == []
    assert store.resources_of_kind(MODELS) == []


# -- training jobs: transitions, metrics -----------------------------------------------------


def test_training_job_and_its_transitions(store: MetadataStore) -> None:
    job = training_job("job-1")
    store.insert_training_job(job, first_transition())
    assert store.training_job("job-1") == job
    with pytest.raises(ResourceInUse, match="job-1 already exists"):
        store.insert_training_job(training_job("job-1", BASE + 1), first_transition(BASE + 1))
    assert store.training_job("job-1") == job
    assert store.transitions("job-1") == [first_transition()]  # no second first transition
    with pytest.raises(NotFoundError):
        store.training_job("absent")
    with pytest.raises(NotFoundError):
        store.training_job_view("absent")
    with pytest.raises(NotFoundError):
        store.transition("absent", "Training", BASE, None, _allow(SecondaryStatus.TRAINING))

    steps = [SecondaryStatus.DOWNLOADING, SecondaryStatus.TRAINING, SecondaryStatus.UPLOADING]
    for i, status in enumerate(steps, start=1):
        store.transition("job-1", status.value, BASE + i, None, _allow(status))
    with pytest.raises(InvalidTransition):  # the check refuses: nothing is written
        store.transition("job-1", "Training", BASE + 8, "no", _allow(SecondaryStatus.TRAINING))
    store.set_transition_message("job-1", "Uploading the model")
    store.set_transition_message("absent", "nobody's")  # no job: nothing happens
    store.transition(
        "job-1",
        "Completed",
        BASE + 9,
        "Training job completed",
        _allow(SecondaryStatus.COMPLETED),
        {"training_start_time": BASE + 2, "training_end_time": BASE + 9},
        final=True,
    )
    view = store.training_job_view("job-1")
    assert (
        view.transitions
        == store.transitions("job-1")
        == [
            Transition("Starting", BASE, BASE + 1, "Starting the training job"),
            Transition("Downloading", BASE + 1, BASE + 2, None),
            Transition("Training", BASE + 2, BASE + 3, None),
            Transition("Uploading", BASE + 3, BASE + 9, "Uploading the model"),
            Transition("Completed", BASE + 9, BASE + 9, "Training job completed"),
        ]
    )
    done = view.record
    assert done == store.training_job("job-1")
    assert (done.status, done.last_modified_time) == ("Completed", BASE + 9)
    assert done.state.secondary_status is SecondaryStatus.COMPLETED
    assert (done.state.training_start_time, done.state.training_end_time) == (BASE + 2, BASE + 9)
    assert done.request == job.request and done.creation_time == job.creation_time
    assert [r.name for r in store.list_resources(TRAINING_JOBS, status_equals="Completed")] == [
        "job-1"
    ]


def test_a_failure_message_with_a_nul_reads_back_the_same_on_both(store: MetadataStore) -> None:
    store.insert_training_job(training_job("job-1"), first_transition())
    reason = "exit 1: \x00binary\x00 output é"
    fields = {"failure_reason": reason}
    store.transition("job-1", "Failed", BASE + 1, reason, _allow(SecondaryStatus.FAILED), fields)
    view = store.training_job_view("job-1")
    assert view.transitions[-1].message == "exit 1: \ufffdbinary\ufffd output é"
    assert view.record.state.failure_reason == reason  # JSON keeps it escaped, unchanged


def test_metric_points(store: MetadataStore) -> None:
    store.insert_training_job(training_job("job-1"), first_transition())
    store.add_metric_points("job-1", [])
    points = [
        MetricPoint("loss", 0.1 + 0.2, BASE + 1.000001),
        MetricPoint("alpha", 1e-300, BASE + 2),
        MetricPoint("Zeta", -2.5e300, BASE + 3),
        MetricPoint("loss", 0.25, BASE + 4),
    ]
    store.add_metric_points("job-1", points[:2])
    store.add_metric_points("job-1", points[2:])
    # The last value of each metric, by name in byte order (upper case first).
    expected = [points[2], points[1], points[3]]
    assert store.final_metrics("job-1") == expected
    assert store.training_job_view("job-1").final_metrics == expected
    assert store.metric_series("job-1", "loss") == [points[0], points[3]]  # floats exact
    assert store.metric_series("job-1", "LOSS") == [] and store.final_metrics("other") == []


def test_metric_points_keep_their_host(store: MetadataStore) -> None:
    store.insert_training_job(training_job("job-1"), first_transition())
    points = [
        MetricPoint("loss", 0.9, BASE + 1),  # algo-1's, as every point before hosts were kept
        MetricPoint("loss", 0.8, BASE + 2, "algo-2"),
        MetricPoint("acc", 0.5, BASE + 2, "algo-2"),
        MetricPoint("loss", 0.7, BASE + 3, "algo-1"),
        MetricPoint("loss", 0.6, BASE + 4, "algo-2"),
    ]
    store.add_metric_points("job-1", points)
    store.add_metric_points("job-2", [MetricPoint("loss", 1.0, BASE, "algo-3")])
    assert points[0].host == "algo-1"
    loss = [points[0], points[1], points[3], points[4]]
    assert store.metric_series("job-1", "loss") == loss
    assert store.metric_series("job-1", "loss", host="algo-2") == [points[1], points[4]]
    assert store.metric_series("job-1", "loss", host="algo-9") == []
    # start inclusive, end exclusive, with or without a host
    assert store.metric_series("job-1", "loss", start=BASE + 2, end=BASE + 4) == loss[1:3]
    assert store.metric_series("job-1", "loss", "algo-2", BASE + 2.5) == [points[4]]
    assert store.metric_series("job-1", "loss", end=BASE + 1) == []
    # FinalMetricDataList: the last value of each metric, whichever host printed it.
    assert store.final_metrics("job-1") == [points[2], points[4]]
    assert store.training_job_view("job-1").final_metrics == [points[2], points[4]]
    assert store.training_metric_keys("job-1") == [
        ("job-1", "acc", "algo-2"),
        ("job-1", "loss", "algo-1"),
        ("job-1", "loss", "algo-2"),
    ]
    assert store.training_metric_keys() == [
        *store.training_metric_keys("job-1"),
        ("job-2", "loss", "algo-3"),
    ]
    assert store.training_metric_keys("none") == []


def _bucket(
    start: int,
    instance: str = "AllTraffic-1",
    values: tuple[float, ...] = (1.0,),
    metric: str = "Invocations",
    endpoint: str = "ep",
    variant: str = "AllTraffic",
    histogram: dict[int, int] | None = None,
) -> EndpointMetricBucket:
    return EndpointMetricBucket(
        endpoint, variant, instance, metric, start, len(values), sum(values), min(values),
        max(values), histogram or {},
    )  # fmt: skip


T0 = 1_796_208_297  # an epoch second


def test_endpoint_metric_buckets(store: MetadataStore) -> None:
    store.add_endpoint_metric_buckets([])
    latency = {-100_000: 1, 57: 2, 300: 1}  # bins, the zero bin among them, as JSON keys
    first = [
        _bucket(T0, values=(1.0, 1.0)),
        _bucket(T0, "AllTraffic-2"),
        _bucket(T0 + 1),
        _bucket(T0 + 2, variant="Canary", instance="Canary-1"),
        _bucket(T0, values=(0.0, 10.5, 3.25, 2e9), metric="ModelLatency", histogram=latency),
        _bucket(T0 + 5, endpoint="other"),
    ]
    store.add_endpoint_metric_buckets(first)
    assert store.endpoint_metric_buckets("ep", "Invocations") == [
        first[0], first[1], first[2], first[3]
    ]  # fmt: skip
    assert store.endpoint_metric_buckets("ep", "ModelLatency") == [first[4]]
    assert store.endpoint_metric_buckets("ep", "Invocations", variant="Canary") == [first[3]]
    assert store.endpoint_metric_buckets("ep", "Invocations", instance="AllTraffic-2") == [first[1]]
    # start inclusive, end exclusive
    assert store.endpoint_metric_buckets("ep", "Invocations", start=T0 + 1, end=T0 + 2) == [
        first[2]
    ]
    assert store.endpoint_metric_buckets("ep", "Invocations", "AllTraffic", None, T0, T0 + 1) == [
        first[0], first[1]
    ]  # fmt: skip
    assert store.endpoint_metric_buckets("ep", "Nothing") == []
    assert store.endpoint_metric_buckets("none", "Invocations") == []

    # The same key again is merged: counts and sums added, extremes kept, histograms added.
    store.add_endpoint_metric_buckets(
        [
            _bucket(T0, values=(1.0,)),
            _bucket(T0, values=(-1.0, 5e9), metric="ModelLatency", histogram={57: 1, 400: 1}),
            _bucket(T0, values=(7.0,), metric="ModelLatency", histogram={58: 1}),  # same batch
        ]
    )
    ones = store.endpoint_metric_buckets("ep", "Invocations", instance="AllTraffic-1", end=T0 + 1)
    assert ones == [_bucket(T0, values=(1.0, 1.0, 1.0))]
    (merged,) = store.endpoint_metric_buckets("ep", "ModelLatency")
    assert (merged.count, merged.total) == (7, 0.0 + 10.5 + 3.25 + 2e9 - 1.0 + 5e9 + 7.0)
    assert (merged.minimum, merged.maximum) == (-1.0, 5e9)
    assert merged.histogram == {-100_000: 1, 57: 3, 58: 1, 300: 1, 400: 1}

    assert store.endpoint_metric_keys("ep") == [
        ("ep", "AllTraffic", "AllTraffic-1", "Invocations"),
        ("ep", "AllTraffic", "AllTraffic-1", "ModelLatency"),
        ("ep", "AllTraffic", "AllTraffic-2", "Invocations"),
        ("ep", "Canary", "Canary-1", "Invocations"),
    ]
    assert store.endpoint_metric_keys() == [
        *store.endpoint_metric_keys("ep"),
        ("other", "AllTraffic", "AllTraffic-1", "Invocations"),
    ]
    assert store.endpoint_metric_keys("none") == []

    # Retention: buckets that began before the second given go.
    assert store.delete_endpoint_metrics_before(T0 + 1) == 3
    assert [b.start for b in store.endpoint_metric_buckets("ep", "Invocations")] == [T0 + 1, T0 + 2]
    assert store.endpoint_metric_buckets("ep", "ModelLatency") == []
    assert store.delete_endpoint_metrics_before(T0 + 1) == 0
    assert store.delete_endpoint_metrics_before(T0 + 100) == 3
    assert store.endpoint_metric_keys() == []


def test_many_endpoint_metric_buckets_in_one_call_merge_into_stored_ones(
    store: MetadataStore,
) -> None:
    # More keys than one lookup slice holds: 3 instances x 6 metrics x 60 seconds.
    metrics = ["Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency",
               "OverheadLatency", "InvocationsPerInstance"]  # fmt: skip
    batch = [
        _bucket(T0 + s, f"AllTraffic-{i}", (1.0,), m)
        for s in range(60)
        for i in (1, 2, 3)
        for m in metrics
    ]
    store.add_endpoint_metric_buckets(batch)
    store.add_endpoint_metric_buckets(batch)
    for m in metrics:
        stored = store.endpoint_metric_buckets("ep", m)
        assert len(stored) == 180 and {b.count for b in stored} == {2}
    assert len(store.endpoint_metric_keys("ep")) == 18


# -- tags --------------------------------------------------------------------------------------


def test_tags(store: MetadataStore) -> None:
    model = record(MODELS, "m")
    store.insert_resource(MODELS, model, "exists")
    arn = model.arn
    assert store.arn_exists(arn) and not store.arn_exists(arn + "x")
    store.add_tags(arn, [], 50)
    store.add_tags(arn, [("b", "1"), ("a", "2"), ("b", "3")], 50)  # the last value wins
    store.add_tags(arn, [("c", "4"), ("a", "5")], 50)  # overwrites keep their first place
    assert store.tags(arn) == [("b", "3"), ("a", "5"), ("c", "4")]
    assert store.tags(arn, offset=1, limit=1) == [("a", "5")]
    assert store.tags(arn, offset=2) == [("c", "4")]
    store.delete_tags(arn, ["a", "not-there"])
    assert store.tags(arn) == [("b", "3"), ("c", "4")]

    store.add_tags(arn, [(f"k{i}", "v") for i in range(47)], 50)  # 49 tags
    store.add_tags(arn, [("b", "new"), ("fiftieth", "v")], 50)  # an overwrite counts once
    with pytest.raises(ResourceLimitExceeded, match="would have 51 tags; a resource has at most"):
        store.add_tags(arn, [("c", "again"), ("one-more", "v")], 50)
    tags = dict(store.tags(arn))
    assert len(tags) == 50 and tags["c"] == "4" and "one-more" not in tags  # refused whole
    with pytest.raises(NotFoundError, match="not found"):
        store.add_tags(arn + "-gone", [("k", "v")], 50)
    with pytest.raises(NotFoundError):
        store.delete_tags(arn + "-gone", ["k"])
    assert store.tags(arn + "-gone") == []


# -- logs --------------------------------------------------------------------------------------

GROUP = "/aws/sagemaker/TrainingJobs"


def _write_logs(store: MetadataStore) -> None:
    store.append_log_events(GROUP, "job/algo-1-1", [])
    store.append_log_events(
        GROUP,
        "job/algo-1-1",
        [(NOW_MS, "epoch=1 loss=0.5"), (NOW_MS + 5, "100% done_now"), (NOW_MS + 5, "é ünïcode")],
    )
    store.append_log_events(GROUP, "job/algo-2-1", [(NOW_MS + 1, "epoch=1 loss=0.6\x00")])
    store.append_log_events(GROUP, "Job/algo-1-1", [(NOW_MS + 2, "upper case stream")])
    store.append_log_events("/aws/sagemaker/Endpoints/e", "AllTraffic/i-1", [(NOW_MS, "ping")])


def test_log_events_of_a_stream(store: MetadataStore) -> None:
    _write_logs(store)
    events = store.log_events(GROUP, "job/algo-1-1")
    assert [(e.timestamp, e.message) for e in events] == [
        (NOW_MS, "epoch=1 loss=0.5"), (NOW_MS + 5, "100% done_now"), (NOW_MS + 5, "é ünïcode")
    ]  # fmt: skip
    assert events[0].sequence < events[1].sequence < events[2].sequence
    assert all(e.ingestion_time >= NOW_MS - 10**9 for e in events)
    first, _, third = (e.sequence for e in events)
    assert store.log_events(GROUP, "job/algo-1-1", after=first) == events[1:]
    assert store.log_events(GROUP, "job/algo-1-1", before=third) == events[:2]
    assert store.log_events(GROUP, "job/algo-1-1", after=third) == []
    assert store.log_events(GROUP, "job/algo-1-1", limit=2) == events[:2]
    assert store.log_events(GROUP, "job/algo-1-1", limit=2, from_head=False) == events[1:]
    assert store.log_events(GROUP, "job/algo-1-1", start_time=NOW_MS + 1) == events[1:]
    assert store.log_events(GROUP, "job/algo-1-1", end_time=NOW_MS + 5) == events[:1]
    assert [e.message for e in store.log_events(GROUP, "job/algo-2-1")] == [
        "epoch=1 loss=0.6\ufffd"  # PostgreSQL's text has no NUL: both store U+FFFD
    ]
    assert store.log_events(GROUP, "job/algo-3-1") == []
    assert store.log_events("other", "job/algo-1-1") == []


def test_log_streams_and_groups(store: MetadataStore) -> None:
    _write_logs(store)
    streams = store.log_streams(GROUP)
    assert [s.name for s in streams] == ["Job/algo-1-1", "job/algo-1-1", "job/algo-2-1"]
    one = streams[1]
    assert (one.first_event, one.last_event) == (NOW_MS, NOW_MS + 5)
    assert one.stored_bytes == len("epoch=1 loss=0.5") + len("100% done_now") + len("é ünïcode")
    assert one.last_ingestion >= NOW_MS - 10**9
    # Prefixes match exactly, case and all, and LIKE's wildcards are plain characters.
    assert [s.name for s in store.log_streams(GROUP, "job/")] == ["job/algo-1-1", "job/algo-2-1"]
    assert [s.name for s in store.log_streams(GROUP, "Job/")] == ["Job/algo-1-1"]
    assert store.log_streams(GROUP, "job/algo_") == [] and store.log_streams(GROUP, "%") == []
    assert store.log_streams("nothing") == []
    groups = store.log_groups()
    assert [g.name for g in groups] == ["/aws/sagemaker/Endpoints/e", GROUP]
    assert groups[0] == LogGroup("/aws/sagemaker/Endpoints/e", groups[0].creation_time, 4)
    assert [g.name for g in store.log_groups("/aws/sagemaker/T")] == [GROUP]
    assert store.log_groups("/AWS") == [] and store.log_groups("/aws/sagemaker/_") == []
    assert isinstance(groups[1], LogGroup) and isinstance(streams[0], LogStream)


def test_filter_log_events(store: MetadataStore) -> None:
    _write_logs(store)

    def messages(**query: Any) -> list[tuple[str, str]]:
        return [(e.stream, e.message) for e in store.filter_log_events(GROUP, **query)]

    everything = store.filter_log_events(GROUP)
    # By time, then by the order written.
    assert [(e.stream, e.timestamp) for e in everything] == [
        ("job/algo-1-1", NOW_MS), ("job/algo-2-1", NOW_MS + 1), ("Job/algo-1-1", NOW_MS + 2),
        ("job/algo-1-1", NOW_MS + 5), ("job/algo-1-1", NOW_MS + 5),
    ]  # fmt: skip
    assert all(isinstance(e, LogEvent) and e.sequence > 0 for e in everything)
    assert messages(streams=["job/algo-2-1"]) == [("job/algo-2-1", "epoch=1 loss=0.6\ufffd")]
    assert messages(streams=[]) == []
    assert [s for s, _ in messages(stream_prefix="Job/")] == ["Job/algo-1-1"]
    assert len(messages(start_time=NOW_MS + 1, end_time=NOW_MS + 5)) == 4  # both ends in
    assert messages(contains=["100%", "done_"]) == [("job/algo-1-1", "100% done_now")]
    assert messages(contains=["100_"]) == [] and messages(contains=["%%"]) == []
    assert len(messages(contains=["loss="])) == 2
    second = everything[1]
    rest = store.filter_log_events(GROUP, after=(second.timestamp, second.sequence))
    assert rest == everything[2:]
    assert store.filter_log_events(GROUP, limit=2) == everything[:2]
    fourth = everything[3]  # the next one has the same time: the id tells them apart
    assert (
        store.filter_log_events(GROUP, after=(fourth.timestamp, fourth.sequence)) == everything[4:]
    )


# -- a restart ---------------------------------------------------------------------------------


def _everything(store: MetadataStore) -> dict[str, Any]:
    arn = record(MODELS, "m").arn
    return {
        "resources": {
            kind.name: [store.resource(kind, r.name) for r in store.resources_of_kind(kind)]
            for kind in [*RESOURCE_KINDS, TRAINING_JOBS]
        },
        "view": store.training_job_view("job-1"),
        "series": store.metric_series("job-1", "loss"),
        "buckets": store.endpoint_metric_buckets("ep", "ModelLatency"),
        "tags": store.tags(arn),
        "streams": store.log_streams(GROUP),
        "events": store.filter_log_events(GROUP),
        "groups": store.log_groups(),
    }


def test_a_store_opened_again_finds_everything(metadata_url: str) -> None:
    first = MetadataStore(metadata_url)
    try:
        for kind in RESOURCE_KINDS:
            first.insert_resource(kind, record(kind, "r-1"), "exists")
        first.insert_resource(MODELS, record(MODELS, "m"), "exists")
        first.insert_training_job(training_job("job-1"), first_transition())
        first.transition("job-1", "Downloading", BASE + 1, "", _allow(SecondaryStatus.DOWNLOADING))
        first.add_metric_points("job-1", [MetricPoint("loss", 0.5, BASE + 2, "algo-2")])
        first.add_endpoint_metric_buckets(
            [_bucket(T0, values=(3.0, 4.0), metric="ModelLatency", histogram={28: 1, 36: 1})]
        )
        first.add_tags(record(MODELS, "m").arn, [("team", "ml")], 50)
        _write_logs(first)
        before = _everything(first)
    finally:
        first.close()
    second = MetadataStore(metadata_url)
    try:
        assert _everything(second) == before
        assert before["view"].record.state.secondary_status is SecondaryStatus.DOWNLOADING
        assert len(before["events"]) == 5 and before["tags"] == [("team", "ml")]
        assert before["series"][0].host == "algo-2" and before["buckets"][0].histogram[36] == 1
        assert all(len(rows) >= 1 for rows in before["resources"].values())
    finally:
        second.close()
