"""The exceptions notebook code catches, named and shaped as the SageMaker SDK's."""

from __future__ import annotations


class UnexpectedStatusException(ValueError):
    """A job ended in a status the caller did not allow (Failed): `Error for Training job <name>:
    Failed. Reason: <FailureReason>`."""

    def __init__(self, message: str, allowed_statuses: list[str], actual_status: str) -> None:
        super().__init__(message)
        self.allowed_statuses = allowed_statuses
        self.actual_status = actual_status


class CapacityError(UnexpectedStatusException):
    """A job failed for want of capacity (its FailureReason mentions CapacityError)."""
