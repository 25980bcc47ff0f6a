"""Checkpoints: restore S3Uri → LocalPath before the program starts, mirror LocalPath → S3Uri
while it runs (new and changed files uploaded, deleted files deleted), flush once at the end."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from dockyard.storage.objects import ObjectStore, S3Uri

Snapshot = dict[str, tuple[int, int]]


def _snapshot(folder: Path) -> Snapshot:
    found: Snapshot = {}
    for dirpath, _dirnames, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            found[path.relative_to(folder).as_posix()] = (info.st_size, info.st_mtime_ns)
    return found


class CheckpointMirror:
    """One mirror per host folder; all hosts share the S3 prefix, as on SageMaker (no per-host
    prefix, so multi-host scripts must use distinct file names)."""

    def __init__(self, store: ObjectStore, s3_uri: str, folders: list[Path], interval: float = 1.0):
        self._store = store
        self._target = S3Uri.parse(s3_uri)
        self._folders = folders
        self._interval = interval
        self._seen: dict[Path, Snapshot] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoints", daemon=True)

    def _key(self, relative: str) -> str:
        prefix = self._target.key
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return prefix + relative

    def restore(self) -> int:
        """Copy what is already under S3Uri into every host's folder; returns the file count."""
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
            self._seen[folder] = _snapshot(folder)
        return count

    def sync(self) -> None:
        for folder in self._folders:
            current = _snapshot(folder)
            before = self._seen.get(folder, {})
            for relative, state in current.items():
                if before.get(relative) != state:
                    self._store.put_file(
                        self._target.bucket, self._key(relative), folder / relative
                    )
            for relative in before.keys() - current.keys():
                self._store.delete(self._target.bucket, self._key(relative))
            self._seen[folder] = current

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sync()

    def close(self) -> None:
        """Stop mirroring and flush what changed since the last pass."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.sync()
