"""The one exception hierarchy of dockyard; each class carries the SageMaker error code."""

from __future__ import annotations

# One table from error code to HTTP status; the API layer is the only reader (MLflow's
# ERROR_CODE_TO_HTTP_STATUS is the model). SageMaker answers 400 for every client error.
HTTP_STATUS_BY_CODE: dict[str, int] = {
    "ValidationException": 400,
    "SerializationException": 400,
    "UnknownOperationException": 400,
    "ResourceNotFound": 400,
    "ResourceInUse": 400,
    "ResourceLimitExceeded": 400,
    "ConflictException": 400,
    "AccessDeniedException": 403,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "BucketNotEmpty": 409,
    "KeyConflict": 409,
    "ResourceNotFoundException": 400,
    # CloudWatch Logs' client errors.
    "InvalidParameterException": 400,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    # The runtime API (InvokeEndpoint) has its own codes.
    "ValidationError": 400,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    # A control-plane body over DOCKYARD_MAX_REQUEST_BYTES (the HTTP status for it).
    "RequestEntityTooLargeException": 413,
}


class DockyardError(Exception):
    """Base of every error dockyard raises on purpose; `str(err)` is the message a user sees."""

    code = "InternalFailure"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS_BY_CODE.get(self.code, 500)


class ValidationError(DockyardError):
    """The request breaks a rule of the API: a name, a limit, a missing field, a bad value."""

    code = "ValidationException"


class SerializationError(DockyardError):
    """The request body is not the JSON the protocol expects."""

    code = "SerializationException"


class NotFoundError(ValidationError):
    """A named resource does not exist. SageMaker reports this as ValidationException
    (botocore's waiters depend on it), not as the modeled ResourceNotFound."""


class ResourceInUse(DockyardError):
    """A resource with that name already exists, or is busy."""

    code = "ResourceInUse"


class ResourceLimitExceeded(DockyardError):
    code = "ResourceLimitExceeded"


class ModelNotReady(DockyardError):
    """The runtime API's answer for an endpoint that exists but is not InService yet."""

    code = "ModelNotReadyException"


class RequestTooLarge(DockyardError):
    """The request body is larger than the server accepts."""

    code = "RequestEntityTooLargeException"


class ConflictError(DockyardError):
    """The resource is in a state that does not allow the change (e.g. stopping a finished job)."""

    code = "ConflictException"


class InvalidTransition(DockyardError):
    """A status change that the lifecycle's transition table does not allow (a bug)."""

    code = "InternalFailure"


class ImageError(ValidationError):
    """An image can't be used: missing folder, no Dockerfile, an instruction we can't honour."""


class StorageError(DockyardError):
    """An object store failed (disk, network, permissions)."""

    code = "InternalFailure"


class NoSuchBucket(StorageError):
    code = "NoSuchBucket"


class NoSuchKey(StorageError):
    code = "NoSuchKey"


class BucketNotEmpty(StorageError):
    code = "BucketNotEmpty"


class KeyConflict(StorageError):
    """A key the store cannot hold beside another (the local store: a key that is also a
    folder of other keys)."""

    code = "KeyConflict"


class EnvironmentBuildError(DockyardError):
    """A framework environment or a requirements layer could not be built; the message carries
    pip's own last error lines."""


class ServiceUnavailable(DockyardError):
    """The request may succeed when retried (botocore retries this code by itself)."""

    code = "ServiceUnavailable"


class MetadataUnavailable(ServiceUnavailable):
    """The metadata database cannot be opened (wrong URL, server down, no such database)."""


class SandboxError(DockyardError):
    """The runtime could not start or control a host's sandbox."""

    code = "InternalFailure"


class EcrError(DockyardError):
    """An error of the ECR API, with one of the error codes of botocore's ECR model (the
    engine names them from the model; tests/engine/test_ecr_errors.py checks every one)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def http_status(self) -> int:
        # ECR answers its client errors with 400. The server-side ones are 400 here too: a 5xx
        # makes botocore retry for seconds what another try cannot fix (no registry installed).
        return 400


class RegistryUnavailable(EcrError):
    """No image registry to serve the ECR API from, or it does not answer."""

    def __init__(self, message: str) -> None:
        super().__init__("ServerException", message)


class CloudWatchError(DockyardError):
    """An error of the CloudWatch API, with one of the error codes of botocore's CloudWatch
    model (InvalidParameterValue, MissingParameter, InvalidParameterCombination,
    InvalidNextToken); the API edge finds its shape and HTTP status in that model."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def http_status(self) -> int:
        return 400  # every CloudWatch client error the model names is a 400
