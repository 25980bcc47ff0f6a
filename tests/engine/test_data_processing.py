"""DataProcessing: the JSONPath subset, input filters, joins and output filters on CSV and JSON."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from dockyard.contract.errors import ValidationError
from dockyard.contract.transform_jobs import CreateTransformJobRequest
from dockyard.engine.data_processing import (
    DataProcessor,
    Indexes,
    Names,
    Slice,
    Wildcard,
    check_data_processing,
    parse_jsonpath,
)
from dockyard.engine.transform_records import RecordError, batches, split_records

ROW = ["c0", "c1", "c2", "c3", "c4", "c5", "c6"]
DOC = {"id": 7, "features": [1, 2, 3], "meta": {"a": 1, "b": 2}}


def select(path: str, value: Any) -> Any:
    return parse_jsonpath(path).select(value)


# -- the JSONPath subset -----------------------------------------------------------------------


def test_each_supported_form_parses_to_its_steps() -> None:
    assert parse_jsonpath("$").steps == ()
    assert parse_jsonpath("").text == "$"  # the API allows an empty filter: it is the default
    assert parse_jsonpath("$.features").steps == (Names(("features",)),)
    assert parse_jsonpath("$.meta.*").steps == (Names(("meta",)), Wildcard())
    assert parse_jsonpath("$[*]").steps == (Wildcard(),)
    assert parse_jsonpath("$['id', 'SageMakerOutput']").steps == (Names(("id", "SageMakerOutput")),)
    assert parse_jsonpath("$.meta.['a','b']").steps == (Names(("meta",)), Names(("a", "b")))
    assert parse_jsonpath("$[1]").steps == (Indexes((1,)),)
    assert parse_jsonpath("$[1, 3,-1]").steps == (Indexes((1, 3, -1)),)
    assert parse_jsonpath("$[2:5]").steps == (Slice(2, 5),)
    assert parse_jsonpath("$[:5]").steps == (Slice(None, 5),)
    assert parse_jsonpath("$[-2:]").steps == (Slice(-2, None),)


def test_names_and_wildcards_select_from_objects() -> None:
    assert select("$", DOC) is DOC
    assert select("$.features", DOC) == [1, 2, 3]
    assert select("$.meta.*", DOC) == [1, 2]
    assert select("$.features[*]", DOC) == [1, 2, 3]
    # Several names as the last step keep their keys, as $['id','SageMakerOutput'] needs.
    assert select("$['id','features']", DOC) == {"id": 7, "features": [1, 2, 3]}
    assert select("$.meta['b']", DOC) == 2


def test_indexes_count_from_either_end() -> None:
    assert select("$[0]", ROW) == "c0"
    assert select("$[-1]", ROW) == "c6"
    assert select("$[1,3,5]", ROW) == ["c1", "c3", "c5"]
    assert select("$[0,-1]", ROW) == ["c0", "c6"]
    assert select("$.features[-2]", DOC) == 2


def test_slices_include_their_end_as_sagemaker_documents() -> None:
    assert select("$[1:4]", ROW) == ["c1", "c2", "c3", "c4"]  # 2nd to 5th column
    assert select("$[:5]", ROW) == ROW[:6]  # the first through the sixth column
    assert select("$[5:]", ROW) == ["c5", "c6"]
    assert select("$[1:]", ROW) == ROW[1:]
    assert select("$[-3:-2]", ROW) == ["c4", "c5"]
    assert select("$[3:99]", ROW) == ROW[3:]
    assert select("$[4:2]", ROW) == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$..id", "recursive descent '..'"),
        ("$[?(@.id > 1)]", "filter expressions"),
        ('$["id"]', "double-quoted names"),
        ("id", "it must start with $"),
        ("$[1:5:2]", "slices with a step"),
        ("$.meta.['a','b.c']", "paths inside brackets"),
        ("$.", "a name must follow '.'"),
        ("$[id]", "none of the supported forms"),
        ("$.a b", "unexpected ' '"),
        ("$[1", "none of the supported forms"),
    ],
)
def test_anything_else_is_refused_with_the_reason(path: str, expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_jsonpath(path, "DataProcessing.InputFilter")
    message = str(caught.value)
    assert message.startswith(f"DataProcessing.InputFilter {path!r} is not supported")
    assert expected in message
    assert "['a','b'], [n], [n,m]" in message


def test_missing_parts_fail_on_definite_paths_and_are_skipped_after_a_wildcard() -> None:
    with pytest.raises(
        RecordError, match=r"filter \$\.label selects nothing.*no attribute 'label'"
    ):
        select("$.label", DOC)
    with pytest.raises(RecordError, match="index 9 is out of range for 7 elements"):
        select("$[0,9]", ROW)
    with pytest.raises(RecordError, match="does not apply to an object"):
        select("$[1:]", DOC)
    rows = [{"a": 1}, {"b": 2}, {"a": 3}]
    assert select("$[*].a", rows) == [1, 3]


# -- requests ----------------------------------------------------------------------------------


def make(
    content: str | None = "text/csv",
    accept: str | None = "text/csv",
    split: str = "Line",
    assemble: str = "Line",
    **processing: str,
) -> CreateTransformJobRequest:
    body: dict[str, Any] = {
        "TransformJobName": "t",
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in"}},
            "SplitType": split,
        },
        "TransformOutput": {"S3OutputPath": "s3://b/out", "AssembleWith": assemble},
        "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
    }
    if content:
        body["TransformInput"]["ContentType"] = content
    if accept:
        body["TransformOutput"]["Accept"] = accept
    if processing:
        body["DataProcessing"] = processing
    return CreateTransformJobRequest.from_wire(body)


def processor(request: CreateTransformJobRequest) -> DataProcessor:
    made = DataProcessor.from_request(request)
    assert made is not None
    return made


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (make(InputFilter="$..x"), "recursive descent"),
        (make(OutputFilter="$[0:1:1]"), "DataProcessing.OutputFilter '$[0:1:1]'"),
        (make("image/png", JoinSource="Input"), "ContentType is image/png"),
        (make(accept=None, InputFilter="$[1:]"), "TransformOutput.Accept is not set"),
        (make(split="None", InputFilter="$[1:]"), "SplitType Line and"),
        (make(assemble="None", JoinSource="Input"), "AssembleWith Line (they are Line and None)"),
        (make(InputFilter="$.features"), "a CSV row is an array of columns"),
        (make(OutputFilter="$['label']"), "DataProcessing.OutputFilter \"$['label']\" names"),
        (make(accept="application/json", JoinSource="Input"), "use text/csv for both"),
        (
            make("application/jsonlines", "application/jsonlines", "RecordIO", InputFilter="$.a"),
            "SplitType is RecordIO",
        ),
    ],
)
def test_creation_refuses_processing_that_cannot_work(
    request_: CreateTransformJobRequest, expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        check_data_processing(request_)
    assert expected in str(caught.value)


def test_the_documented_defaults_go_with_any_content_type() -> None:
    quiet = make("image/png", None, "None", "None", InputFilter="$", JoinSource="None")
    check_data_processing(quiet)
    assert DataProcessor.from_request(quiet) is None
    assert DataProcessor.from_request(make()) is None


def test_accepted_combinations() -> None:
    # Media type parameters are ignored; JSON and JSON Lines join with each other.
    check_data_processing(
        make(
            "application/json; charset=utf-8",
            "application/jsonlines",
            "None",
            "None",
            JoinSource="Input",
        )
    )
    # CSV in, JSON out, without a join: the OutputFilter reads the JSON answer by name. One
    # name is a definite path (the value); two keep their keys.
    csv_in = processor(make(accept="application/json", OutputFilter="$['label']"))
    assert csv_in.finish(b"1,2\n", b'{"label": 3, "p": 0.1}') == b"3"
    both = processor(make(accept="application/json", OutputFilter="$['label','p']"))
    assert both.finish(b"1,2\n", b'{"label": 3, "p": 0.1, "q": 1}') == b'{"label":3,"p":0.1}'


# -- CSV -----------------------------------------------------------------------------------------


def test_csv_input_filter_keeps_quoted_commas_and_the_line_ending() -> None:
    csv_filter = processor(make(InputFilter="$[1:]"))
    assert csv_filter.filter_input(b'id-1,"a, b",3\r\n') == b'"a, b",3\r\n'
    assert csv_filter.filter_input(b'id-2,"say ""hi""",4') == b'"say ""hi""",4'
    assert csv_filter.filter_input(b"id-3,x\n") == b"x\n"
    assert not csv_filter.per_record_output


def test_csv_join_puts_the_output_columns_after_the_input_columns() -> None:
    joined = processor(make(JoinSource="Input"))
    assert joined.finish(b"1,2,3\n", b"1\n") == b"1,2,3,1"
    assert joined.finish(b'1,"x,y"\r\n', b'0.9,"label, long"') == b'1,"x,y",0.9,"label, long"'


def test_csv_id_column_excluded_from_the_model_and_kept_in_the_output() -> None:
    """The developer guide's example: drop the ID for inference, keep it beside the result."""
    job = processor(make(InputFilter="$[1:]", JoinSource="Input", OutputFilter="$[0,-1]"))
    data = b'id-1,5.1,"3,5"\nid-2,4.9,3.0\nid-3,6.2,2.9'
    sent = list(batches(split_records_of(data), "MultiRecord", 1000, prepare=job.filter_input))
    assert [b.body for b in sent] == [b'5.1,"3,5"\n4.9,3.0\n6.2,2.9']
    outputs = job.outputs(sent[0].records, b"setosa\nsetosa\nvirginica\n", "in.csv")
    assert outputs == [b"id-1,setosa", b"id-2,setosa", b"id-3,virginica"]


def split_records_of(data: bytes) -> list[bytes]:
    return list(split_records(io.BytesIO(data), "Line"))


def test_a_csv_answer_with_two_rows_for_one_record_fails() -> None:
    joined = processor(make(JoinSource="Input"))
    with pytest.raises(RecordError, match="2 CSV rows where one was expected"):
        joined.finish(b"1,2\n", b"a\nb\n")


# -- JSON ----------------------------------------------------------------------------------------


def json_job(**processing: str) -> DataProcessor:
    return processor(make("application/jsonlines", "application/jsonlines", **processing))


def test_json_join_adds_the_output_to_an_input_object() -> None:
    joined = json_job(JoinSource="Input")
    out = joined.finish(b'{"id": 1, "features": [1, 2]}\n', b'{"label": 1}\n')
    assert json.loads(out) == {"id": 1, "features": [1, 2], "SageMakerOutput": {"label": 1}}
    assert not out.endswith(b"\n")  # the runner adds AssembleWith's line ending


def test_json_join_overwrites_an_input_attribute_named_sagemakeroutput() -> None:
    joined = json_job(JoinSource="Input")
    out = joined.finish(b'{"id": 1, "SageMakerOutput": "old"}', b"0.5")
    assert json.loads(out) == {"id": 1, "SageMakerOutput": 0.5}


@pytest.mark.parametrize("record", [b"[1, 2, 3]", b"42", b'"text"', b"null"])
def test_json_join_wraps_an_input_that_is_not_an_object(record: bytes) -> None:
    joined = json_job(JoinSource="Input")
    out = joined.finish(record + b"\n", b"[0.7]")
    assert json.loads(out) == {"SageMakerInput": json.loads(record), "SageMakerOutput": [0.7]}


def test_json_id_attribute_excluded_from_the_model_and_kept_in_the_output() -> None:
    job = json_job(
        InputFilter="$.features", JoinSource="Input", OutputFilter="$['id','SageMakerOutput']"
    )
    records = [b'{"id": "a", "features": [1, 2]}\n', b'{"id": "b", "features": [3, 4]}\n']
    assert [job.filter_input(r) for r in records] == [b"[1,2]\n", b"[3,4]\n"]
    outputs = job.outputs(records, b'{"label": 0}\n{"label": 1}\n', "in.jsonl")
    assert [json.loads(o) for o in outputs] == [
        {"id": "a", "SageMakerOutput": {"label": 0}},
        {"id": "b", "SageMakerOutput": {"label": 1}},
    ]


def test_output_filter_without_a_join_reads_the_model_output() -> None:
    job = json_job(OutputFilter="$.scores[0]")
    assert job.per_record_output and not job.filters_input
    assert job.finish(b'{"x": 1}', b'{"scores": [0.25, 0.75]}') == b"0.25"


def test_unreadable_records_and_answers_fail_with_what_they_are() -> None:
    job = json_job(JoinSource="Input")
    with pytest.raises(RecordError, match="the model's answer to a record is not JSON"):
        job.finish(b'{"x": 1}', b"not json")
    with pytest.raises(RecordError, match="an input record is not UTF-8 text"):
        json_job(InputFilter="$.x").filter_input(b"\xff\xfe{}")
    with pytest.raises(RecordError, match=r"answered the 2 records of in\.jsonl with 1 lines"):
        job.outputs([b"{}", b"{}"], b"[1]\n", "in.jsonl")
