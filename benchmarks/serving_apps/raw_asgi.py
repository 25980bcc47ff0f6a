"""The floor: a bare ASGI callable (no framework) that runs the model's handler functions."""

# uvicorn imports this module once in each worker: the model loads then. BENCH_MODEL_DIR is a
# SageMaker model folder whose code/inference.py holds the same handlers the toolkits run.

import importlib.util
import os

_MODEL_DIR = os.environ["BENCH_MODEL_DIR"]
_spec = importlib.util.spec_from_file_location(
    "inference", os.path.join(_MODEL_DIR, "code", "inference.py")
)
inference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inference)
MODEL = inference.model_fn(_MODEL_DIR)


async def app(scope, receive, send):
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/invocations":
        # Text bodies reach the handlers as str, as in both SageMaker toolkits.
        data = inference.input_fn(body.decode(), "text/csv")
        out, content_type = inference.output_fn(inference.predict_fn(data, MODEL), "text/csv")
        status, body = 200, out.encode() if isinstance(out, str) else out
    else:  # /ping
        status, body, content_type = 200, b"", "text/plain"
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
