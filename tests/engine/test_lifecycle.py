"""Training job statuses as the lifecycle records them in a real SQLite metadata store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.contract.errors import InvalidTransition
from dockyard.contract.training_jobs import SecondaryStatus, TrainingJobStatus
from dockyard.engine.lifecycle import TrainingLifecycle
from dockyard.storage.metadata import MetadataStore
from tests.storage.metadata_records import first_transition, training_job

_S = SecondaryStatus


@pytest.fixture
def lifecycle(tmp_path: Path) -> Iterator[tuple[TrainingLifecycle, MetadataStore]]:
    store = MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    store.insert_training_job(training_job("job"), first_transition())
    yield TrainingLifecycle(store), store
    store.close()


def _walk(lifecycle: TrainingLifecycle, store: MetadataStore, *steps: SecondaryStatus) -> list[str]:
    """Each step taken; the job's stored primary status after each."""
    seen: list[str] = []
    for step in steps:
        returned = lifecycle.transition("job", step)
        stored = store.training_job("job").status
        assert returned.value == stored
        seen.append(stored)
    return seen


def test_a_stopped_job_stays_stopping_while_its_artifacts_upload(
    lifecycle: tuple[TrainingLifecycle, MetadataStore],
) -> None:
    # Seen in CI: DescribeTrainingJob right after StopTrainingJob said InProgress, because the
    # hosts had already ended and the job was uploading what they wrote in their grace period.
    jobs, store = lifecycle
    steps = (_S.DOWNLOADING, _S.TRAINING, _S.STOPPING, _S.UPLOADING, _S.STOPPED)
    primaries = _walk(jobs, store, *steps)
    assert primaries == ["InProgress", "InProgress", "Stopping", "Stopping", "Stopped"]
    view = store.training_job_view("job")
    assert [t.status for t in view.transitions][-3:] == ["Stopping", "Uploading", "Stopped"]


def test_a_job_that_ran_out_of_time_stays_stopping_too(
    lifecycle: tuple[TrainingLifecycle, MetadataStore],
) -> None:
    jobs, store = lifecycle
    steps = (_S.DOWNLOADING, _S.TRAINING, _S.STOPPING, _S.UPLOADING, _S.MAX_RUNTIME_EXCEEDED)
    assert _walk(jobs, store, *steps)[-2:] == ["Stopping", "Stopped"]


def test_a_job_that_ended_before_the_stop_completes(
    lifecycle: tuple[TrainingLifecycle, MetadataStore],
) -> None:
    """Its hosts ended by themselves, so the stop comes too late: the job finishes as it was
    going to."""
    jobs, store = lifecycle
    assert _walk(jobs, store, _S.DOWNLOADING, _S.TRAINING, _S.UPLOADING) == ["InProgress"] * 3
    with pytest.raises(InvalidTransition):
        jobs.transition("job", _S.STOPPING)
    jobs.transition("job", _S.COMPLETED)
    assert store.training_job("job").status == TrainingJobStatus.COMPLETED.value
