"""create_app(config): the FastAPI application; its lifespan builds every collaborator."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from grantflow import __version__, api
from grantflow.config import Config
from grantflow.errors import install_error_handlers
from grantflow.jobs import workers
from grantflow.kit.body_limit import BodyLimitMiddleware
from grantflow.kit.clock import Clock, SystemClock
from grantflow.oauth.router import on_oauth_error
from grantflow.oauth.service import OAuthError
from grantflow.runtime import open_runtime

DESCRIPTION = """A self-hosted role-granting workflow engine, wire-compatible with the PrivX Workflow Engine API v1.

Every error is the PrivX error object `{error_code, error_message, property, details}`;
the token endpoint answers RFC 6749 errors `{error, error_description}`."""


def create_app(config: Config, clock: Clock | None = None) -> FastAPI:
    """Build the application; the database must already be migrated and bootstrapped (see `prepare`)."""
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(config, clock) as runtime:
            app.state.runtime = runtime
            async with workers.running_in_background(runtime, enabled=config.background_workers):
                _tune_collector(config.gc_gen0_threshold)
                yield

    # /docs is mounted by api.py from a local copy of Swagger UI; ReDoc would load its script from a CDN.
    app = GrantflowAPI(
        title="grantflow",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_exception_handler(OAuthError, on_oauth_error)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    api.mount(app)
    return app


def _tune_collector(gen0_threshold: int) -> None:
    """Start-up made the routes, models and templates, which live as long as the process: freeze them, so that
    collections stop walking them, and collect the young generation less often (measured: docs/performance.md)."""
    if not gen0_threshold:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(gen0_threshold, older, oldest)


class GrantflowAPI(FastAPI):
    def openapi(self) -> dict[str, Any]:
        """FastAPI's document without the 422 it adds to every route: grantflow answers a bad request 400."""
        if self.openapi_schema is None:
            document = super().openapi()
            for operations in document["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for unused in ("HTTPValidationError", "ValidationError"):
                document.get("components", {}).get("schemas", {}).pop(unused, None)
            self.openapi_schema = document
        return self.openapi_schema
