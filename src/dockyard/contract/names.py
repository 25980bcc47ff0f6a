"""Names, patterns and limits of the SageMaker API (from the botocore service model)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# Patterns are anchored here; the API model gives them without anchors.
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MODEL_NAME = re.compile(r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$")
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9\.\-_]{1,64}$")
ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
S3_URI = re.compile(r"^(https|s3)://([^/]+)/?(.*)$")
ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
NAME_CONTAINS = re.compile(r"^[a-zA-Z0-9\-]+$")

MAX_NAME_LENGTH = 63
MAX_HYPERPARAMETERS = 100
MAX_HYPERPARAMETER_KEY_LENGTH = 256
MAX_HYPERPARAMETER_VALUE_LENGTH = 2500
MAX_CHANNELS = 20
MAX_ENVIRONMENT_ENTRIES = 100
MAX_ENVIRONMENT_KEY_LENGTH = 512
MAX_ENVIRONMENT_VALUE_LENGTH = 512
MAX_METRIC_DEFINITIONS = 40
MAX_FAILURE_REASON = 1024
MAX_RUNTIME_SECONDS = 28 * 24 * 3600
DEFAULT_MAX_RUNTIME_SECONDS = 86400

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"


def arn(
    resource_type: str, name: str, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT
) -> str:
    """`arn:aws:sagemaker:<region>:<account>:<type>/<name>`; real ARNs lower-case the name."""
    return f"arn:aws:sagemaker:{region}:{account}:{resource_type}/{name.lower()}"


def job_name_from_base(base: str, now: datetime | None = None) -> str:
    """A unique job name from a base, the way the SageMaker SDK's `name_from_base` makes them:
    `<base>-<YYYY-mm-dd-HH-MM-SS-mmm>`, the base trimmed so the whole stays within 63 characters."""
    now = now or datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d-%H-%M-%S-") + f"{now.microsecond // 1000:03d}"
    cleaned = re.sub(r"[^a-zA-Z0-9-]+", "-", base).strip("-") or "job"
    room = MAX_NAME_LENGTH - len(stamp) - 1
    return f"{cleaned[:room].rstrip('-')}-{stamp}"
