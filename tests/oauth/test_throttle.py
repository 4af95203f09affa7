"""Logins under concurrency: the throttle counts every attempt before its password is checked, and a burst of
strangers' logins takes no capacity from people who are already signed in."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.config import Config
from grantflow.kit.clock import FrozenClock
from grantflow.oauth.service import MAX_FAILURES_PER_ACCOUNT
from grantflow.runtime import Runtime
from tests.conftest import ADMIN_PASSWORD, CLIENT_SECRET
from tests.factories import TOKEN_URL, WE, bearer, make_api_client, serving, token_for


def _password_login(http: httpx.AsyncClient, password: str) -> asyncio.Future[httpx.Response]:
    return asyncio.ensure_future(
        http.post(
            TOKEN_URL,
            data={"grant_type": "password", "username": "admin", "password": password},
            auth=("privx-external", CLIENT_SECRET),
        )
    )


async def test_concurrent_guesses_get_no_more_tries_than_the_limit(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*(_password_login(client, f"guess-{i}") for i in range(60)))
    evaluated = [a for a in answers if a.status_code == 400]
    throttled = [a for a in answers if a.status_code == 429]
    assert len(evaluated) == MAX_FAILURES_PER_ACCOUNT
    assert len(throttled) == 60 - MAX_FAILURES_PER_ACCOUNT
    assert all(int(a.headers["retry-after"]) > 0 for a in throttled)
    # The right password now is not even checked: the guesser cannot learn it by trying it last.
    assert (await _password_login(client, ADMIN_PASSWORD)).status_code == 429


async def test_successful_logins_do_not_use_up_the_limit(client: httpx.AsyncClient) -> None:
    for _ in range(MAX_FAILURES_PER_ACCOUNT + 5):
        assert (await _password_login(client, ADMIN_PASSWORD)).status_code == 200


async def test_a_client_fetching_more_tokens_at_once_than_the_limit_gets_them_all_and_keeps_working(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    """A CI system's parallel jobs sharing one API client: every right login succeeds (the ones over the limit wait
    for those in flight), and the client is not locked out afterwards as it was when refused attempts counted."""
    api_client, secret = await make_api_client(session, runtime, "ci-jobs")
    form = {"grant_type": "client_credentials", "client_id": str(api_client.id), "client_secret": secret}
    at_once = 3 * MAX_FAILURES_PER_ACCOUNT
    answers = await asyncio.gather(*(client.post(TOKEN_URL, data=form) for _ in range(at_once)))
    assert [a.status_code for a in answers] == [200] * at_once, {a.text for a in answers if a.status_code != 200}
    assert (await client.post(TOKEN_URL, data=form)).status_code == 200


async def test_a_burst_of_strangers_logins_leaves_signed_in_users_working(config: Config, clock: FrozenClock) -> None:
    """300 client_credentials logins with made-up ids while a signed-in admin lists requests. Real argon2 work
    (64 MiB) and a small pool with a short wait make holding a connection while hashing show as failures."""
    costly = config.model_copy(
        update={
            "password_time_cost": 2,
            "password_memory_cost_kib": 65536,
            "database_pool_size": 2,
            "database_pool_timeout_seconds": 2.0,
        }
    )
    async with serving(costly, clock) as served:
        http = served.http
        admin = bearer(await token_for(http, "admin", ADMIN_PASSWORD))
        strangers = [
            asyncio.ensure_future(
                http.post(TOKEN_URL, data={"grant_type": "client_credentials", "client_id": f"made-up-{i}"})
            )
            for i in range(300)
        ]
        work: list[httpx.Response] = []
        while not all(s.done() for s in strangers):
            work.append(await http.get(f"{WE}/requests?filter=all", headers=admin))
            await asyncio.sleep(0.01)
        refused = await asyncio.gather(*strangers)
    assert len(work) > 5
    assert {w.status_code for w in work} == {200}, [w.text for w in work if w.status_code != 200][:3]
    # Strangers are refused (401), throttled (429) or asked to come back (503); none of them gets a 500.
    assert {r.status_code for r in refused} <= {401, 429, 503}
    assert 401 in {r.status_code for r in refused}
