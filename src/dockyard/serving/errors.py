"""The serving errors: each carries the HTTP status an invocation answers with."""

from __future__ import annotations


class ServingError(Exception):
    """Base of every error the serving toolkit turns into an HTTP status other than 500."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ServingError):
    """The request body could not be decoded as its content type says."""

    status = 400


class UnsupportedMediaType(ServingError):
    """No codec for the request's Content-Type."""

    status = 415


class NotAcceptable(ServingError):
    """None of the types in the request's Accept can be produced."""

    status = 406


class HandlerLoadError(Exception):
    """The user's inference module is missing or invalid, or loading the model failed."""
