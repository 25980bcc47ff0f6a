"""The user's inference module (model_fn, input_fn, ...) resolved once at start: ``Handlers``."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from . import codecs
from .errors import HandlerLoadError
from .settings import ServingSettings

log = logging.getLogger(__name__)


@dataclass
class Context:
    """Per-request facts passed as the optional trailing ``context`` argument of a handler."""

    request_headers: Mapping[str, str] = field(default_factory=dict)
    custom_attributes: str | None = None
    response_custom_attributes: str | None = None


# Normalised signatures: every resolved function takes ``context`` last (it may be None).
InputFn = Callable[[Any, str, Context | None], Any]
PredictFn = Callable[[Any, Any, Context | None], Any]
OutputFn = Callable[[Any, str, Context | None], Any]
TransformFn = Callable[[Any, Any, str, str, Context | None], Any]


@dataclass(frozen=True)
class Handlers:
    """The loaded model and the four request functions, each taking a trailing context."""

    model: Any
    input_fn: InputFn
    predict_fn: PredictFn
    output_fn: OutputFn
    transform_fn: TransformFn
    default_accept: str = codecs.JSON
    execution_parameters_fn: Callable[[], Mapping[str, Any]] | None = None


def with_context(fn: Callable[..., Any], arity: int, name: str) -> Callable[..., Any]:
    """Adapt ``fn`` taking ``arity`` arguments, or ``arity + 1`` with context, to always take it."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: assume no context
        return lambda *args: fn(*args[:arity])
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return fn
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(positional) >= arity + 1 and len(required) <= arity + 1:
        return fn
    if len(required) <= arity <= len(positional):
        return lambda *args: fn(*args[:arity])
    raise HandlerLoadError(
        f"{name} takes {len(positional)} arguments; it must take {arity}, "
        f"or {arity + 1} with a trailing context"
    )


def default_input_fn(input_data: Any, content_type: str, context: Context | None) -> Any:
    return codecs.decode(input_data, content_type)


def default_predict_fn(data: Any, model: Any, context: Context | None) -> Any:
    predict = getattr(model, "predict", None)
    if callable(predict):
        return predict(data)
    if callable(model):
        return model(data)
    raise TypeError(f"the model ({type(model).__name__}) has no predict method and is not callable")


def default_output_fn(default_accept: str) -> OutputFn:
    def output_fn(prediction: Any, accept: str, context: Context | None) -> tuple[bytes, str]:
        return codecs.encode(prediction, accept, default_accept)

    return output_fn


def compose(input_fn: InputFn, predict_fn: PredictFn, output_fn: OutputFn) -> TransformFn:
    """The default transform_fn: ``output_fn(predict_fn(input_fn(data)))``."""

    def transform_fn(
        model: Any, input_data: Any, content_type: str, accept: str, context: Context | None
    ) -> Any:
        data = input_fn(input_data, content_type, context)
        prediction = predict_fn(data, model, context)
        return output_fn(prediction, accept, context)

    return transform_fn


def import_program(code_dir: Path, program: str) -> ModuleType:
    """Import ``<code_dir>/<program>.py`` (or a package), with ``code_dir`` first on sys.path."""
    candidates = [code_dir / f"{program}.py", code_dir / program / "__init__.py"]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise HandlerLoadError(
            f"no inference code: {candidates[0]} does not exist (set SAGEMAKER_PROGRAM to the file "
            "under model/code that defines model_fn)"
        )
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location(program, path)
    if spec is None or spec.loader is None:
        raise HandlerLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[program] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(program, None)
        raise HandlerLoadError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def resolve(module: ModuleType, model_dir: Path, default_accept: str = codecs.JSON) -> Handlers:
    """Check the module's functions, run pre_model_fn, model_fn, model_warmup_fn: Handlers."""
    where = getattr(module, "__file__", module.__name__)

    def user(name: str, arity: int) -> Callable[..., Any] | None:
        fn = getattr(module, name, None)
        if fn is None:
            return None
        if not callable(fn):
            raise HandlerLoadError(f"{name} in {where} is not a function")
        return with_context(fn, arity, f"{name} in {where}")

    model_fn = user("model_fn", 1)
    if model_fn is None:
        raise HandlerLoadError(
            f"{where} defines no model_fn(model_dir); add one that loads the model"
        )
    user_input, user_predict, user_output = (
        user("input_fn", 2),
        user("predict_fn", 2),
        user("output_fn", 2),
    )
    user_transform = user("transform_fn", 4)
    if user_transform and (user_input or user_predict or user_output):
        raise HandlerLoadError(
            f"{where} defines transform_fn together with input_fn/predict_fn/output_fn; "
            "define either transform_fn or the other three"
        )
    input_fn: InputFn = user_input or default_input_fn
    predict_fn: PredictFn = user_predict or default_predict_fn
    output_fn: OutputFn = user_output or default_output_fn(default_accept)
    transform_fn: TransformFn = user_transform or compose(input_fn, predict_fn, output_fn)
    exec_params = getattr(module, "execution_parameters_fn", None)

    def run(name: str, fn: Callable[..., Any] | None, *args: Any) -> Any:
        if fn is None:
            return None
        try:
            return fn(*args, None)
        except Exception as exc:
            raise HandlerLoadError(
                f"{name} in {where} failed: {type(exc).__name__}: {exc}"
            ) from exc

    run("pre_model_fn", user("pre_model_fn", 1), str(model_dir))
    model = run("model_fn", model_fn, str(model_dir))
    run("model_warmup_fn", user("model_warmup_fn", 2), str(model_dir), model)
    log.info("model loaded from %s by %s", model_dir, where)
    return Handlers(
        model=model,
        input_fn=input_fn,
        predict_fn=predict_fn,
        output_fn=output_fn,
        transform_fn=transform_fn,
        default_accept=default_accept,
        execution_parameters_fn=exec_params if callable(exec_params) else None,
    )


def load_handlers(settings: ServingSettings) -> Handlers:
    """Import the user's module from ``<model_dir>/code`` and load the model (once per process)."""
    module = import_program(settings.code_dir, settings.program)
    return resolve(module, settings.model_dir, settings.default_accept)
