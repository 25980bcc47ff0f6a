"""Training job statuses: the one place a status changes, checked against the transition table."""

from __future__ import annotations

import threading
import time
from typing import Any

from dockyard.contract.training_jobs import (
    TERMINAL_STATUSES,
    SecondaryStatus,
    TrainingJobStatus,
    check_transition,
)
from dockyard.storage.metadata import MetadataStore


class TrainingLifecycle:
    def __init__(self, metadata: MetadataStore) -> None:
        self._metadata = metadata
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def lock(self, name: str) -> threading.RLock:
        """The job's lock: held across a status change and whatever must happen with it."""
        with self._guard:
            return self._locks.setdefault(name, threading.RLock())

    def forget(self, name: str) -> None:
        with self._guard:
            self._locks.pop(name, None)

    def secondary_status(self, name: str) -> SecondaryStatus:
        return SecondaryStatus(self._metadata.training_job(name).secondary_status)

    def transition(
        self, name: str, target: SecondaryStatus, message: str | None = None, **fields: Any
    ) -> TrainingJobStatus:
        """Move a job to `target` if the transition table allows it, recording the transition
        and any other fields (times, failure reason) with it."""
        with self.lock(name):
            current = self.secondary_status(name)
            primary = check_transition(current, target)
            now = time.time()
            if fields:
                self._metadata.update_training_job(name, **fields)
            self._metadata.transition(name, target.value, primary.value, now, message)
            if primary in TERMINAL_STATUSES:
                self._metadata.close_transitions(name, now)
            return primary

    def fail_orphan(self, name: str, reason: str) -> None:
        """Fail a job whose runner is gone (the server stopped under it). Bypasses the table on
        purpose: any non-final status may end this way."""
        with self.lock(name):
            record = self._metadata.training_job(name)
            now = time.time()
            self._metadata.update_training_job(
                name, failure_reason=reason, training_end_time=record.training_end_time or now
            )
            self._metadata.transition(
                name, SecondaryStatus.FAILED.value, TrainingJobStatus.FAILED.value, now, reason
            )
            self._metadata.close_transitions(name, now)
