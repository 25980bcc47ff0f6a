"""Images checked and built ahead of their first job, through the runtime and the API:
what each RUN line becomes, and a build that runs on a thread while its log is followed."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dockyard.contract.errors import DockyardError, ImageError, NotFoundError
from dockyard.engine.context import EngineContext

_KEPT_BUILDS = 64  # finished builds whose log can still be read
_MAX_LINES = 1000  # log lines one DescribeImageBuild returns


@dataclass
class ImageBuild:
    build_id: str
    image: str
    steps: int
    status: str = "InProgress"  # then Completed or Failed
    failure_reason: str = ""
    lines: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ended: float | None = None


class ImageBuilds:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._builds: dict[str, ImageBuild] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def check(self, ref: str) -> dict[str, Any]:
        """CheckImage: each RUN line and what it becomes, and whether the layer is built."""
        check = self.ctx.runtime_for(ref).check_image(self.ctx.resolve_image(ref))
        return {
            "RunLines": [
                {
                    "Number": item.number,
                    "Line": item.line,
                    "Kind": item.kind,
                    "Outcome": item.outcome,
                    **({"Detail": item.detail} if item.detail else {}),
                }
                for item in check.run_lines
            ],
            "PythonLayer": dict(check.python_layer),
        }

    def start(self, ref: str) -> dict[str, Any]:
        """BuildImage: check the folder now (a clear error at once), build on a thread."""
        runtime = self.ctx.runtime_for(ref)
        image = self.ctx.resolve_image(ref)
        check = runtime.check_image(image)
        if check.missing:
            needs = "; ".join(f"RUN line {o.number} needs {o.detail}" for o in check.missing)
            raise ImageError(f"{needs}: install what is missing, then build again")
        build = ImageBuild(f"build-{next(self._numbers)}", ref, check.build_steps)
        with self._lock:
            self._builds[build.build_id] = build
            for old in list(self._builds)[:-_KEPT_BUILDS]:
                del self._builds[old]

        def run() -> None:
            try:
                runtime.build_image(image, build.lines.append)
                build.status = "Completed"
            except DockyardError as exc:
                build.failure_reason, build.status = str(exc), "Failed"
            except Exception as exc:  # a thread's error must reach the client, not vanish
                build.failure_reason = f"InternalError: {type(exc).__name__}: {exc}"
                build.status = "Failed"
            finally:
                build.ended = time.time()

        threading.Thread(target=run, name=f"image-{build.build_id}", daemon=True).start()
        return {"BuildId": build.build_id, "PipCommands": build.steps}

    def describe(self, build_id: str, start_line: int) -> dict[str, Any]:
        """DescribeImageBuild: status and the log lines from `start_line` on."""
        with self._lock:
            build = self._builds.get(build_id)
        if build is None:
            raise NotFoundError(f"Image build {build_id} does not exist (or has been forgotten)")
        status = build.status  # read before the lines: a finished build has all of its lines
        lines = build.lines[start_line : start_line + _MAX_LINES]
        described: dict[str, Any] = {
            "BuildId": build.build_id,
            "Image": build.image,
            "Status": status,
            "PipCommands": build.steps,
            "LogLines": lines,
            "NextLine": start_line + len(lines),
            "StartTime": build.started,
        }
        if build.ended is not None:
            described["EndTime"] = build.ended
        if build.failure_reason:
            described["FailureReason"] = build.failure_reason
        return described
