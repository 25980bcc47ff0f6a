"""Batch transform's DataProcessing: the JSONPath subset, input filter, join and output filter."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.contract.errors import ValidationError
from dockyard.contract.transform_jobs import CreateTransformJobRequest
from dockyard.engine.transform_records import RecordError, split_response

CSV = "text/csv"
JSON = "application/json"
JSON_LINES = "application/jsonlines"
PROCESSABLE = (CSV, JSON, JSON_LINES)
SUPPORTED_FORMS = "$, .name, .*, [*], ['a','b'], [n], [n,m] (negative too), [start:end]"


def media_type(value: str | None) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`."""
    return (value or "").split(";", 1)[0].strip().lower()


# ---------------------------------------------------------------------------------------------
# The JSONPath subset (developer guide, "Supported JSONPath Operators")


@dataclass(frozen=True)
class Names:
    names: tuple[str, ...]


@dataclass(frozen=True)
class Indexes:
    indexes: tuple[int, ...]


@dataclass(frozen=True)
class Slice:
    """Inclusive of `end`, as SageMaker documents: `$[1:4]` is the 2nd to the 5th column."""

    start: int | None
    end: int | None


@dataclass(frozen=True)
class Wildcard:
    pass


Step = Names | Indexes | Slice | Wildcard

_DOT_NAME = re.compile(r"[\w\-]+")
_STAR = re.compile(r"\[\s*\*\s*\]")
_SLICE = re.compile(r"\[\s*(-?\d+)?\s*:\s*(-?\d+)?\s*\]")
_INDEXES = re.compile(r"\[\s*-?\d+(?:\s*,\s*-?\d+)*\s*\]")
_NAMES = re.compile(r"\[\s*'[^'.]+'(?:\s*,\s*'[^'.]+')*\s*\]")
_QUOTED = re.compile(r"'([^']+)'")


def _bracket(source: str, pos: int) -> tuple[Step, int] | None:
    """The bracket step at `pos` and where it ends, or None if it is no supported form."""
    if found := _STAR.match(source, pos):
        return Wildcard(), found.end()
    if found := _SLICE.match(source, pos):
        start, end = (None if g is None else int(g) for g in found.groups())
        return Slice(start, end), found.end()
    if found := _INDEXES.match(source, pos):
        return Indexes(tuple(int(i) for i in found.group()[1:-1].split(","))), found.end()
    if found := _NAMES.match(source, pos):
        return Names(tuple(_QUOTED.findall(found.group()))), found.end()
    return None


def _bracket_problem(segment: str) -> str:
    if segment.count(":") > 1:
        return "slices with a step [start:end:step] are not in the subset"
    if "'" in segment and "." in segment:
        return "paths inside brackets (['a.b']) are not in the subset; use ['a'].b"
    return "they hold none of the supported forms"


# Common JSONPath that SageMaker does not take, named so the message can say what it is.
_UNSUPPORTED = (
    ("..", "recursive descent '..'"),
    ("[?", "filter expressions [?(...)]"),
    ("@", "'@'"),
    ('"', "double-quoted names (quote names with ' as in ['name'])"),
)


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    @property
    def is_root(self) -> bool:
        """`$`: the whole record, nothing to do."""
        return not self.steps

    @property
    def index_only(self) -> bool:
        """Only forms that apply to a CSV row (a JSON array of its columns)."""
        return all(not isinstance(step, Names) for step in self.steps)

    def select(self, value: Any) -> Any:
        """What the path picks from `value`. A definite path (only names and single indexes)
        gives one value; otherwise a list. `['a','b']` on an object as the last step gives an
        object with those keys (how `$['id','SageMakerOutput']` keeps both). Inside a definite
        path a missing name or index is an error; after a wildcard, slice or list it is skipped."""
        nodes = [value]
        definite = True
        for number, step in enumerate(self.steps, start=1):
            last = number == len(self.steps)
            if definite and last and isinstance(step, Names) and len(step.names) > 1:
                node = nodes[0]
                found = self._children(step, node, strict=True)
                return dict(zip(step.names, found, strict=True))
            nodes = [child for node in nodes for child in self._children(step, node, definite)]
            definite = definite and (
                (isinstance(step, Names) and len(step.names) == 1)
                or (isinstance(step, Indexes) and len(step.indexes) == 1)
            )
        return nodes[0] if definite else nodes

    def _children(self, step: Step, node: Any, strict: bool) -> list[Any]:
        if isinstance(step, Wildcard):
            if isinstance(node, dict):
                return list(node.values())
            if isinstance(node, list):
                return list(node)
        elif isinstance(step, Names):
            if isinstance(node, dict):
                missing = [name for name in step.names if name not in node]
                if missing and strict:
                    raise self._miss(f"the record has no attribute {missing[0]!r}")
                return [node[name] for name in step.names if name in node]
        elif isinstance(node, list) and isinstance(step, Indexes):
            size = len(node)
            wrong = [i for i in step.indexes if not -size <= i < size]
            if wrong and strict:
                raise self._miss(f"index {wrong[0]} is out of range for {size} elements")
            return [node[i] for i in step.indexes if -size <= i < size]
        elif isinstance(node, list) and isinstance(step, Slice):
            size = len(node)
            start = 0 if step.start is None else step.start + (size if step.start < 0 else 0)
            end = size - 1 if step.end is None else step.end + (size if step.end < 0 else 0)
            return node[max(start, 0) : max(end + 1, 0)]
        if strict:
            raise self._miss(f"it does not apply to {_kind(node)}")
        return []

    def _miss(self, why: str) -> RecordError:
        return RecordError(f"filter {self.text} selects nothing from a record: {why}")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"the value {json.dumps(value)[:40]}"


def parse_jsonpath(text: str, what: str = "JSONPath") -> JsonPath:
    """Parse the subset SageMaker supports, or raise ValidationError saying what is wrong.
    An empty filter is `$` (the API allows length 0; `$` is the documented default)."""
    source = text.strip() or "$"

    def refuse(why: str) -> ValidationError:
        return ValidationError(
            f"{what} {text!r} is not supported: {why}. dockyard takes SageMaker's JSONPath "
            f"subset: {SUPPORTED_FORMS}"
        )

    for token, name in _UNSUPPORTED:
        if token in source:
            raise refuse(f"{name} is not in the subset")
    if not source.startswith("$"):
        raise refuse("it must start with $")
    steps: list[Step] = []
    pos = 1
    while pos < len(source):
        if source[pos] == ".":
            pos += 1
            if source.startswith("*", pos):
                steps.append(Wildcard())
                pos += 1
                continue
            if source.startswith("[", pos):  # `$.a.['b','c']` is in SageMaker's examples
                continue
            dotted = _DOT_NAME.match(source, pos)
            if dotted is None:
                raise refuse(f"a name must follow '.' at position {pos}")
            steps.append(Names((dotted.group(),)))
            pos = dotted.end()
        elif source[pos] == "[":
            parsed = _bracket(source, pos)
            if parsed is None:
                segment = source[pos : source.find("]", pos) + 1 or len(source)]
                raise refuse(f"at position {pos}, {segment}: {_bracket_problem(segment)}")
            steps.append(parsed[0])
            pos = parsed[1]
        else:
            raise refuse(f"unexpected {source[pos]!r} at position {pos}")
    return JsonPath(source, tuple(steps))


# ---------------------------------------------------------------------------------------------
# Checks at creation


def check_data_processing(request: CreateTransformJobRequest) -> None:
    """The rules of the developer guide, checked when the job is created: filters parse, they
    are used only on CSV and JSON (both ContentType and Accept), CSV is split and assembled by
    Line, CSV filters use index forms only."""
    dp = request.data_processing
    if dp is None:
        return
    input_filter = parse_jsonpath(dp.input_filter, "DataProcessing.InputFilter")
    output_filter = parse_jsonpath(dp.output_filter, "DataProcessing.OutputFilter")
    join = dp.join_source == "Input"
    if input_filter.is_root and output_filter.is_root and not join:
        return  # the documented defaults: nothing to process, any content type goes
    content = media_type(request.transform_input.content_type)
    accept = media_type(request.transform_output.accept)
    for member, value in (
        ("TransformInput.ContentType", content),
        ("TransformOutput.Accept", accept),
    ):
        if value not in PROCESSABLE:
            raise ValidationError(
                f"DataProcessing (filters and JoinSource) works on {', '.join(PROCESSABLE)} only; "
                f"{member} is {value or 'not set'}: set it to one of them, or drop DataProcessing"
            )
    split = request.transform_input.split_type
    assemble = request.transform_output.assemble_with
    if CSV in (content, accept) and (split != "Line" or assemble != "Line"):
        raise ValidationError(
            "DataProcessing on text/csv needs TransformInput.SplitType Line and "
            f"TransformOutput.AssembleWith Line (they are {split} and {assemble})"
        )
    if split not in ("None", "Line"):
        raise ValidationError(
            f"DataProcessing works on CSV and JSON records split by Line (or whole objects); "
            f"SplitType is {split}"
        )
    if join and (content == CSV) != (accept == CSV):
        # The joined record has to be one format: CSV columns, or a JSON object.
        raise ValidationError(
            f"JoinSource Input joins records of one format, but ContentType is {content} and "
            f"Accept is {accept}: use text/csv for both, or JSON (Lines) for both"
        )
    if content == CSV and not input_filter.index_only:
        raise _csv_names("InputFilter", input_filter)
    # The OutputFilter reads the model's output, or the join, which is then of the same format.
    if accept == CSV and not output_filter.index_only:
        raise _csv_names("OutputFilter", output_filter)


def _csv_names(member: str, path: JsonPath) -> ValidationError:
    return ValidationError(
        f"DataProcessing.{member} {path.text!r} names attributes, but a CSV row is an array of "
        "columns: use index forms such as $[0], $[1:], $[0,-1]"
    )


# ---------------------------------------------------------------------------------------------
# Records


def _ending(record: bytes) -> tuple[bytes, bytes]:
    if record.endswith(b"\r\n"):
        return record[:-2], b"\r\n"
    if record.endswith(b"\n"):
        return record[:-1], b"\n"
    return record, b""


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8-sig")  # a BOM on the first line is not part of the data
    except UnicodeDecodeError as exc:
        raise RecordError(f"{what} is not UTF-8 text ({exc})") from None


def _load(data: bytes, media: str, what: str) -> Any:
    text = _text(data, what)
    if media == CSV:
        try:
            rows = list(csv.reader(io.StringIO(text), strict=True))
        except csv.Error as exc:
            raise RecordError(f"{what} is not a CSV row ({exc})") from None
        if len(rows) > 1:
            raise RecordError(f"{what} has {len(rows)} CSV rows where one was expected")
        return rows[0] if rows else []
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RecordError(f"{what} is not JSON ({exc})") from None


def _dump(value: Any, media: str) -> bytes:
    if media == CSV:
        if isinstance(value, dict):
            raise RecordError("a CSV row can't hold a JSON object; filter CSV with index forms")
        row = value if isinstance(value, list) else [value]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(row)
        return out.getvalue()[:-1].encode()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def join_json(record: Any, output: Any) -> Any:
    """The prediction under "SageMakerOutput" of the input object (replacing an attribute of
    that name), or both under new keys when the input is not an object."""
    if isinstance(record, dict):
        return {**record, "SageMakerOutput": output}
    return {"SageMakerInput": record, "SageMakerOutput": output}


@dataclass(frozen=True)
class DataProcessor:
    """A job's DataProcessing, resolved once; the runner calls it for every record."""

    content_type: str
    accept: str
    input_filter: JsonPath
    output_filter: JsonPath
    join_input: bool

    @classmethod
    def from_request(cls, request: CreateTransformJobRequest) -> DataProcessor | None:
        """None when there is nothing to do (no DataProcessing, or only its defaults)."""
        check_data_processing(request)
        dp = request.data_processing
        if dp is None:
            return None
        made = cls(
            content_type=media_type(request.transform_input.content_type),
            accept=media_type(request.transform_output.accept),
            input_filter=parse_jsonpath(dp.input_filter),
            output_filter=parse_jsonpath(dp.output_filter),
            join_input=dp.join_source == "Input",
        )
        return made if made.filters_input or made.per_record_output else None

    @property
    def filters_input(self) -> bool:
        return not self.input_filter.is_root

    @property
    def per_record_output(self) -> bool:
        """True when each record's answer must be joined or filtered (see `outputs`)."""
        return self.join_input or not self.output_filter.is_root

    def filter_input(self, record: bytes) -> bytes:
        """What is sent for `record`: the InputFilter's pick, keeping the record's line ending
        so records still concatenate into a MultiRecord body."""
        if not self.filters_input:
            return record
        body, ending = _ending(record)
        value = _load(body, self.content_type, "an input record")
        return _dump(self.input_filter.select(value), self.content_type) + ending

    def finish(self, record: bytes, output: bytes) -> bytes:
        """One record's output: joined with the original `record` (JoinSource=Input), then
        the OutputFilter's pick. Without a line ending: the runner adds AssembleWith's."""
        body, _ = _ending(output)
        value = _load(body, self.accept, "the model's answer to a record")
        if self.join_input:
            original = _load(_ending(record)[0], self.content_type, "an input record")
            if self.content_type == CSV:
                value = original + (value if isinstance(value, list) else [value])
            else:
                value = join_json(original, value)
        return _dump(self.output_filter.select(value), self.accept)

    def outputs(self, records: Sequence[bytes], response: bytes, source: str) -> list[bytes]:
        """Each record's finished output, from the model's answer to their batch."""
        pieces = split_response(response, len(records), source=source)
        return [self.finish(record, piece) for record, piece in zip(records, pieces, strict=True)]
