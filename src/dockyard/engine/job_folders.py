"""Finished training jobs' folders (their hosts' volumes, unmounted, kept for inspection): removed
once older than the retention setting by a small background service, or at once on request
(`dockyard jobs prune`)."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dockyard.contract.errors import NotFoundError
from dockyard.storage.metadata import MetadataStore

log = logging.getLogger(__name__)

HOUR = 3600.0
# The service looks this often at most (and at least every 10 minutes).
_MAX_INTERVAL = 600.0


@dataclass(frozen=True)
class Pruned:
    jobs: list[str]
    freed_bytes: int


class JobFolders:
    """Removes the folders of jobs that ended more than `retention_hours` ago; never a running
    job's (`running` names those)."""

    def __init__(
        self,
        jobs_dir: Path,
        metadata: MetadataStore,
        running: Callable[[], set[str]],
        retention_hours: float,
        *,
        release: Callable[[Path], None],
    ) -> None:
        self.jobs_dir = jobs_dir
        # The runtime's: what hosts still hold in a folder (a server killed mid-job).
        self.release = release
        self.metadata = metadata
        self.running = running
        self.retention_hours = retention_hours
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def prune(self, older_than_hours: float = 0.0) -> Pruned:
        """Remove every finished job's folder whose job ended at least that long ago."""
        cutoff = time.time() - older_than_hours * HOUR
        removed: list[str] = []
        freed = 0
        with self._lock:
            if not self.jobs_dir.is_dir():
                return Pruned([], 0)
            running = self.running()
            for folder in sorted(self.jobs_dir.iterdir()):
                if folder.name in running or not folder.is_dir() or folder.is_symlink():
                    continue
                if self._ended_at(folder) > cutoff:
                    continue
                self.release(folder)  # a server killed mid-job may have left a volume mounted
                freed += _allocated_bytes(folder)
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        if removed:
            log.info("removed %d finished job folders (%d bytes)", len(removed), freed)
        return Pruned(removed, freed)

    def _ended_at(self, folder: Path) -> float:
        try:
            record = self.metadata.training_job(folder.name)
        except NotFoundError:
            return folder.stat().st_mtime  # no job by that name: a leftover
        if record.status in ("InProgress", "Stopping"):
            return float("inf")
        return record.state.training_end_time or record.last_modified_time or record.creation_time

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="job-folders", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = min(max(self.retention_hours * HOUR / 4, 1.0), _MAX_INTERVAL)
        while True:
            try:
                self.prune(self.retention_hours)
            except Exception:  # a bad folder must not end the service
                log.exception("pruning job folders failed")
            if self._stop.wait(interval):
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _allocated_bytes(folder: Path) -> int:
    """What the folder takes on disk (a sparse volume counts only its written blocks)."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(folder):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                continue
    return total
