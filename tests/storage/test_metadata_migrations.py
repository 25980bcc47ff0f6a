"""Migration 0005 on a real SQLite file and a real PostgreSQL database: a store written at
revision 0004 (training jobs in their own table, the other resources' requests and states as the
untyped engine wrote them) opens at head with every row read back as a typed record, and goes
back to 0004 without loss."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text

from dockyard.contract.training_jobs import CreateTrainingJobRequest, SecondaryStatus
from dockyard.storage import metadata as metadata_module
from dockyard.storage.database import engine_url
from dockyard.storage.metadata import MetadataStore, MetricPoint, Transition
from dockyard.storage.records import ENDPOINTS, MODELS, TRAINING_JOBS, TRANSFORM_JOBS

MIGRATIONS = Path(metadata_module.__file__).parent / "migrations"
JOB = "old-job"
JOB_ARN = f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{JOB}"
TRAINING_REQUEST = {
    "TrainingJobName": JOB,
    "RoleArn": "arn:aws:iam::111111111111:role/old",
    "AlgorithmSpecification": {"TrainingImage": "examples/r", "TrainingInputMode": "File"},
    "HyperParameters": {"target": "Species"},
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train"}},
        }
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
    "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 2},
}
# As the untyped engine stored it: validated, then dumped in wire form.
STORED_TRAINING_REQUEST = json.dumps(CreateTrainingJobRequest.from_wire(TRAINING_REQUEST).to_wire())
MODEL_REQUEST = {"ModelName": "m", "PrimaryContainer": {"Image": "examples/r"}}
ENDPOINT_STATE = {
    "EndpointConfigName": "c",
    "FailureReason": "an instance was replaced",
    "VariantOverrides": {"AllTraffic": {"weight": 2.0, "count": 3}},
}
TRANSFORM_REQUEST = {
    "TransformJobName": "tj",
    "ModelName": "m",
    "TransformInput": {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in"}}
    },
    "TransformOutput": {"S3OutputPath": "s3://b/tj"},
    "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
    "MaxPayloadInMB": 2,
}


def _engine(url: str) -> Engine:
    engine = create_engine(engine_url(url))

    def foreign_keys(connection: Any, _record: Any) -> None:
        connection.execute("PRAGMA foreign_keys=ON")  # as the store runs

    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", foreign_keys)
    return engine


def _alembic(url: str, action: str, revision: str) -> None:
    engine = _engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)
    engine.dispose()


def _seed_0004(url: str) -> None:
    _alembic(url, "upgrade", "0004")
    engine = _engine(url)
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO training_jobs VALUES (:name, :arn, 'Completed', 'Completed', "
                ":request, NULL, 's3://b/out/old-job/output/model.tar.gz', 100.0, 160.0, "
                "110.0, 150.5, 1)"
            ),
            {
                "name": JOB,
                "arn": JOB_ARN,
                "request": STORED_TRAINING_REQUEST,
            },
        )
        steps = [("Starting", 100.0, 110.0, "Starting"), ("Training", 110.0, 150.5, None),
                 ("Completed", 150.5, 150.5, "Training job completed")]  # fmt: skip
        for status, start, end, message in steps:
            db.execute(
                text(
                    "INSERT INTO status_transitions (job_name, status, start_time, end_time, "
                    "message) VALUES (:job, :status, :start, :end, :message)"
                ),
                {"job": JOB, "status": status, "start": start, "end": end, "message": message},
            )
        for metric, value, at in [("loss", 0.9, 120.0), ("loss", 0.4, 130.0), ("acc", 0.8, 131.0)]:
            db.execute(
                text(
                    "INSERT INTO metric_points (job_name, metric_name, value, timestamp) "
                    "VALUES (:job, :metric, :value, :at)"
                ),
                {"job": JOB, "metric": metric, "value": value, "at": at},
            )
        db.execute(
            text("INSERT INTO tags (resource_arn, key, value) VALUES (:arn, 'team', 'ml')"),
            {"arn": JOB_ARN},
        )
        resources = [
            ("model", "m", json.dumps(MODEL_REQUEST), None, None, None),
            ("endpoint", "e", json.dumps({"EndpointName": "e", "EndpointConfigName": "c"}),
             "InService", json.dumps(ENDPOINT_STATE), 300.0),
            ("transform-job", "tj", json.dumps(TRANSFORM_REQUEST), "Completed",
             json.dumps({"TransformStartTime": 401.0, "TransformEndTime": 409.0}), 409.0),
        ]  # fmt: skip
        for kind, name, request, status, state, modified in resources:
            db.execute(
                text(
                    "INSERT INTO resources VALUES (:kind, :name, :arn, :request, 200.0, "
                    ":status, :state, :modified)"
                ),
                {
                    "kind": kind,
                    "name": name,
                    "arn": f"arn:{kind}/{name}",
                    "request": request,
                    "status": status,
                    "state": state,
                    "modified": modified,
                },
            )
    engine.dispose()


@pytest.fixture
def url(metadata_url: str) -> str:
    _seed_0004(metadata_url)
    return metadata_url


def _check_training_job(store: MetadataStore) -> None:
    view = store.training_job_view(JOB)
    record = view.record
    assert (record.arn, record.status, record.creation_time) == (JOB_ARN, "Completed", 100.0)
    assert record.last_modified_time == 160.0
    assert record.request == CreateTrainingJobRequest.from_wire(TRAINING_REQUEST)
    state = record.state
    assert state.secondary_status is SecondaryStatus.COMPLETED
    assert state.model_artifacts == "s3://b/out/old-job/output/model.tar.gz"
    assert (state.training_start_time, state.training_end_time) == (110.0, 150.5)
    assert state.failure_reason is None and state.stop_requested is True
    assert view.transitions == [
        Transition("Starting", 100.0, 110.0, "Starting"),
        Transition("Training", 110.0, 150.5, None),
        Transition("Completed", 150.5, 150.5, "Training job completed"),
    ]
    assert view.final_metrics == [MetricPoint("acc", 0.8, 131.0), MetricPoint("loss", 0.4, 130.0)]
    assert store.tags(JOB_ARN) == [("team", "ml")] and store.arn_exists(JOB_ARN)


def test_0004_rows_read_back_typed_at_head(url: str) -> None:
    store = MetadataStore(url)  # migrates to head
    try:
        assert "training_jobs" not in inspect(store.engine).get_table_names()
        _check_training_job(store)
        listed = store.list_resources(TRAINING_JOBS, status_equals="Completed")
        assert [job.name for job in listed] == [JOB]
        assert listed[0].state.secondary_status is SecondaryStatus.COMPLETED

        model = store.resource(MODELS, "m")
        assert model is not None and model.request.container.image == "examples/r"
        endpoint = store.resource(ENDPOINTS, "e")
        assert endpoint is not None
        assert endpoint.state.endpoint_config_name == "c"
        assert endpoint.state.failure_reason == "an instance was replaced"
        override = endpoint.state.variant_overrides["AllTraffic"]
        assert (override.weight, override.count) == (2.0, 3)
        transform = store.resource(TRANSFORM_JOBS, "tj")
        assert transform is not None and transform.request.max_payload_in_mb == 2
        assert (transform.state.transform_start_time, transform.state.transform_end_time) == (
            401.0,
            409.0,
        )
    finally:
        store.close()


def test_a_migrated_job_takes_new_transitions_and_metrics(url: str) -> None:
    store = MetadataStore(url)
    try:
        store.add_metric_points(JOB, [MetricPoint("loss", 0.1, 170.0)])
        store.transition(JOB, "Failed", 171.0, "late", lambda _current: "Failed", final=True)
        view = store.training_job_view(JOB)
        assert view.record.status == "Failed"
        assert view.record.state.secondary_status is SecondaryStatus.FAILED
        assert view.transitions[-1] == Transition("Failed", 171.0, 171.0, "late")
        assert MetricPoint("loss", 0.1, 170.0) in view.final_metrics
        # Points stored before hosts were kept (migration 0008) are algo-1's.
        store.add_metric_points(JOB, [MetricPoint("loss", 0.05, 172.0, "algo-2")])
        assert store.training_metric_keys(JOB) == [
            (JOB, "acc", "algo-1"),
            (JOB, "loss", "algo-1"),
            (JOB, "loss", "algo-2"),
        ]
        assert [p.value for p in store.metric_series(JOB, "loss", "algo-2")] == [0.05]
    finally:
        store.close()


def test_downgrade_to_0004_and_up_again_keeps_every_row(url: str) -> None:
    MetadataStore(url).close()
    _alembic(url, "downgrade", "0004")
    engine = _engine(url)
    with engine.connect() as db:
        row = db.execute(text("SELECT * FROM training_jobs")).mappings().one()
        kinds = db.execute(text("SELECT kind FROM resources ORDER BY kind")).scalars().all()
    engine.dispose()
    assert row["secondary_status"] == "Completed" and row["stop_requested"] == 1
    assert (row["training_start_time"], row["training_end_time"]) == (110.0, 150.5)
    assert kinds == ["endpoint", "model", "transform-job"]
    store = MetadataStore(url)
    try:
        _check_training_job(store)
    finally:
        store.close()
