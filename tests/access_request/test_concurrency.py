"""Concurrent writers on one request: exactly one transition, no lost update, no duplicate rows.

Two app instances (as two replicas would be) share the database; every call goes through HTTP and the
real transaction handling (row locks on PostgreSQL, the write lock on SQLite).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from grantflow.app import create_app
from grantflow.config import Config
from grantflow.kit.clock import FrozenClock
from grantflow.role.models import Membership
from grantflow.runtime import Runtime
from tests.factories import WE, World, make_user, map_member, workflow_body

APPROVERS = 12


async def _second_replica(config: Config, clock: FrozenClock) -> tuple[FastAPI, httpx.AsyncClient]:
    replica = create_app(config, clock)
    return replica, httpx.AsyncClient(transport=httpx.ASGITransport(app=replica), base_url="http://replica-2")


async def test_concurrent_approvals_make_exactly_one_transition(
    world: World,
    session,
    runtime: Runtime,
    prepared: Config,
    clock: FrozenClock,
) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]])))
    approvers = [await make_user(session, runtime, f"lead{i}") for i in range(APPROVERS)]
    await map_member(session, r["team-leads"], *approvers)
    request_id = (await world.request_role("alice", "linux-admins")).json()["id"]
    headers = [await world.as_(f"lead{i}") for i in range(APPROVERS)]

    replica, replica_client = await _second_replica(prepared, clock)
    async with replica.router.lifespan_context(replica), replica_client:
        clients = [world.client, replica_client]
        responses = await asyncio.gather(
            *(
                clients[i % 2].post(
                    f"{WE}/requests/{request_id}/decision", json={"step": 0, "decision": "APPROVED"}, headers=h
                )
                for i, h in enumerate(headers)
            )
        )

    outcomes = Counter(response.status_code for response in responses)
    assert outcomes[200] == 1, [response.text for response in responses]
    # Everyone else finds the request already decided: a clean 400 (or 409 on a lost race), never a 500.
    assert set(outcomes) <= {200, 400, 409}
    losers = [response.json()["error_code"] for response in responses if response.status_code != 200]
    assert all(code in ("INVALID_REQUEST_DATA", "BAD_REQUEST") for code in losers)

    detail = (await world.get_request("alice", request_id)).json()
    assert detail["status"] == "APPROVED"
    assert sum(a["decision"] == "APPROVED" for a in detail["steps"][0]["approvers"]) == 1
    async with runtime.sessionmaker() as check:
        grants = await check.scalar(select(func.count()).where(Membership.request_id == uuid.UUID(request_id)))
    assert grants == 1


async def test_concurrent_filings_respect_max_active_requests(
    world: World, prepared: Config, clock: FrozenClock, runtime: Runtime
) -> None:
    r = world.roles
    await world.create_workflow(workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), max_active_requests=2))
    headers = await world.as_("alice")
    body = {"requested_role": {"id": str(r["linux-admins"].id)}, "grant_type": "PERMANENT"}
    replica, replica_client = await _second_replica(prepared, clock)
    async with replica.router.lifespan_context(replica), replica_client:
        clients = [world.client, replica_client]
        responses = await asyncio.gather(
            *(clients[i % 2].post(f"{WE}/requests", json=body, headers=headers) for i in range(10))
        )
    outcomes = Counter(response.status_code for response in responses)
    assert outcomes == {201: 2, 400: 8}, [response.text for response in responses]
    listed = await world.client.get(f"{WE}/requests", params={"filter": "active_requests"}, headers=headers)
    assert listed.json()["count"] == 2
