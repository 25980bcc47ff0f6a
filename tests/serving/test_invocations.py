"""The pure serving path: handler resolution and ``invoke`` without sockets."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pytest

from dockyard.serving import (
    Context,
    HandlerLoadError,
    Handlers,
    ServingSettings,
    UnsupportedMediaType,
    execution_parameters,
    invoke,
    load_handlers,
    resolve,
)


def module(**functions: Any) -> types.ModuleType:
    mod = types.ModuleType("inference")
    mod.__file__ = "/opt/ml/model/code/inference.py"
    for name, fn in functions.items():
        setattr(mod, name, fn)
    return mod


class Doubler:
    def predict(self, rows: list[list[float]]) -> list[float]:
        return [2 * sum(row) for row in rows]


def handlers(**functions: Any) -> Handlers:
    functions.setdefault("model_fn", lambda model_dir: Doubler())
    return resolve(module(**functions), Path("/opt/ml/model"))


def test_defaults_decode_csv_predict_and_encode_json() -> None:
    result = invoke(b"1,2\n3,4\n", "text/csv", "application/json", handlers())
    assert (result.status, result.content_type) == (200, "application/json")
    assert json.loads(result.body) == [6.0, 14.0]


def test_charset_parameter_is_accepted() -> None:
    result = invoke(b"[[1, 2]]", "application/json; charset=utf-8", "text/csv", handlers())
    assert (result.status, result.body, result.content_type) == (200, b"6\n", "text/csv")


def test_missing_or_star_accept_uses_the_default_accept() -> None:
    for accept in (None, "*/*"):
        assert invoke(b"1,2", "text/csv", accept, handlers()).content_type == "application/json"


def test_unproducible_accept_is_406_and_unknown_content_type_415() -> None:
    assert invoke(b"1,2", "text/csv", "image/png", handlers()).status == 406
    result = invoke(b"\x00", "application/octet-stream", None, handlers())
    assert result.status == 415
    assert b"not supported" in result.body


def test_handler_error_is_500_with_a_short_message_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def predict_fn(data: Any, model: Any) -> Any:
        raise ValueError("bad input")

    result = invoke(b"1", "text/csv", None, handlers(predict_fn=predict_fn))
    assert result.status == 500
    assert result.body == b"the inference handler failed: ValueError: bad input\n"
    assert "Traceback" in caplog.text


def test_an_exception_with_a_status_code_sets_the_status() -> None:
    class Rejected(Exception):
        status_code = 422

    def input_fn(data: Any, content_type: str) -> Any:
        raise Rejected("no negative numbers")

    result = invoke(b"-1", "text/csv", None, handlers(input_fn=input_fn))
    assert (result.status, result.body) == (422, b"no negative numbers\n")


def test_user_functions_get_str_for_text_types_and_bytes_otherwise() -> None:
    seen: list[tuple[Any, str]] = []

    def input_fn(data: Any, content_type: str) -> Any:
        seen.append((data, content_type))
        return [[1.0]]

    h = handlers(input_fn=input_fn)
    invoke("é".encode(), "TEXT/CSV; charset=utf-8", None, h)
    invoke(b"\x00\x01", "application/octet-stream", None, h)
    assert seen == [("é", "text/csv"), (b"\x00\x01", "application/octet-stream")]


def test_output_fn_may_return_body_and_content_type() -> None:
    def output_fn(prediction: Any, accept: str) -> tuple[str, str]:
        return f"total={sum(prediction)}", "text/plain"

    result = invoke(b"1,2", "text/csv", "application/json", handlers(output_fn=output_fn))
    assert (result.body, result.content_type) == (b"total=6.0", "text/plain")


def test_output_fn_returning_only_a_body_gets_the_accepted_type() -> None:
    h = handlers(output_fn=lambda prediction, accept: b"x")
    assert invoke(b"1", "text/csv", "text/csv;q=0.5, application/jsonlines", h).content_type == (
        "application/jsonlines"
    )


def test_transform_fn_replaces_the_chain() -> None:
    def transform_fn(model: Any, data: Any, content_type: str, accept: str) -> Any:
        return f"{content_type}|{accept}|{data}", "text/plain"

    result = invoke(b"abc", "text/csv", "text/csv", handlers(transform_fn=transform_fn))
    assert result.body == b"text/csv|text/csv|abc"


def test_transform_fn_with_input_fn_is_refused_at_start() -> None:
    with pytest.raises(HandlerLoadError, match="either transform_fn"):
        handlers(transform_fn=lambda m, d, c, a: d, input_fn=lambda d, c: d)


def test_context_carries_custom_attributes_both_ways() -> None:
    def predict_fn(data: Any, model: Any, context: Context) -> Any:
        context.response_custom_attributes = f"got={context.custom_attributes}"
        return context.request_headers["x-trace"]

    result = invoke(
        b"1",
        "text/csv",
        None,
        handlers(predict_fn=predict_fn),
        request_headers={"x-amzn-sagemaker-custom-attributes": "a=1", "x-trace": "t1"},
    )
    assert result.body == b'"t1"'
    assert result.headers == (("X-Amzn-SageMaker-Custom-Attributes", "got=a=1"),)


def test_wrong_argument_count_is_refused_at_start() -> None:
    with pytest.raises(HandlerLoadError, match=r"predict_fn .* must take 2"):
        handlers(predict_fn=lambda data: data)


def test_model_lifecycle_hooks_run_in_order() -> None:
    calls: list[str] = []

    def model_fn(model_dir: str) -> str:
        calls.append("model")
        return "M"

    h = handlers(
        pre_model_fn=lambda model_dir: calls.append(f"pre {model_dir}"),
        model_fn=model_fn,
        model_warmup_fn=lambda model_dir, model: calls.append(f"warm {model}"),
    )
    assert calls == ["pre /opt/ml/model", "model", "warm M"]
    assert h.model == "M"


def test_a_callable_model_without_predict_is_called() -> None:
    h = handlers(model_fn=lambda model_dir: lambda rows: len(rows))
    assert invoke(b"1\n2\n3", "text/csv", None, h).body == b"3"


def test_input_fn_may_raise_unsupported_media_type() -> None:
    def input_fn(data: Any, content_type: str) -> Any:
        raise UnsupportedMediaType("send text/csv")

    assert invoke(b"{}", "application/json", None, handlers(input_fn=input_fn)).status == 415


def test_execution_parameters_default_and_user_defined() -> None:
    result = execution_parameters(handlers(), workers=3, max_payload_mb=6)
    assert json.loads(result.body) == {
        "MaxConcurrentTransforms": 3,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }
    custom = handlers(execution_parameters_fn=lambda: {"BatchStrategy": "SINGLE_RECORD"})
    assert json.loads(execution_parameters(custom, 3, 6).body) == {"BatchStrategy": "SINGLE_RECORD"}


def write_program(tmp_path: Path, source: str, name: str = "inference.py") -> ServingSettings:
    code = tmp_path / "model" / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / name).write_text(source)
    env = {"SAGEMAKER_BASE_DIR": str(tmp_path), "SAGEMAKER_PROGRAM": name}
    return ServingSettings.from_environ(env)


def test_load_handlers_imports_the_program_from_model_code(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "factor.txt").write_text("3")
    settings = write_program(
        tmp_path,
        "import os\n"
        "def model_fn(model_dir):\n"
        "    return float(open(os.path.join(model_dir, 'factor.txt')).read())\n"
        "def predict_fn(data, model):\n"
        "    return [v * model for row in data for v in row]\n",
        name="serve_me.py",
    )
    assert settings.program == "serve_me"
    h = load_handlers(settings)
    assert invoke(b"1,2", "text/csv", "text/csv", h).body == b"3.0\n6.0\n"


def test_load_handlers_names_the_missing_file(tmp_path: Path) -> None:
    settings = ServingSettings.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})
    with pytest.raises(HandlerLoadError, match=str(tmp_path / "model" / "code" / "inference.py")):
        load_handlers(settings)


def test_load_handlers_without_model_fn_says_so(tmp_path: Path) -> None:
    settings = write_program(tmp_path, "def predict_fn(data, model):\n    return data\n")
    with pytest.raises(HandlerLoadError, match="defines no model_fn"):
        load_handlers(settings)


def test_a_failing_model_fn_is_a_start_up_error(tmp_path: Path) -> None:
    settings = write_program(
        tmp_path, "def model_fn(model_dir):\n    raise OSError('no weights')\n"
    )
    with pytest.raises(HandlerLoadError, match=r"model_fn in .* failed: OSError: no weights"):
        load_handlers(settings)


def test_payload_limit_zero_means_the_batch_maximum() -> None:
    # Batch transform's MaxPayloadInMB=0 is "unlimited"; a 0-byte limit would refuse everything.
    assert ServingSettings.from_environ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "0"}).max_payload_bytes == (
        100 * 1024 * 1024
    )
    assert ServingSettings.from_environ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "2"}).max_payload_bytes == (
        2 * 1024 * 1024
    )
