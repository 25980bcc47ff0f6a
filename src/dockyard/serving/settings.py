"""Serving settings, read once from the environment when the server starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of seconds") from None


def _positive(environ: Mapping[str, str], name: str, default: float) -> float:
    seconds = _float(environ, name, default)
    if not seconds > 0:
        raise ValueError(f"{name}={seconds:g} must be a number of seconds above 0")
    return seconds


@dataclass(frozen=True)
class ServingSettings:
    """Everything the toolkit reads from ``SAGEMAKER_*`` variables, with SageMaker's defaults, and
    from dockyard's own ``DOCKYARD_SERVING_*`` ones."""

    base_dir: Path = Path("/opt/ml")
    program: str = "inference"
    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 1
    timeout_seconds: float = 60.0
    max_payload_bytes: int = 6 * MIB
    default_accept: str = "application/json"
    preload_model: bool = False
    log_level: int = 20
    # How long a client may take to send a request (not SageMaker variables: dockyard's own, so
    # that a half-sent request cannot hold a connection and its buffer forever).
    header_timeout_seconds: float = 20.0
    body_timeout_seconds: float = 30.0
    body_min_rate: int = 64 * 1024

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"

    @property
    def code_dir(self) -> Path:
        return self.model_dir / "code"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        env = os.environ if environ is None else environ
        program = env.get("SAGEMAKER_PROGRAM", "").strip() or "inference.py"
        program = program.removesuffix(".py")
        workers = _int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1)
        if workers < 1:
            raise ValueError(f"SAGEMAKER_MODEL_SERVER_WORKERS={workers} must be at least 1")
        min_rate = _int(env, "DOCKYARD_SERVING_BODY_MIN_RATE", 64 * 1024)
        if min_rate < 0:
            raise ValueError(f"DOCKYARD_SERVING_BODY_MIN_RATE={min_rate} must be 0 or more")
        return cls(
            base_dir=Path(env.get("SAGEMAKER_BASE_DIR", "").strip() or "/opt/ml"),
            program=program,
            # Not a SageMaker variable: SageMaker always binds 0.0.0.0; tests and the process
            # runtime may want loopback only.
            host=env.get("DOCKYARD_SERVING_HOST", "").strip() or "0.0.0.0",
            port=_int(env, "SAGEMAKER_BIND_TO_PORT", 8080),
            workers=workers,
            timeout_seconds=_float(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60.0),
            # 0 means "no limit" to batch transform; 100 MB is the most a job ever sends.
            max_payload_bytes=(_int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6) or 100) * MIB,
            default_accept=env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "").strip()
            or "application/json",
            preload_model=env.get("SAGEMAKER_PRELOAD_MODEL", "").strip().lower()
            in ("1", "true", "yes"),
            log_level=_int(env, "SAGEMAKER_CONTAINER_LOG_LEVEL", 20),
            # The whole head (request line and headers) within this many seconds of its first byte:
            # a fixed deadline, since a client trickling a byte at a time always shows "progress".
            header_timeout_seconds=_positive(env, "DOCKYARD_SERVING_HEADER_TIMEOUT", 20.0),
            # The body may pause this long between bytes ...
            body_timeout_seconds=_positive(env, "DOCKYARD_SERVING_BODY_TIMEOUT", 30.0),
            # ... and must average this many bytes/s after that grace (0: no floor); otherwise a
            # client could keep a nearly complete 6 MB body, and its buffer, alive a byte at a time.
            body_min_rate=min_rate,
        )
