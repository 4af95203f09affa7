"""create_app(config): the FastAPI application; its lifespan builds every collaborator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from grantflow import __version__, api
from grantflow.auth.router import on_oauth_error
from grantflow.auth.service import OAuthError
from grantflow.auth.tokens import KeyRing
from grantflow.config import Config
from grantflow.db import create_engine, make_sessionmaker
from grantflow.errors import install_error_handlers
from grantflow.kit.body_limit import BodyLimitMiddleware
from grantflow.kit.clock import Clock, SystemClock
from grantflow.kit.passwords import Passwords
from grantflow.kit.secretbox import load_secret_box
from grantflow.runtime import Runtime

DESCRIPTION = """A self-hosted role-granting workflow engine, wire-compatible with the PrivX Workflow Engine API v1.

Every error is the PrivX error object `{error_code, error_message, property, details}`;
the token endpoint answers RFC 6749 errors `{error, error_description}`."""


def create_app(config: Config, clock: Clock | None = None) -> FastAPI:
    """Build the application; the database must already be migrated and bootstrapped (see `prepare`)."""
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(config.resolved_database_url, config.database_pool_size)
        box = load_secret_box(config)
        runtime = Runtime(
            config=config,
            clock=clock,
            passwords=Passwords.from_config(config),
            secret_box=box,
            keyring=KeyRing(box, config.token_issuer, config.token_leeway_seconds),
            sessionmaker=make_sessionmaker(engine),
            app_id=str(uuid.uuid4()),
            started=clock.now(),
        )
        async with runtime.sessionmaker() as session:
            await runtime.keyring.load(session)
        app.state.runtime = runtime
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title="grantflow", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    app.add_exception_handler(OAuthError, on_oauth_error)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    api.mount(app)
    return app
