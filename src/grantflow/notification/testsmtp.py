"""POST /testsmtp: the given settings merged over the stored ones, probed stage by stage."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.db import transaction
from grantflow.engine_settings import service as settings_service
from grantflow.engine_settings.schemas import SettingsIn, SmtpTestOut
from grantflow.kit.secretbox import SecretBox
from grantflow.notification.probe import ProbePolicy, ProbeTarget, probe
from grantflow.notification.smtp import SmtpServer
from grantflow.runtime import Runtime
from grantflow.user import service as user_service


async def test_smtp(runtime: Runtime, caller_id: uuid.UUID, body: SettingsIn) -> SmtpTestOut:
    """Run the SMTP conversation with the given settings over the stored ones; never raises, never leaks.

    The settings are read in a short transaction that ends before the probe starts: the probe may take seconds
    on the network and holds no database connection meanwhile.
    """
    async with transaction(runtime.sessionmaker, writes=False) as session:
        target = await _probe_target(session, runtime.secret_box, body, caller_id)
    config = runtime.config
    policy = ProbePolicy(
        total_seconds=config.smtp_probe_seconds,
        allowed_hosts=config.smtp_allowed_host_set,
        ca_file=config.smtp_ca_file,
    )
    status, details = await probe(target, policy)
    return SmtpTestOut(status=status, details=details)


async def _probe_target(session: AsyncSession, box: SecretBox, body: SettingsIn, caller_id: uuid.UUID) -> ProbeTarget:
    values = settings_service.merged(await settings_service.get_settings(session), body)
    password = body.smtp_server_password or await settings_service.stored_password(session, box)
    recipient = body.test_recipient or (await user_service.get_user(session, caller_id)).email
    server = SmtpServer.from_settings(values, password)
    return ProbeTarget(**asdict(server), recipient=recipient)
