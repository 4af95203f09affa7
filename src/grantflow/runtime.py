"""Collaborators built once by create_app's lifespan and handed to routes through dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from grantflow.auth.tokens import KeyRing
from grantflow.config import Config
from grantflow.kit.clock import Clock
from grantflow.kit.passwords import Passwords
from grantflow.kit.secretbox import SecretBox


@dataclass
class Runtime:
    config: Config
    clock: Clock
    passwords: Passwords
    secret_box: SecretBox
    keyring: KeyRing
    sessionmaker: async_sessionmaker[AsyncSession]
    app_id: str
    started: datetime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
