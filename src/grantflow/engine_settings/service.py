"""Read, merge and store the engine settings; the SMTP password is write-only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.engine_settings.models import SETTINGS_ROW_ID, EngineSettings
from grantflow.engine_settings.schemas import SettingsIn, SettingsOut, SmtpAuthMode
from grantflow.errors import ErrorCode, InvalidRequestData
from grantflow.kit.prepared import Prepared
from grantflow.kit.secretbox import SecretBox

SECRET_KEY = "smtp_server_password"
NOT_STORED = frozenset({SECRET_KEY, "test_recipient"})


async def _row(session: AsyncSession) -> EngineSettings | None:
    return await session.get(EngineSettings, SETTINGS_ROW_ID)


# Read by every write that mails (compose) and by the scheduler's passes, besides GET /settings.
_VALUES = Prepared(select(EngineSettings.values).where(EngineSettings.id == SETTINGS_ROW_ID))


async def get_settings(session: AsyncSession) -> SettingsOut:
    row = await _VALUES.first(session)
    return SettingsOut.model_validate(row[0] if row else {})


def merged(stored: SettingsOut, body: SettingsIn) -> SettingsOut:
    """Keys the client gave replace the stored ones; absent or null keys keep them."""
    given = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None and k not in NOT_STORED}
    return stored.model_copy(update=given)


def _check(values: SettingsOut, has_password: bool) -> None:
    if not values.smtp_server_enabled:
        return
    for key in ("smtp_server", "smtp_sender_address"):
        if not getattr(values, key):
            raise InvalidRequestData(
                "required when e-mail is enabled", property=key, error_code=ErrorCode.REQUIRED_VALUE_MISSING
            )
    if values.smtp_authentication_mode != SmtpAuthMode.NONE and not has_password:
        raise InvalidRequestData(
            f"authentication mode {values.smtp_authentication_mode} needs a password or client secret",
            property=SECRET_KEY,
            error_code=ErrorCode.REQUIRED_VALUE_MISSING,
        )


async def update_settings(session: AsyncSession, box: SecretBox, body: SettingsIn, now: datetime) -> SettingsOut:
    row = await _row(session)
    if row is None:
        row = EngineSettings(id=SETTINGS_ROW_ID, values={})
        session.add(row)
    values = merged(SettingsOut.model_validate(row.values), body)
    new_password = body.smtp_server_password
    _check(values, has_password=bool(new_password or row.smtp_password_sealed))
    row.values = values.model_dump(mode="json", exclude={SECRET_KEY})
    if new_password:  # an empty password keeps the stored one (decisions.md §6)
        row.smtp_password_sealed = box.seal(new_password)
    row.updated = now
    await session.flush()
    return values


async def stored_password(session: AsyncSession, box: SecretBox) -> str:
    row = await _row(session)
    if row is None or not row.smtp_password_sealed:
        return ""
    return box.open(row.smtp_password_sealed)


async def has_stored_password(session: AsyncSession) -> bool:
    """Whether a password is stored (its value never leaves, but a form can say one is set)."""
    row = await _row(session)
    return row is not None and bool(row.smtp_password_sealed)
