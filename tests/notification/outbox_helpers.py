"""Set up e-mail settings and read the outbox, for the delivery tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from grantflow.notification.models import OutboxMessage
from grantflow.runtime import Runtime
from tests.factories import WE, World

SETTINGS = f"{WE}/settings"
BACKEND = "https://grantflow.example.com"


async def use_smtp(world: World, port: int, **settings: Any) -> None:
    body = {
        "smtp_server_enabled": True,
        "smtp_server": "localhost",
        "smtp_server_port": port,
        "smtp_server_protocol": "PLAIN",
        "smtp_sender_address": "grantflow@example.com",
        "privx_backend_address": BACKEND,
        **settings,
    }
    response = await world.client.put(SETTINGS, json=body, headers=await world.as_("admin"))
    assert response.status_code == 200, response.text


async def outbox_rows(runtime: Runtime) -> list[OutboxMessage]:
    async with runtime.sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.created, OutboxMessage.id)))
