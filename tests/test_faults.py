"""A database that is unreachable, out of connections or slow to hand one out: every endpoint answers 503 with
Retry-After and the PrivX error code, grantflow recovers by itself, and nothing it acknowledged is lost."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from grantflow.config import Config
from grantflow.kit.clock import FrozenClock
from tests.conftest import ADMIN_PASSWORD, CLIENT_SECRET, PG_SERVER
from tests.factories import TOKEN_URL, bearer, serving, token_for
from tests.faults import cuttable_proxy

ROLES = "/role-store/api/v1/roles"
LOGIN = {"grant_type": "password", "username": "admin", "password": "whatever"}
ON_POSTGRESQL = pytest.mark.parametrize("template_database", ["postgresql"], indirect=True)


def _role(name: str) -> dict[str, object]:
    return {"name": name}


def _assert_unavailable(response: httpx.Response, code: str = "DATABASE_ERROR") -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error_code"] == code
    assert int(response.headers["retry-after"]) > 0


@ON_POSTGRESQL
async def test_a_database_cut_off_answers_503_then_recovers_and_loses_nothing(
    config: Config, clock: FrozenClock
) -> None:
    target = urlsplit(config.resolved_database_url)
    async with cuttable_proxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        proxied = config.model_copy(
            update={"database_url": config.resolved_database_url.replace(f":{target.port}/", f":{proxy.port}/")}
        )
        async with serving(proxied, clock) as served:
            http = served.http
            admin = bearer(await token_for(http, "admin", ADMIN_PASSWORD))
            acknowledged: list[str] = []

            async def create(name: str) -> httpx.Response:
                answer = await http.post(ROLES, json=_role(name), headers=admin)
                if answer.status_code == 201:
                    acknowledged.append(answer.json()["id"])
                return answer

            before = await asyncio.gather(*(create(f"before-{i}") for i in range(10)))
            assert {a.status_code for a in before} == {201}

            await proxy.cut()
            during = await asyncio.gather(*(create(f"during-{i}") for i in range(10)))
            during.append(await http.get(ROLES, headers=admin))
            during.append(await http.post(TOKEN_URL, data=LOGIN, auth=("privx-external", CLIENT_SECRET)))
            for answer in during:
                _assert_unavailable(answer)
            status = await http.get("/workflow-engine/api/v1/status")
            _assert_unavailable(status)
            assert status.json()["property"] == "database"

            await proxy.restore()
            after = [await create(f"after-{i}") for i in range(10)]
            assert [a.status_code for a in after[-5:]] == [201] * 5, [a.text for a in after]
            assert (await http.get("/workflow-engine/api/v1/status")).status_code == 200

    stored = await _stored_role_ids(config.resolved_database_url)
    assert set(acknowledged) <= stored


async def _stored_role_ids(url: str) -> set[str]:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return {str(row["id"]) for row in await connection.fetch("SELECT id FROM roles")}
    finally:
        await connection.close()


@ON_POSTGRESQL
async def test_too_many_clients_on_postgresql_is_503_too_many_connections(config: Config, clock: FrozenClock) -> None:
    """The server refuses another connection (SQLSTATE 53300): the role's connection limit stands in for
    max_connections, which the shared server must keep."""
    url = config.resolved_database_url
    role = f"gf_limited_{uuid.uuid4().hex[:8]}"
    database = urlsplit(url).path.lstrip("/")
    root = await asyncpg.connect(PG_SERVER.rsplit("/", 1)[0] + f"/{database}")
    await root.execute(f'CREATE ROLE "{role}" LOGIN')
    await root.execute(f'GRANT ALL ON SCHEMA public TO "{role}"')
    await root.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
    try:
        limited = config.model_copy(update={"database_url": url.replace("//root@", f"//{role}@")})
        async with serving(limited, clock) as served:
            http = served.http
            admin = bearer(await token_for(http, "admin", ADMIN_PASSWORD))
            await served.engine.dispose()
            await root.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
            _assert_unavailable(await http.get(ROLES, headers=admin), "TOO_MANY_CONNECTIONS")
            await root.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
            assert (await http.get(ROLES, headers=admin)).status_code == 200
    finally:
        await root.execute(f'DROP OWNED BY "{role}"')
        await root.execute(f'DROP ROLE "{role}"')
        await root.close()


async def test_a_request_that_finds_no_free_connection_is_503_not_500(config: Config, clock: FrozenClock) -> None:
    small = config.model_copy(update={"database_pool_size": 1, "database_pool_timeout_seconds": 0.2})
    async with serving(small, clock) as served, AsyncExitStack() as held:
        http = served.http
        admin = bearer(await token_for(http, "admin", ADMIN_PASSWORD))
        engine = served.engine
        # The pool's only connection is busy elsewhere (the pool opens no overflow connections).
        connection: AsyncConnection = await held.enter_async_context(engine.connect())
        assert connection is not None
        _assert_unavailable(await http.get(ROLES, headers=admin), "TOO_MANY_CONNECTIONS")
        await held.aclose()
        assert (await http.get(ROLES, headers=admin)).status_code == 200


async def test_status_leaves_the_connection_it_used_in_transactions_for_the_next_request(
    config: Config, clock: FrozenClock
) -> None:
    """/status asks without a transaction (on PostgreSQL in autocommit); the pool's only connection must come back
    as every request expects it, or a rolled-back change would stay."""
    small = config.model_copy(update={"database_pool_size": 1})
    async with serving(small, clock) as served:
        assert (await served.http.get("/workflow-engine/api/v1/status")).status_code == 200
        async with served.engine.connect() as connection:  # the same connection, the pool has one
            await connection.execute(text("CREATE TABLE status_probe (x INTEGER)"))
            await connection.rollback()
        async with served.engine.connect() as connection:
            with pytest.raises(DBAPIError):
                await connection.execute(text("SELECT x FROM status_probe"))
