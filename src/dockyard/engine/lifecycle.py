"""Training job statuses: the one place a status changes, checked against the transition table."""

from __future__ import annotations

import threading
import time
from typing import Any

from dockyard.contract.training_jobs import (
    PRIMARY_OF,
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
        return self._metadata.training_job(name).state.secondary_status

    def transition(
        self, name: str, target: SecondaryStatus, message: str | None = None, **fields: Any
    ) -> TrainingJobStatus:
        """Move a job to `target` if the transition table allows it, recording the transition
        and any other fields (times, failure reason) in the same transaction. Returns the job's
        primary status now."""
        primary: list[TrainingJobStatus] = []

        def check(current: str) -> str:
            primary.append(check_transition(SecondaryStatus(current), target))
            return primary[-1].value

        with self.lock(name):
            self._metadata.transition(
                name,
                target.value,
                time.time(),
                message,
                check,
                fields,
                final=PRIMARY_OF[target] in TERMINAL_STATUSES,
            )
        return primary[-1]

    def fail_orphan(self, name: str, reason: str) -> None:
        """Fail a job whose runner is gone (the server stopped under it). Any status that is
        not final may end this way, so the table is not consulted."""
        now = time.time()

        def any_status(_current: str) -> str:
            return TrainingJobStatus.FAILED.value

        with self.lock(name):
            self._metadata.transition(
                name,
                SecondaryStatus.FAILED.value,
                now,
                reason,
                any_status,
                {"failure_reason": reason, "training_end_time": now},
                final=True,
            )
