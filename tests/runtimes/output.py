"""What a host or sandbox printed, collected for a test, with a way to wait for a line."""

from __future__ import annotations

import threading


class Output:
    """Collects (stream, line) pairs as a runtime reports them and lets a test wait for one."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._changed = threading.Condition()

    def __call__(self, stream: str, line: str) -> None:
        with self._changed:
            self.lines.append((stream, line))
            self._changed.notify_all()

    @property
    def stdout(self) -> list[str]:
        return [line for stream, line in self.lines if stream == "stdout"]

    @property
    def stderr(self) -> list[str]:
        return [line for stream, line in self.lines if stream == "stderr"]

    def wait_for(self, line: str, timeout: float = 30.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: ("stdout", line) in self.lines, timeout):
                raise TimeoutError(f"{line!r} not printed within {timeout} s: {self.lines}")
