"""One batch transform job run: start the model's instances, ask /execution-parameters, deal the
input objects out to the instances by key, send each object's records in batches (up to
MaxConcurrentTransforms at a time per instance) and write one `.out` per object, in order."""

from __future__ import annotations

import dataclasses
import functools
import http.client
import json
import logging
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dockyard.contract.endpoints import DEFAULT_STARTUP_SECONDS, STOP_GRACE_SECONDS
from dockyard.contract.errors import ValidationError
from dockyard.contract.models import CreateModelRequest
from dockyard.contract.transform_jobs import (
    CreateTransformJobRequest,
    EffectiveParameters,
    effective_parameters,
    parse_manifest,
    transform_environment,
)
from dockyard.engine.context import EngineContext
from dockyard.engine.data_processing import DataProcessor
from dockyard.engine.instances import Instance, InstanceFailed, prepare_model, start_instance
from dockyard.engine.job_files import open_resolved
from dockyard.engine.local_outputs import write_local_output
from dockyard.engine.logs import LogWriter
from dockyard.engine.staging import ChannelFile, find_channel_source, local_path_of, shard
from dockyard.engine.transform_records import Batch, RecordError, batches, split_records
from dockyard.storage.objects import S3Uri

logger = logging.getLogger(__name__)

_RETRY_PAUSE = 0.5


class ObjectFailed(Exception):
    """One input object could not be transformed; the job fails, other objects still finish."""


class Stopped(Exception):
    """StopTransformJob was called."""


@dataclass(frozen=True)
class Outcome:
    failure: str | None  # None when every object was transformed
    stopped: bool = False


class TransformRun:
    def __init__(
        self,
        ctx: EngineContext,
        request: CreateTransformJobRequest,
        model: CreateModelRequest,
        folder: Path,
        logs: LogWriter,
        stop: threading.Event,
    ) -> None:
        self.ctx = ctx
        self.request = request
        self.model = model
        self.folder = folder
        self.logs = logs
        self.stop = stop
        self.name = request.transform_job_name
        self._epoch = int(time.time())

    def log(self, message: str) -> None:
        logger.info("transform job %s: %s", self.name, message)
        self.logs.write(f"{self.name}/dockyard-{self._epoch}", message)

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> Outcome:
        request = self.request
        files, bucket = input_objects(self.ctx, request)
        count = request.transform_resources.instance_count
        self.log(f"{len(files)} input objects over {count} instances")
        instances: list[Instance] = []
        finished = threading.Event()
        watcher = threading.Thread(
            target=self._kill_on_stop, args=(instances, finished), name="stop", daemon=True
        )
        watcher.start()
        try:
            model = prepare_model(
                self.ctx,
                self.model,
                self.folder / "model",
                self.log,
            )
            env = transform_environment(request)
            for number in range(1, count + 1):
                name = f"algo-{number}"
                stream = f"{self.name}/{name}-{self._epoch}"
                instance = start_instance(
                    self.ctx,
                    model,
                    name=name,
                    variant="transform",
                    folder=self.folder / name,
                    env=env,
                    on_line=functools.partial(self.logs.write, stream),
                    instance_type=request.transform_resources.instance_type or "local",
                )
                instances.append(instance)
            for instance in instances:
                instance.wait_healthy(DEFAULT_STARTUP_SECONDS, self.stop)
            parameters = effective_parameters(request, _execution_parameters(instances[0]))
            self.log(
                f"BatchStrategy {parameters.batch_strategy}, MaxPayloadInMB "
                f"{parameters.max_payload_in_mb}, MaxConcurrentTransforms "
                f"{parameters.max_concurrent_transforms}"
            )
            failures: list[str] = []
            with ThreadPoolExecutor(max_workers=count) as pool:
                futures = [
                    pool.submit(
                        self._transform_share,
                        instance,
                        shard(files, index, count),
                        bucket,
                        parameters,
                    )
                    for index, instance in enumerate(instances)
                ]
                for future in futures:
                    failures.extend(future.result())
        except InstanceFailed as failed:
            if self.stop.is_set():
                return Outcome(None, stopped=True)
            return Outcome(f"ClientError: {failed}"[:1024])
        finally:
            finished.set()
            for instance in instances:
                if self.stop.is_set():
                    instance.kill()
                else:
                    instance.stop(grace=STOP_GRACE_SECONDS)
        if self.stop.is_set():
            return Outcome(None, stopped=True)
        if failures:
            more = f" (and {len(failures) - 1} more objects)" if len(failures) > 1 else ""
            return Outcome((failures[0] + more)[:1024])
        return Outcome(None)

    def _kill_on_stop(self, instances: list[Instance], finished: threading.Event) -> None:
        """StopTransformJob ends the instances at once: a request in flight would otherwise hold
        the stop for up to InvocationsTimeoutInSeconds, and a starting one for the grace."""
        while not finished.is_set():
            if self.stop.wait(0.1):
                for instance in list(instances):
                    instance.kill()
                return

    def _transform_share(
        self,
        instance: Instance,
        files: list[ChannelFile],
        bucket: str | None,
        parameters: EffectiveParameters,
    ) -> list[str]:
        failures = []
        for item in files:
            if self.stop.is_set():
                break
            try:
                self._transform_object(instance, item, bucket, parameters)
                self.log(f"{item.relative}: done on {instance.name}")
            except ObjectFailed as failed:
                failures.append(f"{item.relative}: {failed}")
                self.log(f"{item.relative}: failed: {failed}")
            except Stopped:
                break
        return failures

    # -- one input object --------------------------------------------------------------------

    def _transform_object(
        self,
        instance: Instance,
        item: ChannelFile,
        bucket: str | None,
        parameters: EffectiveParameters,
    ) -> None:
        request = self.request
        transform_input = request.transform_input
        line_ends = request.transform_output.assemble_with == "Line"
        processor = DataProcessor.from_request(request)
        scratch = self.folder / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        limit = parameters.max_payload_bytes
        with ExitStack() as stack:
            stream = stack.enter_context(self._open_input(item, bucket, scratch))
            out = stack.enter_context(
                tempfile.NamedTemporaryFile(dir=scratch, suffix=".out", delete=False)
            )
            produced = Path(out.name)
            stack.callback(produced.unlink, missing_ok=True)
            try:
                records = split_records(
                    stream,
                    transform_input.split_type,
                    parameters.batch_strategy,
                    compression=transform_input.compression_type,
                    max_record_bytes=limit,
                    source=item.relative,
                )
                prepare = processor.filter_input if processor and processor.filters_input else None
                requests = batches(
                    records, parameters.batch_strategy, limit, prepare=prepare, source=item.relative
                )
                for batch, reply in self._send_all(instance, requests, parameters):
                    if processor is not None and processor.per_record_output:
                        for piece in processor.outputs(batch.records, reply, item.relative):
                            out.write(piece + b"\n" if line_ends else piece)
                        continue
                    out.write(reply)
                    # AssembleWith Line: each answer ends with one line break.
                    if line_ends and not reply.endswith(b"\n"):
                        out.write(b"\n")
            except RecordError as bad:
                raise ObjectFailed(str(bad)) from None
            out.close()
            self._store_output(item, produced)

    def _send_all(
        self,
        instance: Instance,
        batches: Iterator[Batch],
        parameters: EffectiveParameters,
    ) -> Iterator[tuple[Batch, bytes]]:
        """Up to MaxConcurrentTransforms requests in flight; replies come back in input order."""
        width = max(1, parameters.max_concurrent_transforms)
        local = threading.local()
        opened: list[http.client.HTTPConnection] = []

        def send(batch: Batch) -> bytes:
            # One kept-alive connection per thread.
            return self._invoke(instance, local, opened, batch.body)

        try:
            with ThreadPoolExecutor(max_workers=width) as pool:
                window: deque[tuple[Batch, Future[bytes]]] = deque()
                for batch in batches:
                    if self.stop.is_set():
                        raise Stopped()
                    window.append((batch, pool.submit(send, batch)))
                    if len(window) >= width * 2:
                        done_batch, future = window.popleft()
                        yield done_batch, future.result()
                while window:
                    done_batch, future = window.popleft()
                    yield done_batch, future.result()
        finally:
            # The threads are done with them: each thread's connection is closed here, not left
            # open until the garbage collector finds the socket.
            for connection in opened:
                connection.close()

    def _invoke(
        self,
        instance: Instance,
        local: Any,
        opened: list[http.client.HTTPConnection],
        body: bytes,
    ) -> bytes:
        request = self.request
        timeout = float(request.invocations_timeout_seconds)
        retries = request.invocations_max_retries
        headers = {
            "Content-Type": request.transform_input.content_type or "application/octet-stream"
        }
        if request.transform_output.accept:
            headers["Accept"] = request.transform_output.accept
        last = ""
        for attempt in range(retries + 1):
            if self.stop.is_set():
                raise Stopped()
            connection: http.client.HTTPConnection | None = getattr(local, "connection", None)
            if connection is None:
                connection = local.connection = instance.http(timeout)
                opened.append(connection)
            try:
                connection.request("POST", "/invocations", body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                local.connection = None
                last = f"the container did not answer: {exc}"
            else:
                if 200 <= response.status < 300:
                    return answer
                text = answer[:512].decode("utf-8", errors="replace")
                last = f"the container answered {response.status}: {text}"
                if response.status < 500:
                    break  # the request itself is wrong: another try would fail the same way
            if attempt < retries:
                time.sleep(_RETRY_PAUSE * (attempt + 1))
        raise ObjectFailed(last)

    def _open_input(self, item: ChannelFile, bucket: str | None, scratch: Path) -> IO[bytes]:
        if item.local is not None:
            try:
                return open_resolved(item.local)
            except OSError as exc:
                raise ObjectFailed(f"could not read {item.local}: {exc}") from None
        assert bucket is not None and item.key is not None
        target = scratch / f"in-{threading.get_ident()}"
        self.ctx.store.get_file(bucket, item.key, target)
        handle = open(target, "rb")  # noqa: SIM115 - the caller closes it
        target.unlink()  # the open handle keeps the data until it is closed
        return handle

    def _store_output(self, item: ChannelFile, produced: Path) -> None:
        """`<S3OutputPath>/<object path under the input prefix>.out`."""
        destination = self.request.transform_output.s3_output_path.rstrip("/")
        relative = item.relative + ".out"
        local = local_path_of(destination)
        if local is not None:
            try:
                write_local_output(self.ctx.local_paths, destination, local, relative, produced)
            except (OSError, ValidationError) as exc:
                raise ObjectFailed(f"could not write {local / relative}: {exc}") from None
            return
        uri = S3Uri.parse(destination)
        key = f"{uri.key.rstrip('/')}/{relative}" if uri.key else relative
        self.ctx.store.put_file(uri.bucket, key, produced)


def input_objects(
    ctx: EngineContext, request: CreateTransformJobRequest
) -> tuple[list[ChannelFile], str | None]:
    """The objects to transform, in key order (S3Prefix) or the manifest's order, with the
    bucket they are in; a clear error when there are none."""
    source = request.transform_input.data_source.s3_data_source
    if source.s3_data_type != "ManifestFile":
        found = find_channel_source(
            source.s3_uri, ctx.store, local_paths=ctx.local_paths, remote=ctx.remote_store
        )
        return found.files, found.bucket
    manifest = find_channel_source(
        source.s3_uri, ctx.store, local_paths=ctx.local_paths, remote=ctx.remote_store
    )
    if len(manifest.files) != 1:
        raise ValidationError(f"ManifestFile {source.s3_uri} must name one object, the manifest")
    only = manifest.files[0]
    if only.local is not None:
        with open_resolved(only.local) as manifest_file:
            data = manifest_file.read()
    else:
        assert manifest.bucket is not None and only.key is not None
        data = ctx.store.get_bytes(manifest.bucket, only.key)
    uris = parse_manifest(data, f"the manifest {source.s3_uri}")
    prefix = uris[0][: len(uris[0]) - len(uris[0].rsplit("/", 1)[-1])]
    files: list[ChannelFile] = []
    bucket = None
    for uri in uris:
        found = find_channel_source(
            uri, ctx.store, local_paths=ctx.local_paths, remote=ctx.remote_store
        )
        bucket = found.bucket
        # Outputs are named by the path the manifest gives, under its prefix.
        relative = uri[len(prefix) :] if uri.startswith(prefix) else found.files[0].relative
        files.extend(dataclasses.replace(f, relative=relative) for f in found.files[:1])
    return files, bucket


def _execution_parameters(instance: Instance) -> dict[str, Any] | None:
    """GET /execution-parameters: the container's own batch settings, if it has any."""
    connection = instance.http(5.0)
    try:
        connection.request("GET", "/execution-parameters")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        parsed = json.loads(body)
        return parsed if isinstance(parsed, dict) else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()
