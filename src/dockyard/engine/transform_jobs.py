"""Batch transform jobs: CreateTransformJob checks and stores the request and runs it in the
background; Describe, List and Stop; every status change goes through `_transition`."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from typing import Any

from dockyard.contract.errors import InvalidTransition, ResourceInUse, ValidationError
from dockyard.contract.models import CreateModelRequest
from dockyard.contract.transform_jobs import (
    CreateTransformJobRequest,
    ListTransformJobsRequest,
    TransformJobState,
    TransformJobStatus,
    check_transform_transition,
)
from dockyard.engine.context import EngineContext
from dockyard.engine.data_processing import check_data_processing
from dockyard.engine.logs import LogWriter
from dockyard.engine.models import Models
from dockyard.engine.paging import Page, resource_page
from dockyard.engine.resources import NamedResources
from dockyard.engine.staging import local_path_of
from dockyard.engine.transform_run import TransformRun, input_objects
from dockyard.storage.objects import S3Uri
from dockyard.storage.records import TRANSFORM_JOBS, Listed, Record

logger = logging.getLogger(__name__)

TRANSFORM_JOB = TRANSFORM_JOBS.name
LOG_GROUP = "/aws/sagemaker/TransformJobs"
_T = TransformJobStatus
_ENDED = {_T.COMPLETED, _T.FAILED, _T.STOPPED}

TransformJobRecord = Record[CreateTransformJobRequest, TransformJobState]


class TransformJobs(NamedResources[CreateTransformJobRequest, TransformJobState]):
    kind, label = TRANSFORM_JOBS, "transform job"

    def __init__(self, ctx: EngineContext, models: Models) -> None:
        super().__init__(ctx)
        self.models = models
        self._stops: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._logs: LogWriter | None = None
        self._lock = threading.Lock()

    def create(self, request: CreateTransformJobRequest) -> str:
        name = request.transform_job_name
        model = self.models.record(request.model_name)
        # Said now, not when the job has started: the input exists, the output is writable,
        # the filters parse and fit the content types.
        check_data_processing(request)
        input_objects(self.ctx, request)
        self._check_output(request.transform_output.s3_output_path)
        if self.ctx.metadata.resource(TRANSFORM_JOBS, name) is not None:
            raise ResourceInUse(
                f"Job name must be unique within an AWS account and region, and a job with "
                f"this name already exists ({self.arn(name)})"
            )
        now = time.time()
        record = Record(
            name=name,
            arn=self.arn(name),
            creation_time=now,
            state=TransformJobState(),
            status=_T.IN_PROGRESS,
            last_modified_time=now,
            request=request,
        )
        self.ctx.metadata.insert_resource(
            TRANSFORM_JOBS,
            record,
            f"Job name must be unique within an AWS account and region, and a job with "
            f"this name already exists ({record.arn})",
            ResourceInUse,  # as the check above, when another request created it meanwhile
        )
        stop = threading.Event()
        thread = threading.Thread(
            target=self._run,
            args=(request, model.request, stop),
            name=f"transform-{name}",
            daemon=True,
        )
        with self._lock:
            self._stops[name] = stop
            self._threads[name] = thread
        thread.start()
        return record.arn

    def describe(self, name: str) -> TransformJobRecord:
        return self.record(name)

    def stop(self, name: str) -> None:
        record = self.record(name)
        if record.status in _ENDED or record.status == _T.STOPPING:
            return
        try:
            self._transition(name, _T.STOPPING)
        except InvalidTransition:
            return  # it ended since it was read: nothing is left to stop
        with self._lock:
            stop = self._stops.get(name)
        if stop is not None:
            stop.set()

    def list(self, request: ListTransformJobsRequest) -> Page[Listed[TransformJobState]]:
        return resource_page(self.ctx.metadata, TRANSFORM_JOBS, request)

    # -- the server's life ------------------------------------------------------------------

    def recover(self) -> None:
        """Jobs a previous server was running died with it: they end Failed, saying why."""
        for record in self.ctx.metadata.resources_of_kind(TRANSFORM_JOBS):
            if record.status in (_T.IN_PROGRESS, _T.STOPPING):
                self._transition(
                    record.name,
                    _T.STOPPED if record.status == _T.STOPPING else _T.FAILED,
                    failure_reason=None
                    if record.status == _T.STOPPING
                    else "InternalServerError: the dockyard server stopped while the job ran; "
                    "create the job again under a new name",
                    transform_end_time=time.time(),
                )

    def shutdown(self) -> None:
        with self._lock:
            stops = list(self._stops.values())
            threads = list(self._threads.values())
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(timeout=60)
        if self._logs is not None:
            self._logs.close()

    # -- running ----------------------------------------------------------------------------

    def _run(
        self,
        request: CreateTransformJobRequest,
        model: CreateModelRequest,
        stop: threading.Event,
    ) -> None:
        name = request.transform_job_name
        folder = self.ctx.settings.home / "transform-jobs" / name
        self._set_state(name, transform_start_time=time.time())
        try:
            outcome = TransformRun(self.ctx, request, model, folder, self._writer(), stop).run()
        except Exception as exc:
            logger.exception("transform job %s failed unexpectedly", name)
            self._finish(name, _T.FAILED, f"InternalServerError: {exc}")
            return
        finally:
            # Outputs are in S3OutputPath and the log in the store: nothing here is needed.
            shutil.rmtree(folder, ignore_errors=True)
            self._writer().flush()  # the whole log is readable once the job has ended
            with self._lock:
                self._stops.pop(name, None)
                self._threads.pop(name, None)
        if outcome.stopped or stop.is_set():
            self._finish(name, _T.STOPPED, None)
        elif outcome.failure is not None:
            self._finish(name, _T.FAILED, outcome.failure)
        else:
            self._finish(name, _T.COMPLETED, None)

    def _finish(self, name: str, status: TransformJobStatus, reason: str | None) -> None:
        current = self.ctx.metadata.resource(TRANSFORM_JOBS, name)
        if current is None:
            return
        if status == _T.STOPPED and current.status == _T.IN_PROGRESS:
            self._transition(name, _T.STOPPING)
        if status == _T.COMPLETED and current.status == _T.STOPPING:
            status = _T.STOPPED  # stopped after the last record: still what the user asked
        self._transition(name, status, failure_reason=reason, transform_end_time=time.time())

    def _transition(self, name: str, status: TransformJobStatus, **state: Any) -> None:
        def check(record: Listed[TransformJobState]) -> None:
            if record.status != status:
                check_transform_transition(
                    TransformJobStatus(record.status or _T.IN_PROGRESS), status
                )

        self.ctx.metadata.update_resource(
            TRANSFORM_JOBS, name, status=status, state=state, check=check
        )

    def _set_state(self, name: str, **state: Any) -> None:
        self.ctx.metadata.update_resource(TRANSFORM_JOBS, name, state=state)

    def _writer(self) -> LogWriter:
        with self._lock:
            if self._logs is None:
                self._logs = LogWriter(self.ctx.metadata, LOG_GROUP)
            return self._logs

    def _check_output(self, uri: str) -> None:
        path = local_path_of(uri)
        if path is None:
            target = S3Uri.parse(uri)
            if not self.ctx.store.bucket_exists(target.bucket):
                raise ValidationError(
                    f"S3OutputPath {uri}: bucket {target.bucket} does not exist; create it first "
                    f"(dockyard s3 mb s3://{target.bucket})"
                )
            return
        self.ctx.local_paths.writable(f"S3OutputPath {uri}", path)
