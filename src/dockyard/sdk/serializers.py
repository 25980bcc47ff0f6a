"""Serializers: what `Predictor.predict` sends, and as which Content-Type, as the SDK's.

numpy and pandas are not dependencies of dockyard: their objects are recognised when the caller
has imported them, and only NumpySerializer needs numpy itself (an ImportError says so).
"""

from __future__ import annotations

import abc
import csv
import io
import json
import sys
from collections.abc import Iterable
from typing import Any

__all__ = [
    "BaseSerializer",
    "CSVSerializer",
    "DataSerializer",
    "IdentitySerializer",
    "JSONLinesSerializer",
    "JSONSerializer",
    "LibSVMSerializer",
    "NumpySerializer",
    "SimpleBaseSerializer",
    "StringSerializer",
]


def is_ndarray(data: Any) -> bool:
    """Whether `data` is a numpy array, without importing numpy: if the caller never imported
    it, `data` cannot be one."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(data, numpy.ndarray)


def _is_dataframe(data: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


def import_numpy(user: str) -> Any:
    """numpy, for the (de)serializers that cannot work without it."""
    try:
        import numpy  # optional: dockyard itself does not depend on it
    except ImportError:
        raise ImportError(
            f"{user} needs numpy, which is not installed: pip install numpy, or use the JSON or "
            "CSV (de)serializers"
        ) from None
    return numpy


class BaseSerializer(abc.ABC):
    """A serializer: `serialize(data)` gives the request body, `CONTENT_TYPE` its media type."""

    @abc.abstractmethod
    def serialize(self, data: Any) -> Any:
        """The request body for `data` (str or bytes)."""

    @property
    @abc.abstractmethod
    def CONTENT_TYPE(self) -> str:
        """The Content-Type of the request."""


class SimpleBaseSerializer(BaseSerializer):
    """A serializer whose Content-Type is given when it is made (and may be changed later)."""

    def __init__(self, content_type: str = "application/json") -> None:
        if not isinstance(content_type, str):
            raise ValueError(
                "content_type must be a string specifying the MIME type of the data sent in "
                f"requests: e.g. 'application/json', 'text/csv', etc. Got {content_type}"
            )
        self.content_type = content_type

    @property
    def CONTENT_TYPE(self) -> str:
        return self.content_type


class CSVSerializer(SimpleBaseSerializer):
    """A list, tuple, numpy array or DataFrame as CSV: a sequence of sequences is one row each,
    anything else one row; strings and file-like objects are sent as they are."""

    def __init__(self, content_type: str = "text/csv") -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        if hasattr(data, "read"):
            return data.read()
        if _is_dataframe(data):
            return data.to_csv(header=False, index=False)
        # As the SDK: rows only from a mutable sequence (a list or an array), so a tuple of
        # tuples stays one row.
        mutable = _is_sequence_like(data) and hasattr(data, "__setitem__")
        if mutable and len(data) > 0 and _is_sequence_like(data[0]):
            return "\n".join(self._serialize_row(row) for row in data)
        return self._serialize_row(data)

    def _serialize_row(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        if is_ndarray(data):
            data = data.flatten()
        if hasattr(data, "__len__"):
            if len(data) == 0:
                raise ValueError("Cannot serialize empty array")
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=",").writerow(data)
            return buffer.getvalue().rstrip("\r\n")
        raise ValueError(f"Unable to handle input format: {type(data)}")


def _is_sequence_like(data: Any) -> bool:
    return hasattr(data, "__iter__") and hasattr(data, "__getitem__")


class JSONSerializer(SimpleBaseSerializer):
    """Any JSON-serializable value (numpy arrays, also as the values of a dict, become lists);
    file-like objects are sent as they are."""

    def serialize(self, data: Any) -> Any:
        if isinstance(data, dict):
            return json.dumps(
                {key: value.tolist() if is_ndarray(value) else value for key, value in data.items()}
            )
        if hasattr(data, "read"):
            return data.read()
        if is_ndarray(data):
            return json.dumps(data.tolist())
        return json.dumps(data)


class JSONLinesSerializer(SimpleBaseSerializer):
    """An iterable as one JSON value per line; strings and file-like objects as they are."""

    def __init__(self, content_type: str = "application/jsonlines") -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        if isinstance(data, str):
            return data
        if hasattr(data, "read"):
            return data.read()
        if isinstance(data, Iterable):
            return "\n".join(json.dumps(element) for element in data)
        raise ValueError(f"Object of type {type(data)} is not JSON Lines serializable.")


class NumpySerializer(SimpleBaseSerializer):
    """An array (or a list, made an array of `dtype`) in the .npy format; file-like objects are
    assumed to hold .npy data already. Needs numpy."""

    def __init__(self, dtype: Any = None, content_type: str = "application/x-npy") -> None:
        super().__init__(content_type)
        self.dtype = dtype

    def serialize(self, data: Any) -> Any:
        if hasattr(data, "read"):
            return data.read()
        numpy = import_numpy(type(self).__name__)
        if isinstance(data, numpy.ndarray):
            if data.size == 0:
                raise ValueError("Cannot serialize empty array.")
            return self._serialize_array(numpy, data)
        if isinstance(data, list):
            if len(data) == 0:
                raise ValueError("Cannot serialize empty array.")
            return self._serialize_array(numpy, numpy.array(data, self.dtype))
        return self._serialize_array(numpy, numpy.array(data))

    @staticmethod
    def _serialize_array(numpy: Any, array: Any) -> bytes:
        buffer = io.BytesIO()
        numpy.save(buffer, array)
        return buffer.getvalue()


class IdentitySerializer(SimpleBaseSerializer):
    """The data as it is (bytes, such as an image file's contents)."""

    def __init__(self, content_type: str = "application/octet-stream") -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        return data


class StringSerializer(SimpleBaseSerializer):
    """A string, encoded as UTF-8."""

    def __init__(self, content_type: str = "text/plain") -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> bytes:
        if isinstance(data, str):
            return data.encode("utf-8")
        raise ValueError(f"Object of type {type(data)} is not String serializable.")


class LibSVMSerializer(SimpleBaseSerializer):
    """Data already in LibSVM format (a string or a file-like object)."""

    def __init__(self, content_type: str = "text/libsvm") -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> Any:
        if isinstance(data, str):
            return data
        if hasattr(data, "read"):
            return data.read()
        raise ValueError(f"Unable to handle input format: {type(data)}")


class DataSerializer(SimpleBaseSerializer):
    """The bytes of a file (given by its path) or bytes as they are."""

    def __init__(self, content_type: str = "file-path/raw-bytes") -> None:
        super().__init__(content_type)

    def serialize(self, data: Any) -> bytes:
        if isinstance(data, str):
            try:
                with open(data, "rb") as file:
                    return file.read()
            except OSError as exc:
                raise ValueError(f"Could not open/read file: {data}. {exc}") from exc
        if isinstance(data, bytes):
            return data
        if isinstance(data, dict) and "data" in data:
            return self.serialize(data["data"])
        raise ValueError(f"Object of type {type(data)} is not Data serializable.")
