"""One training job from start to finish: its hosts placed by the backend (this machine, or the
nodes of a cluster), staging, N sandboxed hosts, metrics and logs, stop and timeout handling,
artifacts. Runs on its own thread."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dockyard.backends.base import HostRun, ImageUse, Placement, PlacementRequest
from dockyard.contract import names
from dockyard.contract.errors import DockyardError, InvalidTransition, ResourceLimitExceeded
from dockyard.contract.instance_types import instance_type
from dockyard.contract.opt_ml import (
    ChannelConfig,
    OptMl,
    checkpoint_config,
    host_names,
    resource_config,
    write_training_config,
)
from dockyard.contract.tags import requested_runtime
from dockyard.contract.training_jobs import (
    Channel,
    CreateTrainingJobRequest,
    SecondaryStatus,
)
from dockyard.engine.artifacts import pack_artifacts, upload_artifacts
from dockyard.engine.checkpoints import CheckpointMirror
from dockyard.engine.code import find_code, stage_code, submit_directory
from dockyard.engine.context import EngineContext
from dockyard.engine.hosts import (
    Host,
    HostGroup,
    Outcome,
    failure_reason,
)
from dockyard.engine.lifecycle import TrainingLifecycle
from dockyard.engine.logs import TRAINING_LOG_GROUP, LogWriter, stream_name
from dockyard.engine.metrics import MetricScanner
from dockyard.engine.pipes import PipeFeeder
from dockyard.engine.sizing import GpuGrant, gpu_grant, host_limits, resource_env, volume_bytes
from dockyard.engine.staging import (
    ChannelSource,
    download_remote,
    find_channel_source,
    link_files,
    shard,
)
from dockyard.runtimes.base import RunningHost
from dockyard.storage.records import TRAINING_JOBS, TrainingJobRecord

log = logging.getLogger(__name__)

_S = SecondaryStatus


class JobFailed(Exception):
    """Ends a run as Failed with `reason` as the FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[: names.MAX_FAILURE_REASON]


class TrainingRun:
    def __init__(
        self,
        ctx: EngineContext,
        lifecycle: TrainingLifecycle,
        request: CreateTrainingJobRequest,
        record: TrainingJobRecord,
        on_finished: Callable[[str], None],
    ) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle
        self._on_finished = on_finished
        self.request = request
        self.name = request.training_job_name
        self.record = record
        self.folder = ctx.settings.jobs_dir / self.name
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._abort = threading.Event()
        self._max_runtime_hit = False
        self._retries = 0  # attempts started again after a lost host (RetryStrategy)
        self._gpus: GpuGrant | None = None
        self._thread = threading.Thread(target=self._main, name=f"job-{self.name}", daemon=True)
        count = request.resource_config.instance_count
        epoch = int(record.creation_time)
        self.hosts = [
            Host(
                name,
                i,
                OptMl(self.folder / "hosts" / name / "opt_ml"),
                stream_name(self.name, name, epoch),
            )
            for i, name in enumerate(host_names(count))
        ]
        self._placement: Placement | None = None
        self._resumed: Placement | None = None
        self.logs = LogWriter(ctx.metadata, TRAINING_LOG_GROUP)
        image = request.algorithm_specification.training_image or ""
        # The runtime is chosen once, when the run is made: its hosts all run on it.
        self.runtime = ctx.runtime_for(image, requested_runtime(request.tags))
        self._group = HostGroup(
            self.hosts,
            ctx.settings.stop_grace_seconds,
            self._changed,
            self._platform_log,
        )

    # -- control from other threads ------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def resume(self, placement: Placement) -> None:
        """Go on with a job whose hosts still run where they were placed: the server was killed
        with -9, the cluster was not (`Backend.reattach`)."""
        self._resumed = placement
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def request_stop(self) -> None:
        """StopTrainingJob: the status turns Stopping now; the runner does the rest."""
        jobs = self.lifecycle
        with jobs.lock(self.name):
            if self._stop.is_set():
                return
            try:
                jobs.transition(self.name, _S.STOPPING, "Stopping the training job")
            except InvalidTransition:
                return  # already uploading or ending: the job finishes as it was going to
            # Set under the lock, so a runner whose next step was refused sees why.
            self._stop.set()
        self.ctx.metadata.update_resource(TRAINING_JOBS, self.name, state={"stop_requested": True})
        self._changed.set()

    def abort(self) -> None:
        """The server is going away: kill the hosts now, no grace period."""
        self._abort.set()
        self._stop.set()
        self._group.kill()

    # -- the run -------------------------------------------------------------------------------

    def _transition(
        self, target: SecondaryStatus, message: str | None = None, **fields: object
    ) -> None:
        self.lifecycle.transition(self.name, target, message, **fields)

    def _advance(self, target: SecondaryStatus, message: str, **fields: object) -> bool:
        """Move forward to the next phase; False when a stop got there first."""
        try:
            self._transition(target, message, **fields)
        except InvalidTransition:
            if self._stop.is_set():
                return False
            raise
        return True

    def _platform_log(self, message: str) -> None:
        self.logs.write(self.hosts[0].stream, f"[dockyard] {message}")

    def _main(self) -> None:
        try:
            if self._resumed is not None:
                self._resume_run(self._resumed)
            else:
                self._run()
        except Exception as exc:  # the runner must always leave the job in a final status
            log.exception("training job %s: unexpected error", self.name)
            self._finish_failed(f"InternalServerError: {type(exc).__name__}: {exc}")
        finally:
            self.logs.close()
            self._release_hosts()
            # Staged inputs are copies or links of data that lives in the store; the hosts'
            # volumes stay (unmounted) until the job folder retention removes them.
            for scratch in ("staging", "channels"):
                shutil.rmtree(self.folder / scratch, ignore_errors=True)
            self._on_finished(self.name)

    def _release_hosts(self) -> None:
        placement, self._placement = self._placement, None
        if placement is None:
            return
        try:
            placement.release()
        except DockyardError:
            log.exception("training job %s: its hosts were not all released", self.name)

    def _run(self) -> None:
        type_name = self.request.resource_config.instance_type or "local"
        settings = self.ctx.settings
        self._gpus = grant = gpu_grant(settings, type_name, len(self.hosts))
        policy = settings.gpu_shortage if grant.short else None
        if policy == "fail":
            self._finish_failed(grant.failure_reason(policy))
            return
        if policy == "cpu":
            self._platform_log(grant.cpu_note())
        # Under `wait` the job asks the gate for GPUs the machine does not have: it stays
        # Pending until it is stopped.
        held = grant.asked * grant.count if policy == "wait" else grant.total

        def pending(message: str) -> None:
            if policy == "wait":
                message = grant.wait_message()
                self._platform_log(message)
            self._transition(_S.PENDING, message)

        refused = self._refused_by_backend()
        if refused is not None:
            self._finish_failed(f"ClientError: {refused}")
            return
        request = dataclasses.replace(
            placement_request(self.ctx, self.request), gpus_per_host=grant.per_host, held_gpus=held
        )
        while self._place_and_run(request, pending):
            # A host was lost and RetryStrategy asks for another attempt: all hosts again, on
            # whatever nodes have room now.
            self._release_hosts()
            self._reset_hosts()

    def _place_and_run(self, request: PlacementRequest, pending: Callable[[str], None]) -> bool:
        """One attempt; True when it ended with a host lost and the job is to start again."""
        try:
            placement = self.ctx.backend.place(
                request, on_wait=pending, cancelled=self._stop.is_set
            )
        except ResourceLimitExceeded as exc:
            self._finish_failed(f"ResourceLimitExceeded: {exc}")
            return False
        except DockyardError as exc:
            # The hosts could not be placed: the cluster's doing (a node that does not see the
            # server's home, a node lost while starting), not the job's.
            self._finish_failed(f"InternalServerError: {exc}")
            return False
        if placement is None:
            self._finish_stopped()
            return False
        self._placement = placement
        if self.ctx.backend.name != "local":
            for host in self.hosts:
                self._platform_log(f"{host.name} runs on {placement.node_of(host.name).describe()}")
        return self._run_placed(placement)

    def _restarts(self, outcome: Outcome) -> bool:
        """Whether a host lost with its node (not stopped, not failed by its program) starts the
        job again: as SageMaker's RetryStrategy retries a job failed by an internal error, up to
        MaximumRetryAttempts times. Says so in the status and the log."""
        lost = [h.process.lost for h in self.hosts if h.process is not None and h.process.lost]
        retry = self.request.retry_strategy
        if not lost or retry is None or self._stop.is_set():
            return False
        if self._retries >= retry.maximum_retry_attempts:
            return False
        self._retries += 1
        message = (
            f"Restarting the training job: {lost[0]} (retry {self._retries} of "
            f"{retry.maximum_retry_attempts})"
        )
        self._platform_log(message)
        self._transition(_S.RESTARTING, message[: names.MAX_FAILURE_REASON])
        return True

    def _reset_hosts(self) -> None:
        """Every host as before its first start, for another attempt."""
        for host in self.hosts:
            host.process = None
            host.folder = None
            host.stderr_tail.clear()
            host.opt_ml = OptMl(self.folder / "hosts" / host.name / "opt_ml")
        for scratch in ("staging", "channels", "collected"):
            shutil.rmtree(self.folder / scratch, ignore_errors=True)

    def _resume_run(self, placement: Placement) -> None:
        """The hosts run on: read their output from where the last server stopped reading, wait
        for them under what is left of MaxRuntimeInSeconds, then finish as any run does."""
        self._placement = placement
        self._platform_log(
            "the dockyard server restarted: re-attached to the hosts still running on the cluster"
        )
        scanner = MetricScanner(self.request.algorithm_specification.metric_definitions)
        # As _prepare_hosts made them: a FailureReason for a full volume names its size.
        size = volume_bytes(self.ctx.settings, self.request.resource_config.volume_size_in_gb)

        def attach(host: Host) -> Callable[[], RunningHost]:
            def attached() -> RunningHost:
                root = self.folder / "hosts" / host.name
                host.folder, running = placement.attach(
                    host.name, root, size, self._on_output(host, scanner)
                )
                return running

            return attached

        self._group.start({h.name: attach(h) for h in self.hosts})
        started = self.record.state.training_start_time or time.time()
        limit = self.request.stopping_condition.max_runtime_in_seconds
        outcome = self._group.wait(
            max(limit - (time.time() - started), 0.001), self._stop, self._max_runtime_reached
        )
        if self._abort.is_set():
            return
        self._collect(placement)
        self._finish(outcome)

    def _refused_by_backend(self) -> str | None:
        """Why this job cannot run on a cluster backend yet (None: it can): Pipe channels are fed
        and checkpoints mirrored by the server, from its own disk, which the nodes' hosts do not
        share."""
        if self.ctx.backend.name == "local":
            return None
        backend = self.ctx.backend.name
        if any(self.request.input_mode_of(ch) == "Pipe" for ch in self.request.channels):
            return (
                f"Pipe input mode does not run on the {backend} backend yet: use File or "
                "FastFile, or a server with DOCKYARD_BACKEND=local"
            )
        if self.request.checkpoint_config is not None:
            return (
                f"CheckpointConfig does not run on the {backend} backend yet: leave it out, or "
                "use a server with DOCKYARD_BACKEND=local"
            )
        return None

    def _stopped_early(self) -> bool:
        if self._abort.is_set():
            return True
        if self._stop.is_set():
            self._finish_stopped()
            return True
        return False

    def _run_placed(self, placement: Placement) -> bool:
        """The job on its placed hosts; True when a host was lost and it is to start again."""
        if not self._advance(_S.DOWNLOADING, "Preparing the instances for training"):
            self._finish_stopped()
            return False
        spec = self.request.algorithm_specification
        assert spec.training_image is not None
        try:
            self._prepare_hosts(placement)
            self._stage_code()
            for host in self.hosts:
                placement.load(host.name)
            argv = self._image(placement, spec.training_image)
            binds, feeders = self._stage_channels()
        except JobFailed as failed:
            self._finish_failed(failed.reason)
            return False
        except DockyardError as exc:
            self._finish_failed(f"ClientError: {exc}")
            return False
        if self._stopped_early():
            return False
        mirror = self._restore_checkpoints()
        if not self._advance(
            _S.TRAINING,
            "Training image download completed. Training in progress.",
            training_start_time=time.time(),
        ):
            if mirror is not None:
                mirror.close()
            self._finish_stopped()
            return False
        try:
            outcome = self._train(placement, argv, binds, feeders)
        except JobFailed as failed:
            self._finish_failed(failed.reason)
            return False
        finally:
            for feeder in feeders:
                feeder.stop()
            if mirror is not None:
                mirror.close()
        if self._abort.is_set():
            return False
        if self._restarts(outcome):
            return True
        self._collect(placement)
        self._finish(outcome)
        return False

    # -- phases --------------------------------------------------------------------------------

    def _prepare_hosts(self, placement: Placement) -> None:
        names_ = [h.name for h in self.hosts]
        channels = {
            ch.channel_name: ChannelConfig(
                input_mode=self.request.input_mode_of(ch),
                distribution=ch.s3.s3_data_distribution_type,
                record_wrapper=ch.record_wrapper_type or "None",
                content_type=ch.content_type,
            )
            for ch in self.request.channels
        }
        checkpoint = self.request.checkpoint_config
        size = volume_bytes(self.ctx.settings, self.request.resource_config.volume_size_in_gb)
        for host in self.hosts:
            host.folder = placement.prepare(host.name, host.opt_ml.root.parent, size)
            host.opt_ml = OptMl(host.folder.opt_ml)
            host.opt_ml.create()
            write_training_config(
                host.opt_ml,
                hyperparameters=self.request.hyper_parameters,
                channels=channels,
                resources=resource_config(
                    host.name, names_, self.request.resource_config.instance_type or "local"
                ),
                checkpoint=(
                    checkpoint_config(checkpoint.s3_uri, checkpoint.local_path)
                    if checkpoint is not None
                    else None
                ),
            )

    def _image(self, placement: Placement, name: str) -> list[str]:
        """The image made ready where the hosts run, with the code's requirements installed,
        all before any host starts; the argv the hosts run."""
        spec = self.request.algorithm_specification
        use = ImageUse(
            ref=name,
            runtime=self.runtime.name,
            purpose="train",
            entrypoint=spec.container_entrypoint,
            arguments=spec.container_arguments,
        )
        return placement.prepare_image(use, self.ctx.local_paths.readable, self._platform_log)

    def _stage_code(self) -> None:
        uri = submit_directory(self.request.hyper_parameters)
        if uri is None:
            return
        source = find_code(uri, self.ctx.store, self.ctx.local_paths)
        for host in self.hosts:
            stage_code(
                source,
                self.ctx.store,
                host.opt_ml.code_dir,
                self.folder / "staging",
                self.ctx.archive_limits,
            )
        self._platform_log(f"code from {uri} is in /opt/ml/code")

    def _progress(self, verb: str, total: int) -> tuple[list[int], Callable[[int], None]]:
        done = [0]

        last = [time.monotonic()]

        def report(count: int) -> None:
            # At most two writes a second, and none for a transfer that is over in less.
            done[0] += count
            now = time.monotonic()
            if now - last[0] >= 0.5:
                last[0] = now
                self.ctx.metadata.set_transition_message(
                    self.name, f"{verb}: {_size(done[0])} of {_size(total)}"
                )

        return done, report

    def _stage_channels(self) -> tuple[dict[str, list[tuple[Path, str]]], list[PipeFeeder]]:
        """Per host: read-only binds for File/FastFile channels and feeders for Pipe ones."""
        binds: dict[str, list[tuple[Path, str]]] = {h.name: [] for h in self.hosts}
        feeders: list[PipeFeeder] = []
        store = self.ctx.store
        for channel in self.request.channels:
            source = find_channel_source(
                channel.s3.s3_uri,
                store,
                local_paths=self.ctx.local_paths,
                remote=self.ctx.remote_store,
            )
            if source.remote:
                _, report = self._progress("Downloading input data", source.total_bytes)
                source = download_remote(
                    source,
                    store,
                    self.folder / "channels" / channel.channel_name,
                    progress=report,
                )
            self._platform_log(
                f"channel {channel.channel_name}: {len(source.files)} files, "
                f"{_size(source.total_bytes)} from {source.uri}"
            )
            for host in self.hosts:
                files = source.files
                sharded = channel.s3.s3_data_distribution_type == "ShardedByS3Key"
                if sharded:
                    files = shard(source.files, host.index, len(self.hosts))
                mode = self.request.input_mode_of(channel)
                if mode == "Pipe":
                    feeder = PipeFeeder(
                        host.opt_ml.data_dir,
                        channel.channel_name,
                        [f.local for f in files if f.local is not None],
                        gzip_compressed=channel.compression_type == "Gzip",
                        recordio=channel.record_wrapper_type == "RecordIO",
                        log=self._platform_log,
                    )
                    feeder.prepare()
                    feeders.append(feeder)
                    continue
                target = f"/opt/ml/input/data/{channel.channel_name}"
                binds[host.name].append(
                    (self._channel_folder(source, files, sharded, host, channel), target)
                )
        return binds, feeders

    def _channel_folder(
        self, source: ChannelSource, files: list, sharded: bool, host: Host, channel: Channel
    ) -> Path:
        # Zero copy: bind the folder that holds exactly this channel's files; otherwise a
        # folder of hard links to the host's share of them.
        if not sharded and source.folder is not None:
            return source.folder
        staging = self.folder / "staging" / host.name / channel.channel_name
        if staging.exists():
            shutil.rmtree(staging)
        return link_files(files, staging)

    def _restore_checkpoints(self) -> CheckpointMirror | None:
        checkpoint = self.request.checkpoint_config
        if checkpoint is None:
            return None
        local = checkpoint.local_path or "/opt/ml/checkpoints"
        relative = local.removeprefix("/opt/ml/").strip("/")
        mirror = CheckpointMirror(
            self.ctx.store,
            checkpoint.s3_uri,
            [h.opt_ml.root / relative for h in self.hosts],
            log=self._platform_log,
        )
        restored = mirror.restore()
        self._platform_log(f"checkpoints: restored {restored} files from {checkpoint.s3_uri}")
        mirror.start()
        return mirror

    def _host_run(self, argv: list[str], binds: list[tuple[Path, str]]) -> HostRun:
        settings = self.ctx.settings
        limits = host_limits(settings, self.request.resource_config.instance_type or "local")
        assert self._gpus is not None
        env = {
            "TRAINING_JOB_NAME": self.name,
            "TRAINING_JOB_ARN": self.record.arn,
            "AWS_REGION": settings.region,
            "AWS_DEFAULT_REGION": settings.region,
            **resource_env(limits, self._gpus),
            **self.request.environment,
        }
        return HostRun(
            argv=argv,
            env=env,
            read_only_binds=binds,
            hidden_paths=self.ctx.forbidden_paths,
            limits=limits,
            gpus=self._gpus.per_host,
        )

    def _on_output(self, host: Host, scanner: MetricScanner) -> Callable[[str, str], None]:
        def sink(stream: str, line: str) -> None:
            now = time.time()
            self.logs.write(host.stream, line, now)
            if stream == "stderr":
                host.stderr_tail.append(line)
            # Per host, as CloudWatch's /aws/sagemaker/TrainingJobs metrics have a Host each;
            # a re-attached run's output comes through here too.
            points = scanner.scan(line, now, host.name)
            if points:
                self.ctx.metadata.add_metric_points(self.name, points)

        return sink

    def _train(
        self,
        placement: Placement,
        argv: list[str],
        binds: dict[str, list[tuple[Path, str]]],
        feeders: list[PipeFeeder],
    ) -> Outcome:
        scanner = MetricScanner(self.request.algorithm_specification.metric_definitions)

        def starter(host: Host) -> Callable[[], RunningHost]:
            run = self._host_run(argv, binds[host.name])
            return lambda: placement.start(host.name, run, self._on_output(host, scanner))

        try:
            self._group.start({h.name: starter(h) for h in self.hosts})
        except DockyardError as exc:
            # e.g. the image's program is not there: a user error, reported as such.
            raise JobFailed(f"ClientError: {exc}") from exc
        for feeder in feeders:
            feeder.start()
        return self._group.wait(
            self.request.stopping_condition.max_runtime_in_seconds,
            self._stop,
            self._max_runtime_reached,
        )

    def _max_runtime_reached(self) -> bool:
        """Turn the job Stopping for MaxRuntimeInSeconds, unless a user stop got there first."""
        with self.lifecycle.lock(self.name):
            if self._stop.is_set():
                return False
            self._transition(_S.STOPPING, "Stopping the training job: MaxRuntimeInSeconds exceeded")
            self._max_runtime_hit = True
            self._stop.set()
        self._platform_log("MaxRuntimeInSeconds reached: stopping the hosts (SIGTERM)")
        return True

    # -- endings -------------------------------------------------------------------------------

    def _collect(self, placement: Placement) -> None:
        """Read what each host wrote where the backend puts it (where it lies, on this machine)."""
        for host in self.hosts:
            try:
                host.opt_ml = placement.collect(host.name, self.folder / "collected")
            except DockyardError as exc:
                self._platform_log(f"what {host.name} wrote could not be collected: {exc}")

    def _finish(self, outcome: Outcome) -> None:
        stopped = self._stop.is_set() and outcome.first_failure is None
        failure = None if stopped else failure_reason(self.hosts, outcome)
        try:
            self._upload()
        except Exception as exc:
            log.exception("training job %s: upload failed", self.name)
            if failure is None and not stopped:
                failure = f"ClientError: could not upload the model artifacts: {exc}"
        end = time.time()
        if stopped:
            final = _S.MAX_RUNTIME_EXCEEDED if self._max_runtime_hit else _S.STOPPED
            message = (
                "Training job stopped: MaxRuntimeInSeconds exceeded"
                if self._max_runtime_hit
                else "Training job stopped by StopTrainingJob"
            )
            self._transition(final, message, training_end_time=end)
        elif failure is not None:
            self._transition(
                _S.FAILED,
                "Training job failed",
                failure_reason=failure[: names.MAX_FAILURE_REASON],
                training_end_time=end,
            )
        else:
            self._transition(_S.COMPLETED, "Training job completed", training_end_time=end)

    def _upload(self) -> None:
        if self._stop.is_set():
            current = self.lifecycle.secondary_status(self.name)
            if current is not _S.STOPPING:
                self._transition(_S.STOPPING, "Stopping the training job")
        self._transition(_S.UPLOADING, "Uploading generated training model")
        folders = [h.opt_ml for h in self.hosts]
        tarballs = pack_artifacts(
            [f.model_dir for f in folders],
            [f.output_data_dir for f in folders],
            self.folder,
            log=self._platform_log,
        )
        total = sum(t.stat().st_size for t in tarballs)
        _, report = self._progress("Uploading generated training model", total)
        upload_artifacts(
            self.ctx.store,
            self.request.output_data_config.s3_output_path,
            self.name,
            tarballs,
            progress=report,
        )

    def _finish_failed(self, reason: str) -> None:
        current = self.lifecycle.secondary_status(self.name)
        if current in (_S.COMPLETED, _S.FAILED, _S.STOPPED, _S.MAX_RUNTIME_EXCEEDED):
            return
        self._transition(
            _S.FAILED,
            "Training job failed",
            failure_reason=reason[: names.MAX_FAILURE_REASON],
            training_end_time=time.time(),
        )

    def _finish_stopped(self) -> None:
        current = self.lifecycle.secondary_status(self.name)
        if current is not _S.STOPPING:
            self._transition(_S.STOPPING, "Stopping the training job")
        self._transition(
            _S.STOPPED,
            "Training job stopped before training started",
            training_end_time=time.time(),
        )


def placement_request(ctx: EngineContext, request: CreateTrainingJobRequest) -> PlacementRequest:
    """What the hosts of a training job ask of the backend (its GPUs: see engine.sizing)."""
    spec = request.algorithm_specification
    runtime = ctx.runtime_for(spec.training_image or "", requested_runtime(request.tags))
    return PlacementRequest(
        owner=request.training_job_name,
        hosts=host_names(request.resource_config.instance_count),
        instance=instance_type(request.resource_config.instance_type or "local"),
        runtime=runtime.name,
        outside=not request.enable_network_isolation,
    )


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} GiB"
