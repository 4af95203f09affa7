"""Plain helpers that build the world a test needs, through the same services the API uses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from grantflow.app import create_app
from grantflow.config import Config
from grantflow.kit.clock import Clock, FrozenClock
from grantflow.role import service as role_service
from grantflow.role.models import Role
from grantflow.runtime import Runtime
from grantflow.user import service as user_service
from grantflow.user.models import User
from tests.conftest import ADMIN_PASSWORD, CLIENT_SECRET

WE = "/workflow-engine/api/v1"
TOKEN_URL = "/auth/api/v1/oauth/token"


async def make_user(session: AsyncSession, runtime: Runtime, username: str, **fields: Any) -> User:
    user = await user_service.create_user(
        session,
        runtime.passwords,
        username=username,
        password=f"{username}-password",
        display_name=fields.pop("display_name", username.title()),
        email=fields.pop("email", f"{username}@example.com"),
        **fields,
    )
    await session.commit()
    return user


async def make_role(session: AsyncSession, name: str, *permissions: str) -> Role:
    role = await role_service.create_role(session, name, permissions)
    await session.commit()
    return role


async def map_member(session: AsyncSession, role: Role, *users: User) -> None:
    for user in users:
        await role_service.add_mapped_member(session, role, user.id)
    await session.commit()


async def token_for(client: httpx.AsyncClient, username: str, password: str | None = None) -> str:
    token: str = (await token_response(client, username, password))["access_token"]
    return token


async def token_response(client: httpx.AsyncClient, username: str, password: str | None = None) -> dict[str, Any]:
    response = await client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": username, "password": password or f"{username}-password"},
        auth=("privx-external", CLIENT_SECRET),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def role_ref(role: Role) -> dict[str, str]:
    return {"id": str(role.id), "name": role.name}


def workflow_body(target: Role, *steps: tuple[str, list[Role]], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"grant {target.name}",
        "grant_types": ["PERMANENT", "TIME_RESTRICTED", "FLOATING"],
        "max_time_restricted_duration": 7,
        "max_floating_duration": 8,
        "max_active_requests": 1,
        "target_roles": [role_ref(target)],
        "action": "BOTH",
        "steps": [
            {"name": f"step {i}", "match": match, "approvers": [{"role": role_ref(r)} for r in roles]}
            for i, (match, roles) in enumerate(steps)
        ],
    }
    body.update(overrides)
    return body


@dataclass
class World:
    """A small organisation: alice requests, bob leads the team, carol is security, dave is nobody special."""

    client: httpx.AsyncClient
    clock: Clock
    admin_password: str
    users: dict[str, User] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    renew_at: dict[str, datetime] = field(default_factory=dict)

    async def as_(self, name: str) -> dict[str, str]:
        """A valid token for the user, renewed like the Python SDK does: 3 s before `expires_in` runs out."""
        if name not in self.tokens or self.clock.now() >= self.renew_at[name]:
            password = self.admin_password if name == "admin" else None
            response = await token_response(self.client, name, password)
            self.tokens[name] = response["access_token"]
            self.renew_at[name] = self.clock.now() + timedelta(seconds=response["expires_in"] - 3)
        return bearer(self.tokens[name])

    @property
    def admin(self) -> str:
        """The admin's current token (as a plain string, for headers built by hand)."""
        return self.tokens["admin"]

    async def create_workflow(self, body: dict[str, Any]) -> str:
        response = await self.client.post(f"{WE}/workflows", json=body, headers=await self.as_("admin"))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def request_role(self, who: str, role: str, **fields: Any) -> httpx.Response:
        body = {"requested_role": {"id": str(self.roles[role].id)}, "grant_type": "PERMANENT", **fields}
        return await self.client.post(f"{WE}/requests", json=body, headers=await self.as_(who))

    async def decide(self, who: str, request_id: str, step: int, decision: str = "APPROVED") -> httpx.Response:
        return await self.client.post(
            f"{WE}/requests/{request_id}/decision",
            json={"step": step, "decision": decision, "comment": f"{who} says {decision}"},
            headers=await self.as_(who),
        )

    async def get_request(self, who: str, request_id: str) -> httpx.Response:
        return await self.client.get(f"{WE}/requests/{request_id}", headers=await self.as_(who))


async def build_world(client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime) -> World:
    world = World(client=client, clock=runtime.clock, admin_password=ADMIN_PASSWORD)
    await world.as_("admin")
    world.roles["linux-admins"] = await make_role(session, "linux-admins")
    world.roles["db-owners"] = await make_role(session, "db-owners")
    world.roles["team-leads"] = await make_role(session, "team-leads", "workflows-requests")
    world.roles["security"] = await make_role(session, "security", "workflows-requests")
    world.roles["helpdesk"] = await make_role(session, "helpdesk", "workflows-requests-on-behalf")
    world.roles["auditors"] = await make_role(session, "auditors", "requests-view")
    world.roles["workflow-admins"] = await make_role(session, "workflow-admins", "workflows-manage")
    world.roles["viewers"] = await make_role(session, "viewers", "workflows-view")
    for name in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"):
        world.users[name] = await make_user(session, runtime, name)
    await map_member(session, world.roles["team-leads"], world.users["bob"], world.users["frank"])
    await map_member(session, world.roles["security"], world.users["carol"], world.users["frank"])
    await map_member(session, world.roles["helpdesk"], world.users["erin"])
    await map_member(session, world.roles["auditors"], world.users["grace"])
    await map_member(session, world.roles["workflow-admins"], world.users["heidi"])
    await map_member(session, world.roles["viewers"], world.users["ivan"])
    return world


async def make_api_client(session: AsyncSession, runtime: Runtime, name: str) -> tuple[User, str]:
    """An API client and its secret."""
    client = await user_service.create_api_client(session, runtime.secret_box, name, author=None)
    await session.commit()
    return client, runtime.secret_box.open(client.secret_sealed or "")


async def holds(runtime: Runtime, world: World, user: str, role: str) -> bool:
    """Whether the user holds the role now, read in a fresh transaction."""
    async with runtime.sessionmaker() as session:
        roles = await role_service.effective_roles(session, world.users[user].id, runtime.clock.now())
    return world.roles[role].id in {r.id for r in roles}


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Serving:
    """An app on its own configuration: a client over httpx, and the runtime behind it."""

    http: httpx.AsyncClient
    runtime: Runtime

    @property
    def engine(self) -> AsyncEngine:
        engine = self.runtime.sessionmaker.kw["bind"]
        assert isinstance(engine, AsyncEngine)
        return engine


@asynccontextmanager
async def serving(config: Config, clock: FrozenClock) -> AsyncIterator[Serving]:
    """The app on its own configuration (a variation of the test's), started and stopped around the block."""
    app = create_app(config, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://grantflow.test") as http:
            yield Serving(http, app.state.runtime)
