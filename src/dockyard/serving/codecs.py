"""Content types: one table of codecs, media-type and Accept parsing."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest, NotAcceptable, UnsupportedMediaType

JSON = "application/json"
CSV = "text/csv"
JSONLINES = "application/jsonlines"
NPY = "application/x-npy"


def parse_media_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``'Text/CSV; charset=UTF-8'`` -> ``('text/csv', {'charset': 'UTF-8'})``."""
    if not value:
        return "", {}
    mime, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, sep, val = part.partition("=")
        if sep:
            params[key.strip().lower()] = val.strip().strip('"')
    return mime.strip().lower(), params


def parse_accept(accept: str | None, default: str) -> list[str]:
    """Media ranges of an Accept header, best first; missing or ``*/*`` means ``default``."""
    if not accept or not accept.strip():
        return [parse_media_type(default)[0]]
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(accept.split(",")):
        mime, params = parse_media_type(item)
        if not mime:
            continue
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        if q <= 0:
            continue
        if mime in ("*/*", "*"):
            mime = parse_media_type(default)[0]
        ranked.append((-q, index, mime))
    ranked.sort()
    return [mime for _, _, mime in ranked]


def _numpy() -> Any:
    try:
        import numpy  # optional: only the npy codec and numpy results need it
    except ImportError:
        return None
    return numpy


def _to_plain(obj: Any) -> Any:
    """numpy arrays and scalars (anything with ``tolist``) to plain Python values."""
    tolist = getattr(obj, "tolist", None)
    return tolist() if callable(tolist) else obj


def _text(data: bytes | str, charset: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode(charset)
    except LookupError:
        raise UnsupportedMediaType(f"unknown charset {charset!r}") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not valid {charset}: {exc.reason}") from None


def _json_default(obj: Any) -> Any:
    plain = _to_plain(obj)
    if plain is obj:
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
    return plain


def _decode_json(data: bytes | str, charset: str) -> Any:
    try:
        return json.loads(_text(data, charset))
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _encode_json(obj: Any) -> bytes:
    return json.dumps(_to_plain(obj), default=_json_default).encode()


def _decode_jsonlines(data: bytes | str, charset: str) -> list[Any]:
    values = []
    for number, line in enumerate(_text(data, charset).splitlines(), start=1):
        if line.strip():
            try:
                values.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise BadRequest(f"line {number} is not valid JSON: {exc}") from None
    return values


def _encode_jsonlines(obj: Any) -> bytes:
    obj = _to_plain(obj)
    items = obj if isinstance(obj, list | tuple) else [obj]
    return "".join(json.dumps(item, default=_json_default) + "\n" for item in items).encode()


def _cell(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _decode_csv(data: bytes | str, charset: str) -> list[list[float | str]]:
    reader = csv.reader(io.StringIO(_text(data, charset)))
    return [[_cell(value) for value in row] for row in reader if row]


def _encode_csv(obj: Any) -> bytes:
    obj = _to_plain(obj)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if not isinstance(obj, list | tuple):
        writer.writerow([obj])
    else:
        # Like numpy.savetxt: a flat sequence is one value per line (one prediction per record).
        for row in obj:
            row = _to_plain(row)
            writer.writerow(row if isinstance(row, list | tuple) else [row])
    return buffer.getvalue().encode()


def _decode_npy(data: bytes | str, charset: str) -> Any:
    numpy = _numpy()
    if numpy is None:
        raise UnsupportedMediaType(f"{NPY} needs numpy, which is not installed here")
    raw = data.encode("latin-1") if isinstance(data, str) else data
    try:
        return numpy.load(io.BytesIO(raw), allow_pickle=False)
    except ValueError as exc:
        raise BadRequest(f"the body is not a valid .npy array: {exc}") from None


def _encode_npy(obj: Any) -> bytes:
    numpy = _numpy()
    if numpy is None:
        raise NotAcceptable(f"{NPY} needs numpy, which is not installed here")
    buffer = io.BytesIO()
    numpy.save(buffer, numpy.asarray(obj), allow_pickle=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class Codec:
    """How one media type is decoded into Python values and encoded back."""

    media_type: str
    decode: Callable[[bytes | str, str], Any]
    encode: Callable[[Any], bytes]
    text: bool = True
    available: Callable[[], bool] = lambda: True


CODECS: dict[str, Codec] = {
    codec.media_type: codec
    for codec in (
        Codec(JSON, _decode_json, _encode_json),
        Codec(CSV, _decode_csv, _encode_csv),
        Codec(JSONLINES, _decode_jsonlines, _encode_jsonlines),
        Codec(NPY, _decode_npy, _encode_npy, text=False, available=lambda: _numpy() is not None),
    )
}


def is_text(content_type: str | None) -> bool:
    """Whether a request body of this type reaches handlers as ``str`` rather than ``bytes``."""
    mime, _ = parse_media_type(content_type)
    codec = CODECS.get(mime)
    return codec.text if codec else mime.startswith("text/")


def body_for_handler(body: bytes, content_type: str | None) -> bytes | str:
    """Text types decoded with their charset (UTF-8 by default), everything else left as bytes."""
    mime, params = parse_media_type(content_type)
    if not is_text(mime):
        return body
    return _text(body, params.get("charset", "utf-8"))


def decode(data: bytes | str, content_type: str | None) -> Any:
    """Decode a request body with the codec for its content type, or raise UnsupportedMediaType."""
    mime, params = parse_media_type(content_type)
    codec = CODECS.get(mime)
    if codec is None:
        supported = ", ".join(CODECS)
        raise UnsupportedMediaType(
            f"content type {mime or '(none)'!r} is not supported; send one of {supported}"
        )
    return codec.decode(data, params.get("charset", "utf-8"))


def choose(accept: str | None, default: str) -> str | None:
    """The first media type in Accept that a codec can produce, or None."""
    for mime in parse_accept(accept, default):
        if mime.endswith("/*"):
            prefix = mime[:-1]
            candidates = [default, *CODECS] if default.startswith(prefix) else list(CODECS)
            for candidate in candidates:
                codec = CODECS.get(candidate)
                if candidate.startswith(prefix) and codec and codec.available():
                    return candidate
        elif mime in CODECS and CODECS[mime].available():
            return mime
    return None


def encode(obj: Any, accept: str | None, default: str = JSON) -> tuple[bytes, str]:
    """Encode a prediction as the best type the Accept list allows: ``(body, content_type)``."""
    mime = choose(accept, default)
    if mime is None:
        wanted = ", ".join(parse_accept(accept, default)) or "(nothing)"
        hint = f"; {NPY} needs numpy, which is not installed" if NPY in wanted else ""
        raise NotAcceptable(
            f"cannot produce any of {wanted}; accept one of {', '.join(CODECS)}{hint}"
        )
    return CODECS[mime].encode(obj), mime
