"""Collaborators built once by create_app's lifespan and handed to routes through dependencies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from grantflow.auth.tokens import KeyRing
from grantflow.config import Config
from grantflow.db import create_engine, make_sessionmaker
from grantflow.kit.clock import Clock
from grantflow.kit.passwords import Passwords
from grantflow.kit.secretbox import SecretBox, load_secret_box
from grantflow.runtime.metrics import Metrics


@dataclass
class Runtime:
    config: Config
    clock: Clock
    passwords: Passwords
    secret_box: SecretBox
    keyring: KeyRing
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    app_id: str
    started: datetime
    metrics: Metrics


@asynccontextmanager
async def open_runtime(config: Config, clock: Clock) -> AsyncIterator[Runtime]:
    """Every collaborator the API and the workers use, over one engine that is disposed at the end."""
    engine = create_engine(
        config.resolved_database_url,
        config.database_pool_size,
        config.database_ping_after_idle_seconds,
        config.database_pool_timeout_seconds,
    )
    box = load_secret_box(config)
    runtime = Runtime(
        config=config,
        clock=clock,
        passwords=Passwords.from_config(config),
        secret_box=box,
        keyring=KeyRing(box, config.token_issuer, config.token_leeway_seconds),
        engine=engine,
        sessionmaker=make_sessionmaker(engine, clock),
        app_id=str(uuid.uuid4()),
        started=clock.now(),
        metrics=Metrics(),
    )
    try:
        async with runtime.sessionmaker() as session:
            await runtime.keyring.load(session)
        yield runtime
    finally:
        await engine.dispose()


# Dependencies are coroutines: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per request.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
