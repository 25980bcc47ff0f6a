"""dockyard's inference toolkit for serving images: handler contract, codecs, pre-fork server."""

from .codecs import CODECS, Codec, decode, encode
from .errors import BadRequest, HandlerLoadError, NotAcceptable, ServingError, UnsupportedMediaType
from .handlers import Context, Handlers, load_handlers, resolve
from .invocations import Result, execution_parameters, invoke
from .server import serve
from .settings import ServingSettings

__all__ = [
    "CODECS",
    "BadRequest",
    "Codec",
    "Context",
    "HandlerLoadError",
    "Handlers",
    "NotAcceptable",
    "Result",
    "ServingError",
    "ServingSettings",
    "UnsupportedMediaType",
    "decode",
    "encode",
    "execution_parameters",
    "invoke",
    "load_handlers",
    "resolve",
    "serve",
]
