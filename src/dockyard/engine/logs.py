"""Log lines of a job's hosts, batched into the metadata store as CloudWatch-style streams."""

from __future__ import annotations

import collections
import threading
import time

from dockyard.storage.metadata import MetadataStore

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def stream_name(job_name: str, host: str, epoch: int) -> str:
    """`<job>/algo-N-<epoch>`: the SDK lists streams by the `<job>/` prefix, one per host."""
    return f"{job_name}/{host}-{epoch}"


class LogWriter:
    """Buffers lines and writes them in batches: one SQLite transaction per line would cap a
    chatty training script at a few thousand lines a second."""

    def __init__(self, metadata: MetadataStore, group: str, interval: float = 0.2) -> None:
        self._metadata = metadata
        self._group = group
        self._interval = interval
        self._pending: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def write(self, stream: str, message: str, at: float | None = None) -> None:
        millis = int((at if at is not None else time.time()) * 1000)
        with self._lock:
            self._pending[stream].append((millis, message))

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, collections.defaultdict(list)
        for stream, events in pending.items():
            self._metadata.append_log_events(self._group, stream, events)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()
