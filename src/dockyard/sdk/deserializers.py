"""Deserializers: what `Predictor.predict` returns from a response body, and which Accept it asks
for, as the SDK's. Each reads (and closes) the body stream boto3 returns."""

from __future__ import annotations

import abc
import codecs
import csv
import io
import json
from typing import Any

from dockyard.sdk.serializers import import_numpy

__all__ = [
    "BaseDeserializer",
    "BytesDeserializer",
    "CSVDeserializer",
    "JSONDeserializer",
    "JSONLinesDeserializer",
    "NumpyDeserializer",
    "SimpleBaseDeserializer",
    "StreamDeserializer",
    "StringDeserializer",
]


class BaseDeserializer(abc.ABC):
    """A deserializer: `deserialize(stream, content_type)` gives the prediction, `ACCEPT` the
    media types asked for."""

    @abc.abstractmethod
    def deserialize(self, stream: Any, content_type: str) -> Any:
        """The prediction in the response body `stream` of type `content_type`."""

    @property
    @abc.abstractmethod
    def ACCEPT(self) -> tuple[str, ...]:
        """The media types expected from the endpoint."""


class SimpleBaseDeserializer(BaseDeserializer):
    """A deserializer whose Accept (a media type or a tuple of them) is given when it is made."""

    def __init__(self, accept: str | tuple[str, ...] = "*/*") -> None:
        self.accept = accept

    @property
    def ACCEPT(self) -> tuple[str, ...]:
        return (self.accept,) if isinstance(self.accept, str) else tuple(self.accept)


class BytesDeserializer(SimpleBaseDeserializer):
    """The body as bytes."""

    def deserialize(self, stream: Any, content_type: str) -> bytes:
        try:
            return bytes(stream.read())
        finally:
            stream.close()


class StringDeserializer(SimpleBaseDeserializer):
    """The body decoded as text."""

    def __init__(self, encoding: str = "UTF-8", accept: str | tuple[str, ...] = "application/json"):
        super().__init__(accept)
        self.encoding = encoding

    def deserialize(self, stream: Any, content_type: str) -> str:
        try:
            return str(stream.read().decode(self.encoding))
        finally:
            stream.close()


class CSVDeserializer(SimpleBaseDeserializer):
    """CSV as a list of rows, each a list of strings."""

    def __init__(self, encoding: str = "utf-8", accept: str | tuple[str, ...] = "text/csv"):
        super().__init__(accept)
        self.encoding = encoding

    def deserialize(self, stream: Any, content_type: str) -> list[list[str]]:
        try:
            return list(csv.reader(stream.read().decode(self.encoding).splitlines()))
        finally:
            stream.close()


class StreamDeserializer(SimpleBaseDeserializer):
    """The body stream itself and its content type, as a pair; the caller closes the stream."""

    def deserialize(self, stream: Any, content_type: str) -> tuple[Any, str]:
        return stream, content_type


class JSONDeserializer(SimpleBaseDeserializer):
    """JSON as Python values."""

    def __init__(self, accept: str | tuple[str, ...] = "application/json") -> None:
        super().__init__(accept)

    def deserialize(self, stream: Any, content_type: str) -> Any:
        try:
            return json.load(codecs.getreader("utf-8")(stream))
        finally:
            stream.close()


class JSONLinesDeserializer(SimpleBaseDeserializer):
    """JSON Lines as a list of Python values, one per line."""

    def __init__(self, accept: str | tuple[str, ...] = "application/jsonlines") -> None:
        super().__init__(accept)

    def deserialize(self, stream: Any, content_type: str) -> list[Any]:
        try:
            lines = stream.read().decode("utf-8").rstrip().split("\n")
            return [json.loads(line) for line in lines]
        finally:
            stream.close()


class NumpyDeserializer(SimpleBaseDeserializer):
    """.npy, .npz, CSV or JSON as a numpy array (.npz: the mapping numpy.load gives). Needs
    numpy. Unlike the SDK, a content type with parameters (`text/csv; charset=utf-8`) is read
    too: dockyard.serving's codecs accept them, so answers may carry them."""

    def __init__(
        self,
        dtype: Any = None,
        accept: str | tuple[str, ...] = "application/x-npy",
        allow_pickle: bool = False,
    ) -> None:
        super().__init__(accept)
        self.dtype = dtype
        self.allow_pickle = allow_pickle

    def deserialize(self, stream: Any, content_type: str) -> Any:
        numpy = import_numpy(type(self).__name__)
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        try:
            if media_type == "text/csv":
                return numpy.genfromtxt(
                    codecs.getreader("utf-8")(stream), delimiter=",", dtype=self.dtype
                )
            if media_type == "application/json":
                return numpy.array(json.load(codecs.getreader("utf-8")(stream)), dtype=self.dtype)
            if media_type in ("application/x-npy", "application/x-npz"):
                try:
                    return numpy.load(io.BytesIO(stream.read()), allow_pickle=self.allow_pickle)
                except ValueError as exc:
                    raise ValueError(
                        "Please set the param allow_pickle=True to deserialize pickle objects in "
                        "NumpyDeserializer"
                    ) from exc
        finally:
            stream.close()
        raise ValueError(f"NumpyDeserializer cannot read content type {content_type}.")
