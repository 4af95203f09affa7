"""What strangers can store, and how long grantflow keeps what grows: authorize stores nothing, and the retention
job removes expired credentials, finished mail and old audit events, once per interval across replicas."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute

from grantflow.audit.models import AuditEvent
from grantflow.config import Config
from grantflow.jobs import retention
from grantflow.kit.clock import FrozenClock
from grantflow.notification.models import OutboxMessage, OutboxStatus
from grantflow.oauth.models import AuthorizationFlow, LoginAttempts, RefreshToken
from grantflow.runtime import Runtime
from tests.compat import privx_go
from tests.conftest import ADMIN_PASSWORD
from tests.factories import TOKEN_URL, World, serving
from tests.grant.test_lifecycle import approved, one_step
from tests.notification.outbox_helpers import use_smtp


async def _count(runtime: Runtime, column: InstrumentedAttribute[object]) -> int:
    async with runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count(column))) or 0)


async def _authorize(client: httpx.AsyncClient) -> str:
    _, challenge = privx_go.pkce_pair()
    answer = await client.get(
        "/auth/api/v1/oauth/authorize",
        params={
            "client_id": "privx-external",
            "redirect_uri": "http://127.0.0.1/cb",
            "response_type": "code",
            "state": "s" * 500,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert answer.status_code == 307, answer.text
    return privx_go.login_token(answer)


async def test_authorize_stores_nothing_until_somebody_logs_in(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tokens = [await _authorize(client) for _ in range(50)]
    assert await _count(runtime, AuthorizationFlow.login_token_hash) == 0  # each call used to store a row
    login = {"username": "admin", "password": ADMIN_PASSWORD, "token": tokens[0]}
    assert (await client.post("/auth/api/v1/login", json=login)).status_code == 200
    assert await _count(runtime, AuthorizationFlow.login_token_hash) == 1
    again = await client.post("/auth/api/v1/login", json=login)
    assert again.status_code == 400  # a login token logs in once
    forged = await client.post("/auth/api/v1/login", json={**login, "token": tokens[1][:-4] + "AAAA"})
    assert forged.status_code == 400


async def test_retention_removes_what_was_kept_long_enough_and_keeps_the_rest(
    world: World, runtime: Runtime, clock: FrozenClock
) -> None:
    await use_smtp(world, 2525, smtp_server_enabled=False)  # mail is recorded as SUPPRESSED: finished at once
    await one_step(world)
    await approved(world)
    await world.client.post(TOKEN_URL, data={"grant_type": "password", "username": "bob", "password": "wrong"})
    assert await _count(runtime, RefreshToken.token_hash) > 0
    assert await _count(runtime, LoginAttempts.key) > 0
    mail, events = await _count(runtime, OutboxMessage.id), await _count(runtime, AuditEvent.id)
    assert mail > 0
    assert events > 0
    async with runtime.sessionmaker() as session:  # one message still waiting: it is kept, however old
        waiting = await session.scalar(select(OutboxMessage).limit(1))
        assert waiting is not None
        waiting.status = OutboxStatus.PENDING
        await session.commit()

    clock.advance(timedelta(days=2))
    removed = await retention.run_due(runtime)
    assert removed is not None
    assert removed["refresh tokens"] > 0
    assert removed["login attempt counters"] > 0
    assert await _count(runtime, RefreshToken.token_hash) == 0
    assert await _count(runtime, OutboxMessage.id) == mail  # 30 days have not passed

    clock.advance(timedelta(days=30))
    assert (await retention.run_due(runtime) or {})["sent mail"] == mail - 1
    assert await _count(runtime, OutboxMessage.id) == 1
    assert await _count(runtime, AuditEvent.id) == events  # audit events are kept 400 days

    clock.advance(timedelta(days=400))
    assert (await retention.run_due(runtime) or {})["audit events"] == events


async def test_one_replica_runs_retention_per_interval(config: Config, clock: FrozenClock) -> None:
    async with serving(config, clock) as first, serving(config, clock) as second:
        replicas = [first.runtime, second.runtime]
        turns = await asyncio.gather(*(retention.run_due(r) for r in replicas * 3))
        assert sum(t is not None for t in turns) == 1
        clock.advance(timedelta(minutes=config.retention_interval_minutes - 1))
        assert await retention.run_due(replicas[1]) is None
        clock.advance(timedelta(minutes=1))
        assert await retention.run_due(replicas[1]) is not None
