"""Checkpoints: restore S3Uri → LocalPath before the program starts, mirror LocalPath → S3Uri
while it runs (new and changed files uploaded, deleted files deleted), flush once at the end.
The program can change the folder at any moment, so it is read through a descriptor opened
before the program started, and only regular files are uploaded, from the file opened."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from dockyard.contract.errors import StorageError
from dockyard.engine.job_files import RefusedPath, open_file, open_folder, walk
from dockyard.storage.objects import ObjectStore, S3Uri

logger = logging.getLogger(__name__)

Snapshot = dict[str, tuple[int, int]]
Log = Callable[[str], None]


class CheckpointMirror:
    """One mirror per host folder; all hosts share the S3 prefix, as on SageMaker (no per-host
    prefix, so multi-host scripts must use distinct file names)."""

    def __init__(
        self,
        store: ObjectStore,
        s3_uri: str,
        folders: list[Path],
        interval: float = 1.0,
        log: Log | None = None,
    ):
        self._store = store
        self._target = S3Uri.parse(s3_uri)
        self._folders = folders
        self._interval = interval
        self._log = log or (lambda line: logger.info("%s", line))
        self._fds: dict[Path, int] = {}
        self._seen: dict[Path, Snapshot] = {}
        # Links and other files that are not uploaded, said once each in the job's log.
        self._told: set[tuple[Path, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoints", daemon=True)

    def _key(self, relative: str) -> str:
        prefix = self._target.key
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return prefix + relative

    def restore(self) -> int:
        """Copy what is already under S3Uri into every host's folder; returns the file count.
        Runs before the program starts, which is also when each folder's descriptor is taken."""
        self._store.create_bucket(self._target.bucket)
        prefix = self._key("")
        count = 0
        for info in self._store.list_objects(self._target.bucket, prefix):
            relative = info.key[len(prefix) :]
            if not relative:
                continue
            for folder in self._folders:
                dest = folder / relative
                dest.parent.mkdir(parents=True, exist_ok=True)
                self._store.get_file(self._target.bucket, info.key, dest)
            count += 1
        for folder in self._folders:
            folder.mkdir(parents=True, exist_ok=True)
            self._fds[folder] = open_folder(folder.parent, folder.name)
            self._seen[folder] = self._snapshot(folder)
        return count

    def _snapshot(self, folder: Path) -> Snapshot:
        found: Snapshot = {}
        fd = self._fds.get(folder)
        if fd is None:
            return found
        for entry in walk(fd, left_out=lambda relative, why: self._tell(folder, relative, why)):
            if entry.is_file:
                found[entry.relative] = (entry.status.st_size, entry.status.st_mtime_ns)
            elif not entry.is_folder:
                self._tell(folder, entry.relative, entry.kind)
        return found

    def _tell(self, folder: Path, relative: str, why: str) -> None:
        if (folder, relative) not in self._told:
            self._told.add((folder, relative))
            self._log(f"checkpoints: {relative} is not uploaded: {why}")

    def sync(self) -> None:
        for folder in self._folders:
            current = self._snapshot(folder)
            before = self._seen.get(folder, {})
            for relative, state in current.items():
                if before.get(relative) != state and not self._upload(folder, relative):
                    current.pop(relative)
            for relative in before.keys() - current.keys():
                self._store.delete(self._target.bucket, self._key(relative))
            self._seen[folder] = current

    def _upload(self, folder: Path, relative: str) -> bool:
        """Upload the file from the descriptor it was opened on; False when it is gone or was
        swapped for something else since it was listed."""
        try:
            with open_file(self._fds[folder], relative) as handle:
                self._store.put_stream(self._target.bucket, self._key(relative), handle)
        except (RefusedPath, FileNotFoundError, NotADirectoryError) as exc:
            self._tell(folder, relative, str(exc))
            return False
        return True

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sync()
            except (OSError, StorageError) as exc:
                # Tried again on the next pass; the final flush reports for good.
                logger.warning("checkpoint mirroring failed, retrying: %s", exc)

    def close(self) -> None:
        """Stop mirroring, flush what changed since the last pass, let go of the folders."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self.sync()
        finally:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
