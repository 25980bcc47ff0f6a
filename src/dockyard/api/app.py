"""The app factory: one ASGI app serving every API of dockyard over one port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard import __version__
from dockyard.api import cloudwatch_wire, prometheus
from dockyard.api.auth import SignedApi, SigV4Middleware
from dockyard.api.aws_chunked import S3_PAYLOAD_MODES
from dockyard.api.cloudwatch import CloudWatchApp
from dockyard.api.cloudwatch import refusal as cloudwatch_refusal
from dockyard.api.console import ConsoleApp
from dockyard.api.console_session import Sessions, console_secret
from dockyard.api.json_apis import JsonApis
from dockyard.api.keys import KeyRing, home_id, server_keys
from dockyard.api.protocol import aws_error
from dockyard.api.runtime import RuntimeApp
from dockyard.api.s3.app import S3App
from dockyard.api.s3.staging import Staging
from dockyard.api.s3.wire import s3_refusal
from dockyard.api.sts import StsApp, sts_refusal
from dockyard.engine.core import Engine

log = logging.getLogger(__name__)


def create_app(
    engine: Engine, *, close_engine: bool = True, keys: KeyRing | None = None
) -> SigV4Middleware:
    """SigV4 in front of everything; requests signed for S3 go to the S3 API, the others to
    the runtime API (InvokeEndpoint) in front of the control plane and the Logs API. The web
    console under /console signs in with a session cookie instead. `keys` default to the
    settings' (see api/keys.py)."""
    apis = JsonApis(engine)
    settings = engine.settings

    async def dispatch(request: Request) -> Response:
        return await apis.answer(request.headers.get("x-amz-target", ""), request)

    async def health(_: Request) -> Response:
        # Anyone may ask (clients find the background server with it): no path, no user.
        return JSONResponse(
            {"status": "ok", "version": __version__, "home_id": home_id(engine.settings.home)}
        )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if close_engine:
            await run_in_threadpool(engine.close)

    async def no_such_route(request: Request, exc: Exception) -> Response:
        # AWS-shaped like every other answer, so any AWS client reads why.
        status = getattr(exc, "status_code", 404)
        return aws_error(
            "UnknownOperationException",
            f"{request.method} {request.url.path} is not an API of dockyard: the control plane "
            "is POST / with X-Amz-Target, InvokeEndpoint POST /endpoints/<name>/invocations",
            status,
        )

    control_plane = Starlette(
        routes=[
            Route("/", dispatch, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
            Route("/metrics", prometheus.MetricsEndpoint(engine).handle, methods=["GET"]),
        ],
        exception_handlers={404: no_such_route, 405: no_such_route},
        lifespan=lifespan,
    )
    if keys is None:
        keys = server_keys(engine.settings)
    cloudwatch = CloudWatchApp(engine)
    # APIs told apart by the service their requests are signed for, each with the shape of its
    # refusals; the rest by X-Amz-Target or path. Another such API is one more entry.
    by_service = {
        "s3": SignedApi(
            S3App(engine.store, Staging(settings.home / "s3-api")),
            refusal=s3_refusal,
            payload_modes=S3_PAYLOAD_MODES,
            presigned_payload_unsigned=True,
        ),
        "sts": SignedApi(StsApp(settings), refusal=sts_refusal),
        # CloudWatch in any of its three protocols (api/cloudwatch_wire.py).
        cloudwatch_wire.model().signing_name: SignedApi(
            cloudwatch, refusal_by_head=cloudwatch_refusal
        ),
    }
    console = ConsoleApp(
        apis,
        engine.store,
        keys,
        Sessions(
            console_secret(settings),
            keys,
            settings.console_session_hours * 3600,
            signed_out_file=settings.home / "console-signed-out",
        ),
        downloads=settings.home,
        # CloudWatch is not one of the JSON 1.1 APIs: its own app answers its JSON 1.0 form.
        apps_by_target={cloudwatch_wire.target_prefix(): cloudwatch},
    )
    return SigV4Middleware(
        RuntimeApp(engine, control_plane), keys, by_service=by_service, console=console
    )
